"""A separate process exports with the stock OpenTelemetry SDK, configured only by OTEL_* variables."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from decimal import Decimal

from collector_support import rows, wait_stored

SENDER = textwrap.dedent("""
    import json, time
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource

    provider = TracerProvider(resource=Resource.create())
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    tracer = provider.get_tracer("e2e")
    sent = []
    for i in range(20):
        with tracer.start_as_current_span("invoke_agent planner", attributes={"gen_ai.agent.name": "planner"}) as root:
            with tracer.start_as_current_span("chat gpt-4o", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 1000 + i,
                "gen_ai.usage.output_tokens": 200, "gen_ai.usage.cache_read.input_tokens": 400}) as llm:
                time.sleep(0.002)
            sent.append({"trace": format(root.get_span_context().trace_id, "032x"),
                         "root": format(root.get_span_context().span_id, "016x"),
                         "llm": format(llm.get_span_context().span_id, "016x"),
                         "llm_ns": llm.end_time - llm.start_time, "i": i})
    provider.shutdown()
    print(json.dumps(sent))
""")


def run_sender(address: str) -> list[dict]:
    import json

    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{address}", "OTEL_EXPORTER_OTLP_INSECURE": "true",
           "OTEL_SERVICE_NAME": "e2e-agent", "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=staging"}
    out = subprocess.run([sys.executable, "-c", SENDER], env=env, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout)


def test_sdk_spans_arrive_with_ids_parents_durations_tokens_and_costs(collector_factory, tmp_path):
    collector = collector_factory()
    sent = run_sender(collector.server.address)
    wait_stored(collector, 40)

    stored = {r["SpanId"]: r for r in rows(collector, """
        SELECT TraceId, SpanId, ParentSpanId, SpanName, ServiceName, Environment, Duration, Operation, Provider,
               Model, AgentName, InputTokens, OutputTokens, CacheReadTokens, InputCost, OutputCost, TotalCost, CostSource
        FROM spanledger.otel_traces""")}
    assert len(stored) == 40
    for s in sent:
        root, llm = stored[s["root"]], stored[s["llm"]]
        assert root["TraceId"] == llm["TraceId"] == s["trace"]
        assert root["ParentSpanId"] == "" and llm["ParentSpanId"] == s["root"]
        assert llm["Duration"] == s["llm_ns"]
        assert (root["ServiceName"], root["Environment"], root["AgentName"]) == ("e2e-agent", "staging", "planner")
        assert (llm["Operation"], llm["Provider"], llm["Model"]) == ("chat", "openai", "gpt-4o")
        assert (llm["InputTokens"], llm["OutputTokens"], llm["CacheReadTokens"]) == (1000 + s["i"], 200, 400)
        # gpt-4o: $2.50/M input, $1.25/M cached input, $10/M output (OpenAI's published prices)
        expected_in = (Decimal(600 + s["i"]) * Decimal("2.50") + Decimal(400) * Decimal("1.25")) / 10**6
        assert llm["InputCost"] == expected_in
        assert llm["OutputCost"] == Decimal(200) * 10 / 10**6
        assert llm["TotalCost"] == expected_in + Decimal("0.002")
        assert llm["CostSource"] == "computed"
        assert root["CostSource"] == "" and root["TotalCost"] == 0

    # the rollup agrees with the raw spans
    hourly = rows(collector, "SELECT sum(TotalCost) AS c, sum(Spans) AS n FROM spanledger.spanledger_usage_hourly")[0]
    raw = rows(collector, "SELECT sum(TotalCost) AS c FROM spanledger.otel_traces")[0]
    assert hourly["n"] == 40 and hourly["c"] == raw["c"]
    assert rows(collector, "SELECT count() AS n, uniqExact(TraceId, SpanId) AS u FROM spanledger.otel_traces")[0] == {"n": 40, "u": 40}

    # a restart keeps everything
    data_dir = collector.data_dir
    collector.stop()
    again = collector_factory(data_dir=data_dir)
    assert rows(again, "SELECT count() AS n FROM spanledger.otel_traces")[0]["n"] == 40


def test_a_second_collector_on_the_same_data_dir_is_refused(collector):
    out = subprocess.run([sys.executable, "-m", "spanledger.collector.cli", "collector", "--data-dir", str(collector.data_dir),
                          "--grpc-endpoint", "127.0.0.1:0", "--api-endpoint", "127.0.0.1:0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "another collector is running on" in out.stderr and "--data-dir" in out.stderr
