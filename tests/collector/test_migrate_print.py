"""`spanledger migrate --print`: the DDL a configuration implies, without connecting (the scale-out path)."""

from __future__ import annotations

import re

from spanledger.collector.cli import main


def _print_ddl(tmp_path, config: str, capsys) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(config)
    assert main(["migrate", "--config", str(path), "--print"]) == 0
    return capsys.readouterr().out


def test_cluster_ddl_is_replicated_and_distributed(tmp_path, capsys):
    ddl = _print_ddl(tmp_path, "exporters:\n  clickhouse:\n    endpoint: http://ch-1:8123\n    cluster_name: spans\n", capsys)
    assert "CREATE TABLE IF NOT EXISTS spanledger.otel_traces_local ON CLUSTER spans" in ddl
    assert "ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')" in ddl
    assert ("CREATE TABLE IF NOT EXISTS spanledger.otel_traces ON CLUSTER spans AS spanledger.otel_traces_local "
            "ENGINE = Distributed(spans, spanledger, otel_traces_local, rand())") in ddl
    assert "ENGINE = Distributed(spans, spanledger, spanledger_usage_hourly_local, rand())" in ddl


def test_single_server_ddl_has_no_cluster_clauses(tmp_path, capsys):
    ddl = _print_ddl(tmp_path, "exporters:\n  clickhouse:\n    endpoint: http://ch:8123\n", capsys)
    assert "ON CLUSTER" not in ddl and "Distributed(" not in ddl and "Replicated" not in ddl
    assert re.search(r"CREATE TABLE IF NOT EXISTS spanledger\.otel_traces\s*\(", ddl)
