"""Exports: CSV / JSON lines of activities and OTLP/JSON of spans, streamed; an OTLP export imported into a
second collector (its own process) gives back the same spans."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time

import httpx
import pytest
from collector_support import FAST_BATCH, RawClient, make_span, new_request, rows, wait_stored
from otlp_http_support import OPERATOR_TOKEN, TENANT_TOKENS, auth_config
from serve_support import serve_routers

from spanledger.collector.query.export import export_chunks
from spanledger.collector.serve.export import router

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent / "forward"))
from process_support import CollectorProcess  # noqa: E402

TOKEN, ACME = OPERATOR_TOKEN, TENANT_TOKENS["acme"]
AUTH = FAST_BATCH + auth_config()
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}
# every column an OTLP round trip must keep, as text, so both stores compare exactly
ROUND_TRIP = ("SELECT SpanId, toString(tuple(toUnixTimestamp64Nano(Timestamp), TraceId, ParentSpanId, TraceState, "
              "SpanName, SpanKind, ServiceName, ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration, "
              "StatusCode, StatusMessage, arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp), Events.Name, "
              "Events.Attributes, Links.TraceId, Links.SpanId, Links.TraceState, Links.Attributes, Model, Provider, "
              "AgentName, InputTokens, OutputTokens, toString(TotalCost), CostSource)) AS span "
              "FROM spanledger.otel_traces ORDER BY SpanId")


def _fill(collector, token: str | None = None, service: str = "exported", n_traces: int = 3) -> int:
    client = RawClient(collector.server.address, metadata=(("authorization", f"Bearer {token}"),) if token else ())
    sent = 0
    try:
        for t in range(n_traces):
            request, scope = new_request(service)
            request.resource_spans[0].resource.attributes.add(key="deployment.environment").value.string_value = "prod"
            scope.scope.version = "1.2.3"
            trace_id = os.urandom(16)
            root = make_span(scope, "invoke_agent planner", trace_id=trace_id,
                             attributes={"gen_ai.agent.name": "planner", "gen_ai.operation.name": "invoke_agent"})
            root.kind = 2
            llm = make_span(scope, "chat gpt-4o", trace_id=trace_id, parent=root.span_id, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 1000 + t, "gen_ai.usage.output_tokens": 50, "user.id": f"u-{t}",
                "gen_ai.agent.name": "planner"})
            llm.kind = 3
            llm.status.code, llm.status.message = 2, "rate limited"
            event = llm.events.add(time_unix_nano=llm.start_time_unix_nano + 123, name="retry")
            event.attributes.add(key="attempt").value.string_value = "2"
            link = llm.links.add(trace_id=os.urandom(16), span_id=os.urandom(8), trace_state="k=v")
            link.attributes.add(key="why").value.string_value = "follows"
            make_span(scope, "execute_tool search", trace_id=trace_id, parent=root.span_id,
                      attributes={"gen_ai.tool.name": "search", "gen_ai.operation.name": "execute_tool",
                                  "spanledger.cost.total_usd": "0.000123456789"})
            client.export(request.SerializeToString())
            sent += 3
    finally:
        client.close()
    return sent


@pytest.fixture
def filled(collector_factory):
    collector = collector_factory(AUTH)
    sent = _fill(collector, TOKEN) + _fill(collector, ACME, service="acme-bot", n_traces=1)
    wait_stored(collector, sent)
    return collector, sent


def test_otlp_export_imports_into_a_second_collector_as_the_same_spans(filled, tmp_path):
    collector, sent = filled
    with serve_routers(collector, router) as url:
        response = httpx.get(f"{url}/v1/export", params={"format": "otlp"}, headers=OPERATOR, timeout=60)
    assert response.status_code == 200
    lines = response.content.splitlines()
    assert lines and all(json.loads(line)["resourceSpans"] for line in lines)
    assert sum(len(ss["spans"]) for line in lines for rs in json.loads(line)["resourceSpans"]
               for ss in rs["scopeSpans"]) == sent
    second = CollectorProcess(tmp_path / "second")
    try:
        for line in lines:
            imported = httpx.post(second.http_url + "/v1/traces", content=line,
                                  headers={"Content-Type": "application/json"})
            assert imported.status_code == 200 and "partialSuccess" not in imported.json(), imported.text
        second.wait_count(sent)
        here = [(r["SpanId"], r["span"]) for r in rows(collector, ROUND_TRIP)]
        there = [(r["SpanId"], r["span"]) for r in second.sql(ROUND_TRIP)]
    finally:
        second.stop()
    assert here == there
    assert len(here) == sent


def test_csv_and_jsonl_exports_carry_the_activities(filled):
    collector, sent = filled
    with serve_routers(collector, router) as url:
        as_csv = httpx.get(f"{url}/v1/export", params={"format": "csv"}, headers=OPERATOR)
        as_jsonl = httpx.get(f"{url}/v1/export", params={"format": "jsonl"}, headers=OPERATOR)
        planner_llm = httpx.get(f"{url}/v1/export", params={"format": "jsonl", "where": "agent:planner AND tokens>0",
                                                            "service": "exported"}, headers=OPERATOR)
    assert as_csv.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(as_csv.text)))
    records = [json.loads(line) for line in as_jsonl.text.splitlines()]
    assert len(table) == len(records) == sent
    assert [r["span_id"] for r in table] == [r["span_id"] for r in records]
    tool = next(r for r in records if r["tool"] == "search")
    assert tool["cost_usd"] == "0.000123456789" and tool["cost_source"] == "provided"
    llm = [json.loads(line) for line in planner_llm.text.splitlines()]
    assert len(llm) == 3 and {r["model"] for r in llm} == {"gpt-4o"}
    assert sorted(r["input_tokens"] for r in llm) == [1000, 1001, 1002]
    assert {r["tenant"] for r in records} == {"", "acme"}


def test_a_tenant_exports_only_its_own_rows_and_no_tenant_column(filled):
    collector, _ = filled
    with serve_routers(collector, router) as url:
        mine = httpx.get(f"{url}/v1/export", params={"format": "jsonl"}, headers={"Authorization": f"Bearer {ACME}"})
        sneaky = httpx.get(f"{url}/v1/export", params={"format": "jsonl", "tenant": "globex"},
                           headers={"Authorization": f"Bearer {ACME}"})
    records = [json.loads(line) for line in mine.text.splitlines()]
    assert len(records) == 3 and {r["service"] for r in records} == {"acme-bot"}
    assert "tenant" not in records[0]
    assert sneaky.status_code == 400 and "operator" in sneaky.json()["error"]


def test_streaming_in_small_blocks_gives_the_same_export(filled):
    collector, sent = filled
    whole = b"".join(export_chunks(collector, {}, tenant=None, fmt="jsonl", block_rows=100_000))
    chunks = list(export_chunks(collector, {}, tenant=None, fmt="jsonl", block_rows=2))
    assert len(chunks) >= sent // 2
    assert b"".join(chunks) == whole


def test_time_range_and_bad_filters(filled):
    collector, sent = filled
    future = str(int(time.time()) + 3600)
    with serve_routers(collector, router) as url:
        none = httpx.get(f"{url}/v1/export", params={"format": "csv", "since": future}, headers=OPERATOR)
        everything = httpx.get(f"{url}/v1/export", params={"format": "csv", "until": future}, headers=OPERATOR)
        bad_format = httpx.get(f"{url}/v1/export", params={"format": "xml"}, headers=OPERATOR)
        bad_where = httpx.get(f"{url}/v1/export", params={"where": "agent:(("}, headers=OPERATOR)
        bad_time = httpx.get(f"{url}/v1/export", params={"since": "yesterday-ish"}, headers=OPERATOR)
        no_token = httpx.get(f"{url}/v1/export")
    assert none.status_code == 200 and len(none.text.splitlines()) == 1  # the header only
    assert len(everything.text.splitlines()) == sent + 1
    for response in (bad_format, bad_where, bad_time):
        assert response.status_code == 400 and response.json()["error"]
    assert no_token.status_code == 401


def test_cli_export_reads_the_store_when_no_collector_runs(collector_factory, tmp_path):
    data = tmp_path / "cli"
    collector = collector_factory(FAST_BATCH, data_dir=data)
    sent = _fill(collector)
    wait_stored(collector, sent)
    expected = b"".join(export_chunks(collector, {"agent": ["planner"]}, tenant=None, fmt="csv"))
    collector.stop(timeout_s=10)
    out = tmp_path / "out.csv"
    result = subprocess.run([sys.executable, "-m", "spanledger.collector.cli", "export", "--data-dir", str(data),
                             "--format", "csv", "--filter", "agent=planner", "--output", str(out)],
                            capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    assert out.read_bytes() == expected
    assert len(list(csv.DictReader(io.StringIO(out.read_text())))) == 6
    bad = subprocess.run([sys.executable, "-m", "spanledger.collector.cli", "export", "--data-dir", str(data),
                          "--where", "cost>>1"], capture_output=True, timeout=120)
    assert bad.returncode != 0 and b"where: expected a value" in bad.stderr
