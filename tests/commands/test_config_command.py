"""`spanledger config --print` shows what the collector runs with, and never a secret."""

from __future__ import annotations

import json
import subprocess
import sys


def run(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spanledger.collector.cli", *args], capture_output=True, text=True,
                          timeout=60, env=env)


def test_prints_defaults_and_file_values_with_secrets_masked(tmp_path):
    config = tmp_path / "otel-config.yaml"
    config.write_text("""
exporters:
  clickhouse:
    endpoint: http://admin:hunter2-secret@db.internal:8123
    password: s3cret-password-value
    wal: {max_size_mib: 512}
receivers: {otlp: {protocols: {grpc: {auth: {authenticator: bearertokenauth}}}}}
extensions:
  bearertokenauth:
    tokens: ["operator-token-0123456789"]
    tenants: {acme: "acme-token-0123456789abc"}
""")
    result = run("config", "--print", "--config", str(config), "--format", "json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["exporters"]["clickhouse"]["wal"]["max_size_mib"] == 512      # from the file
    assert shown["processors"]["batch"]["send_batch_size"] == 50000            # a default
    assert shown["extensions"]["bearertokenauth"]["tenants"] == {"acme": "***"}  # which tenants exist stays visible
    assert shown["exporters"]["clickhouse"]["endpoint"] == "http://***@db.internal:8123"
    for secret in ("hunter2-secret", "s3cret-password-value", "operator-token-0123456789", "acme-token-0123456789abc"):
        assert secret not in result.stdout


def test_yaml_output_and_bad_config_error():
    result = run("config")
    assert result.returncode == 0 and "receivers:" in result.stdout and "secrets shown as ***" in result.stdout
    bad = run("config", "--config", "/nonexistent/otel-config.yaml")
    assert bad.returncode == 2 and "cannot read the configuration file" in bad.stderr
