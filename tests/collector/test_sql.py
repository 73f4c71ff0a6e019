"""The read side: one read-only statement, parameters bound by the engine, through the API or directly."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from collector_support import RawClient, make_span, new_request, token_config, wait_stored

INJECTIONS = [
    "x' OR '1'='1",
    "x'; DROP TABLE spanledger.otel_traces; --",
    "x\\' OR 1=1 --",
    "') UNION ALL SELECT name FROM system.tables --",
    "{u:String}",
]


def _post(api: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(f"{api}/v1/sql", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture
def loaded(collector):
    request, scope = new_request("sql-test")
    for user in ("alice", "bob", "carol"):
        make_span(scope, f"span-{user}", attributes={"spanledger.user.id": user})
    RawClient(collector.server.address).export(request.SerializeToString())
    wait_stored(collector, 3)
    return collector


def test_parameters_are_bound_by_the_engine(loaded):
    status, body = _post(loaded.api.url, {"query": "SELECT SpanName FROM spanledger.otel_traces WHERE UserId = {u:String}",
                                          "parameters": {"u": "bob"}})
    assert status == 200 and body["rows"] == [["span-bob"]] and body["columns"] == ["SpanName"]


@pytest.mark.parametrize("evil", INJECTIONS)
def test_injection_strings_are_only_ever_values(loaded, evil):
    status, body = _post(loaded.api.url, {"query": "SELECT count() FROM spanledger.otel_traces WHERE UserId = {u:String}",
                                          "parameters": {"u": evil}})
    assert status == 200 and body["rows"] == [[0]]
    assert loaded.store().query("SELECT count() FROM spanledger.otel_traces").result_rows == [(3,)]


@pytest.mark.parametrize("query, expected", [
    ("DROP TABLE spanledger.otel_traces", "read-only"),
    ("INSERT INTO spanledger.otel_traces (SpanName) VALUES ('x')", "read-only"),
    ("SELECT 1; DROP TABLE spanledger.otel_traces", "only one statement"),
    ("SET readonly = 0", "read-only"),
    ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "table function"),
    ("SELEC 1", "not valid ClickHouse SQL"),
    ("", "empty query"),
])
def test_writes_multiple_statements_and_bad_sql_are_refused(loaded, query, expected):
    status, body = _post(loaded.api.url, {"query": query})
    assert status == 400 and expected in body["error"]
    assert loaded.store().query("SELECT count() FROM spanledger.otel_traces").result_rows == [(3,)]


def test_bad_body_gets_an_example(loaded):
    status, body = _post(loaded.api.url, {"sql": "SELECT 1"})
    assert status == 400 and '"query"' in body["error"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spanledger.collector.cli", "--log-level", "warning", "sql", *args],
                          capture_output=True, text=True, timeout=120)


def test_cli_goes_through_a_running_collector(loaded):
    out = _cli("SELECT UserId, count() AS n FROM spanledger.otel_traces GROUP BY UserId ORDER BY UserId",
               "--data-dir", str(loaded.data_dir), "--format", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [{"UserId": "alice", "n": 1}, {"UserId": "bob", "n": 1}, {"UserId": "carol", "n": 1}]


def test_cli_opens_the_store_directly_when_no_collector_runs(loaded):
    data_dir = loaded.data_dir
    loaded.stop()
    out = _cli("SELECT SpanName FROM spanledger.otel_traces WHERE UserId = {u:String}", "--param", "u=carol",
               "--data-dir", str(data_dir), "--format", "csv")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["SpanName", "span-carol"]
    table = _cli("SELECT count() AS spans FROM spanledger.otel_traces", "--data-dir", str(data_dir))
    assert "spans" in table.stdout and "3" in table.stdout and "(1 row)" in table.stdout
    bad = _cli("DROP TABLE spanledger.otel_traces", "--data-dir", str(data_dir))
    assert bad.returncode == 1 and "read-only" in bad.stderr


TENANTS_CONFIG = token_config(operators=("operator-token-0123456789",),
                              tenants={"acme": "acme-token-0123456789ab", "globex": "globex-token-0123456789"})


def _post_as(api: str, token: str, query: str, parameters: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(f"{api}/v1/sql", data=json.dumps({"query": query, "parameters": parameters or {}}).encode(),
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_a_tenant_never_sees_another_tenants_rows(collector_factory):
    collector = collector_factory(TENANTS_CONFIG)
    for tenant, token, n in (("acme", "acme-token-0123456789ab", 2), ("globex", "globex-token-0123456789", 3)):
        request, scope = new_request(tenant)
        for i in range(n):
            make_span(scope, f"{tenant}-{i}", attributes={"gen_ai.request.model": "gpt-4o", "gen_ai.provider.name": "openai",
                                                          "gen_ai.usage.input_tokens": 100})
        RawClient(collector.server.address, metadata=(("authorization", f"Bearer {token}"),)).export(request.SerializeToString())
    wait_stored(collector, 5)
    api = collector.api.url
    status, body = _post_as(api, "acme-token-0123456789ab", "SELECT SpanName FROM spanledger.otel_traces ORDER BY SpanName")
    assert status == 200 and body["rows"] == [["acme-0"], ["acme-1"]]
    status, body = _post_as(api, "globex-token-0123456789", "SELECT sum(Spans) FROM spanledger.spanledger_usage_hourly")
    assert body["rows"] == [[3]]
    for evil in ("SELECT * FROM merge('spanledger', 'otel_traces')",
                 "SELECT count() FROM spanledger.otel_traces SETTINGS additional_table_filters = {}",
                 "SELECT count() FROM spanledger.spanledger_prices",
                 "SELECT count() FROM system.parts",
                 "SELECT * FROM (WITH t AS (SELECT 1) SELECT * FROM t) AS s, t"):  # a CTE outside its query
        status, body = _post_as(api, "acme-token-0123456789ab", evil)
        assert status == 400, (evil, body)
    status, body = _post_as(api, "operator-token-0123456789", "SELECT count() FROM spanledger.otel_traces")
    assert body["rows"] == [[5]]
    status, body = _post_as(api, "wrong-token-00000000000", "SELECT 1")
    assert status == 401 and "wrong-token" not in json.dumps(body)
