"""Spans leave through the real OTLP/gRPC exporter and arrive intact at a real gRPC server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

import spanledger
from spanledger import semconv as sc


class RecordingTraceService(trace_service_pb2_grpc.TraceServiceServicer):
    """A tiny OTLP TraceService: keeps every request and its metadata."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.metadata: list[dict[str, str]] = []
        self.received = threading.Event()

    def Export(self, request, context):  # noqa: N802 - gRPC method name
        self.requests.append(request)
        self.metadata.append(dict(context.invocation_metadata()))
        self.received.set()
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
def otlp_server() -> Iterator[tuple[RecordingTraceService, int]]:
    service = RecordingTraceService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield service, port
    server.stop(grace=None)


def spans_of(service: RecordingTraceService) -> list[tuple[dict, trace_pb2.Span]]:
    out = []
    for request in service.requests:
        for resource_spans in request.resource_spans:
            resource = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                assert scope_spans.scope.name == "spanledger"
                out.extend((resource, span) for span in scope_spans.spans)
    return out


def values(span: trace_pb2.Span) -> dict:
    decoded = {}
    for kv in span.attributes:
        kind = kv.value.WhichOneof("value")
        value = getattr(kv.value, kind)
        decoded[kv.key] = list(v.string_value for v in value.values) if kind == "array_value" else value
    return decoded


def test_llm_span_exported_field_by_field(otlp_server) -> None:
    service, port = otlp_server
    settings = spanledger.configure(
        service_name="otlp-test",
        endpoint=f"http://127.0.0.1:{port}",
        headers={"authorization": "Bearer secret-token"},
        resource_attributes={"deployment.environment.name": "test"},
        set_global_provider=False,
    )
    try:
        assert settings is not None and settings.insecure
        with spanledger.associate(user_id="u-1"):
            with spanledger.agent_run("planner") as run:
                with spanledger.llm_call("gpt-4o", provider="openai") as call:
                    call.set_response(model="gpt-4o-2024-08-06", finish_reasons=["stop", "length"])
                    call.set_usage(input_tokens=1_000, output_tokens=500, cache_read_tokens=200)
        assert spanledger.force_flush(10_000)
    finally:
        spanledger.shutdown()
    assert service.metadata[0]["authorization"] == "Bearer secret-token"
    exported = spans_of(service)
    assert [span.name for _, span in exported] == ["chat gpt-4o", "invoke_agent planner"]
    resource, llm = exported[0]
    assert resource["service.name"] == "otlp-test"
    assert resource["deployment.environment.name"] == "test"
    run_ctx = run.span.get_span_context()
    assert llm.trace_id == run_ctx.trace_id.to_bytes(16, "big")
    assert llm.parent_span_id == run_ctx.span_id.to_bytes(8, "big")
    assert llm.span_id == call.span.get_span_context().span_id.to_bytes(8, "big")
    assert llm.kind == trace_pb2.Span.SPAN_KIND_CLIENT
    assert llm.end_time_unix_nano >= llm.start_time_unix_nano > 0
    assert llm.status.code == trace_pb2.Status.STATUS_CODE_UNSET
    assert values(llm) == {
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.ACTIVITY_TYPE: "llm_call",
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
        sc.USER_ID: "u-1",
        sc.GEN_AI_AGENT_NAME: "planner",
        sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-2024-08-06",
        sc.GEN_AI_RESPONSE_FINISH_REASONS: ["stop", "length"],
        sc.TOKENS_SOURCE: "provider",
        sc.GEN_AI_USAGE_INPUT_TOKENS: 1_000,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 500,
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 200,
        sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: 0,
        sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 0,
        sc.COST_INPUT_USD: "0.00225",  # 800 x $2.50/M + 200 x $1.25/M
        sc.COST_OUTPUT_USD: "0.005",
        sc.COST_TOTAL_USD: "0.00725",
        sc.GEN_AI_USAGE_COST: 0.00725,  # the same total as a double, for Langfuse / OpenLIT
        sc.COST_SOURCE: "computed",
        sc.COST_PRICING_MODEL: "openai/gpt-4o",
    }
    assert isinstance(values(llm)[sc.GEN_AI_USAGE_INPUT_TOKENS], int)
    assert isinstance(values(llm)[sc.GEN_AI_USAGE_COST], float)


def test_standard_environment_variables(otlp_server, monkeypatch) -> None:
    service, port = otlp_server
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://wrong-host:1")  # the traces-specific one wins
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme,authorization=Bearer%20env")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=agents,service.version=1.2")
    settings = spanledger.configure(set_global_provider=False)
    try:
        assert settings is not None and settings.endpoint == f"127.0.0.1:{port}" and settings.insecure
        spanledger.product_event("env_configured")
        spanledger.force_flush(10_000)
    finally:
        spanledger.shutdown()
    assert service.metadata[0]["x-tenant"] == "acme"
    assert service.metadata[0]["authorization"] == "Bearer env"
    resource, span = spans_of(service)[0]
    assert (resource["service.name"], resource["team"], resource["service.version"]) == ("from-env", "agents", "1.2")
    assert span.name == "env_configured"
