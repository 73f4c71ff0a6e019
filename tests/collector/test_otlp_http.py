"""OTLP/HTTP receiver: real senders (the Python SDK's HTTP exporter, hand-made OTLP/JSON) checked in the store,
and the OTLP/HTTP status rules."""

from __future__ import annotations

import functools
import gzip
import json
import os
import socket
import time

import httpx
import pytest
from collector_support import FAST_BATCH, make_span, new_request, rows, wait_stored
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from otlp_http_support import OPERATOR_TOKEN, TENANT_TOKENS, auth_config, traces_url

from spanledger.collector.config import load_config

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}
TOKEN, TENANT_TOKEN = OPERATOR_TOKEN, TENANT_TOKENS["acme"]
AUTH_CONFIG = FAST_BATCH + auth_config(http="traces_url_path: /v1/traces")


@pytest.fixture
def started(collector_factory):
    """started(config_text=FAST_BATCH): a collector with the OTLP/HTTP receiver too, stopped after the test."""
    return functools.partial(collector_factory, http=True)


@pytest.fixture
def collector(started):
    return started()


def _spans_request(n: int = 3, name: str = "http-span"):
    request, scope = new_request("http-service")
    for i in range(n):
        make_span(scope, f"{name}-{i}", attributes={"gen_ai.usage.input_tokens": 10 + i})
    return request


def test_python_sdk_http_exporter_spans_are_stored(collector):
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "sdk-http"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(collector),
                                                                    compression=Compression.Gzip)))
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("parent") as parent:
        for i in range(5):
            with tracer.start_as_current_span(f"child-{i}", attributes={"gen_ai.request.model": "gpt-4o"}):
                pass
    assert provider.force_flush(10_000)
    provider.shutdown()
    wait_stored(collector, 6)
    found = rows(collector, "SELECT SpanName, TraceId, ParentSpanId, ServiceName FROM spanledger.otel_traces "
                            "ORDER BY SpanName")
    trace_id = format(parent.get_span_context().trace_id, "032x")
    assert [r["SpanName"] for r in found] == ["child-0", "child-1", "child-2", "child-3", "child-4", "parent"]
    assert {r["TraceId"] for r in found} == {trace_id}
    assert {r["ServiceName"] for r in found} == {"sdk-http"}
    assert collector.stats.spans_accepted == 6


def _json_body(trace_hex: str, span_hexes: list[str]) -> dict:
    """OTLP/JSON as the spec writes it, mixing the spellings a receiver must read."""
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-service"}}]},
        "scopeSpans": [{"scope": {"name": "hand-made"}, "spans": [
            {"traceId": trace_hex, "spanId": span_hexes[0], "name": "camel-case", "kind": "SPAN_KIND_SERVER",
             "startTimeUnixNano": str(time.time_ns()), "endTimeUnixNano": str(time.time_ns() + 5_000_000),
             "attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "42"}},
                            {"key": "flag", "value": {"boolValue": True}}],
             "status": {"code": "STATUS_CODE_ERROR", "message": "boom"},
             "links": [{"traceId": "ab" * 16, "spanId": "cd" * 8}]},
            {"trace_id": trace_hex, "span_id": span_hexes[1], "parent_span_id": span_hexes[0], "name": "snake-case",
             "kind": 3, "start_time_unix_nano": time.time_ns(), "end_time_unix_nano": time.time_ns() + 1_000,
             "attributes": [{"key": "gen_ai.usage.output_tokens", "value": {"int_value": 7}}],
             "unknownFieldFromTheFuture": {"ignored": True}},
        ]}],
    }]}


def test_hand_made_otlp_json_is_stored(collector):
    trace_hex, spans = os.urandom(16).hex(), [os.urandom(8).hex(), os.urandom(8).hex()]
    response = httpx.post(traces_url(collector), json=_json_body(trace_hex, spans))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "partialSuccess" not in response.json()
    wait_stored(collector, 2)
    found = {r["SpanName"]: r for r in rows(
        collector, "SELECT SpanName, TraceId, SpanId, ParentSpanId, SpanKind, StatusCode, StatusMessage, "
                   "SpanAttributes, Links.TraceId AS LinkTraces, ServiceName FROM spanledger.otel_traces")}
    assert found["camel-case"]["TraceId"] == trace_hex and found["camel-case"]["SpanId"] == spans[0]
    assert found["camel-case"]["SpanKind"] in ("Server", "SPAN_KIND_SERVER")
    assert found["camel-case"]["StatusCode"] in ("Error", "STATUS_CODE_ERROR")
    assert found["camel-case"]["StatusMessage"] == "boom"
    assert found["camel-case"]["SpanAttributes"]["gen_ai.usage.input_tokens"] == "42"
    assert found["camel-case"]["LinkTraces"] == ["ab" * 16]
    assert found["snake-case"]["ParentSpanId"] == spans[0]
    assert found["snake-case"]["SpanKind"] in ("Client", "SPAN_KIND_CLIENT")
    assert found["snake-case"]["SpanAttributes"]["gen_ai.usage.output_tokens"] == "7"
    assert found["snake-case"]["ServiceName"] == "json-service"


def test_protobuf_body_gzip_and_partial_success(collector):
    request = _spans_request(2)
    bad = make_span(request.resource_spans[0].scope_spans[0], "short-id")
    bad.trace_id = b"\x01" * 8
    body = gzip.compress(request.SerializeToString())
    response = httpx.post(traces_url(collector), content=body, headers={**PROTOBUF, "Content-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert "trace_id" in answer.partial_success.error_message or "trace id" in answer.partial_success.error_message
    wait_stored(collector, 2)
    assert collector.stats.spans_rejected == 1


def test_partial_success_in_json(collector):
    body = _json_body(os.urandom(16).hex(), [os.urandom(8).hex(), os.urandom(8).hex()])
    body["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["endTimeUnixNano"] = "1"  # ends before it starts
    response = httpx.post(traces_url(collector), json=body)
    assert response.status_code == 200
    assert response.json()["partialSuccess"]["rejectedSpans"] == "1"
    wait_stored(collector, 1)


def _status(response) -> status_pb2.Status:
    if response.headers["content-type"].startswith("application/x-protobuf"):
        return status_pb2.Status.FromString(response.content)
    document = response.json()
    assert document["error"] == document["message"]
    return status_pb2.Status(code=document["code"], message=document["message"])


@pytest.mark.parametrize("headers, body, fragment", [
    (PROTOBUF, b"\x0a\xff\xff\xff\xff\x0f garbage", "not a valid OTLP"),
    (JSON, b"{not json", "not valid JSON"),
    (JSON, b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}', "is not hex"),
    (JSON, b'{"resourceSpans": "nope"}', "expected a list"),
    (JSON, b'[1, 2]', "an object with resourceSpans"),
    ({**PROTOBUF, "Content-Encoding": "gzip"}, gzip.compress(bytes(range(256)) * 8)[:-12], "truncated"),
    ({**PROTOBUF, "Content-Encoding": "gzip"}, b"not gzip at all", "cannot be decompressed"),
])
def test_bad_body_is_400_with_a_status_in_the_request_content_type(collector, headers, body, fragment):
    response = httpx.post(traces_url(collector), content=body, headers=headers)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(headers["Content-Type"])
    status = _status(response)
    assert status.code == 3  # INVALID_ARGUMENT
    assert fragment in status.message


def test_wrong_content_type_is_415(collector):
    response = httpx.post(traces_url(collector), content=b"hello", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert "application/x-protobuf" in response.json()["error"]
    response = httpx.post(traces_url(collector), content=b"hello")
    assert response.status_code == 415


def test_content_type_parameters_are_accepted(collector):
    response = httpx.post(traces_url(collector), content=_spans_request(1).SerializeToString(),
                          headers={"Content-Type": "application/x-protobuf; charset=binary"})
    assert response.status_code == 200
    wait_stored(collector, 1)


SMALL_LIMIT = FAST_BATCH + "receivers:\n  otlp:\n    protocols:\n      http:\n        max_request_body_size: 65536\n"


def test_over_the_size_limit_is_413_declared_streamed_and_decompressed(started):
    collector = started(SMALL_LIMIT)
    big = b"\x00" * 70_000
    declared = httpx.post(traces_url(collector), content=big, headers=PROTOBUF)
    assert declared.status_code == 413
    assert "max_request_body_size" in _status(declared).message

    def chunks():  # no Content-Length: the limit is checked while reading
        for _ in range(10):
            yield b"\x00" * 10_000

    streamed = httpx.post(traces_url(collector), content=chunks(), headers=PROTOBUF)
    assert streamed.status_code == 413
    bomb = gzip.compress(b"\x00" * (50 << 20))  # 50 MiB of zeros in ~50 KiB
    assert len(bomb) < 65536
    bombed = httpx.post(traces_url(collector), content=bomb, headers={**PROTOBUF, "Content-Encoding": "gzip"})
    assert bombed.status_code == 413
    assert "after decompression" in _status(bombed).message
    assert collector.stats.spans_accepted == 0
    ok = httpx.post(traces_url(collector), content=gzip.compress(_spans_request(2).SerializeToString()),
                    headers={**PROTOBUF, "Content-Encoding": "gzip"})
    assert ok.status_code == 200
    wait_stored(collector, 2)


def test_unsupported_content_encoding_is_refused(collector):
    response = httpx.post(traces_url(collector), content=b"x", headers={**PROTOBUF, "Content-Encoding": "br"})
    assert response.status_code == 415
    assert "gzip" in _status(response).message


def test_bad_or_missing_token_is_401_and_tenant_token_sets_the_tenant(started):
    collector = started(AUTH_CONFIG)
    body = _spans_request(1).SerializeToString()
    for headers in (PROTOBUF, {**PROTOBUF, "Authorization": "Bearer wrong-token-0123456789"},
                    {**PROTOBUF, "Authorization": TOKEN}):
        response = httpx.post(traces_url(collector), content=body, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "bearer token" in _status(response).message
    response = httpx.post(traces_url(collector), content=_spans_request(2, "acme").SerializeToString(),
                          headers={**PROTOBUF, "Authorization": f"Bearer {TENANT_TOKEN}"})
    assert response.status_code == 200
    response = httpx.post(traces_url(collector), content=body, headers={**PROTOBUF, "Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    wait_stored(collector, 3)
    tenants = rows(collector, "SELECT TenantId, count() AS n FROM spanledger.otel_traces GROUP BY TenantId ORDER BY TenantId")
    assert tenants == [{"TenantId": "", "n": 1}, {"TenantId": "acme", "n": 2}]


def test_wal_full_is_503_with_retry_after(started):
    collector = started(FAST_BATCH + "exporters:\n  clickhouse:\n    wal:\n      max_size_mib: 0\n")
    response = httpx.post(traces_url(collector), content=_spans_request(1).SerializeToString(), headers=PROTOBUF)
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert "retry later" in _status(response).message
    assert collector.stats.refused_wal_full == 1


def test_too_many_requests_at_once_is_429(started):
    collector = started(FAST_BATCH + "receivers:\n  otlp:\n    protocols:\n      http:\n        max_concurrent_requests: 1\n")
    host, port = collector.http_server.address.rsplit(":", 1)
    slow = socket.create_connection((host, int(port)))
    try:  # headers and half a body: the request is in flight, reading
        slow.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                     b"Content-Length: 100\r\n\r\n" + b"\x00" * 10)
        deadline = time.monotonic() + 10
        while True:
            response = httpx.post(traces_url(collector), content=b"", headers=PROTOBUF)
            if response.status_code == 429 or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert response.status_code == 429
        assert response.headers["retry-after"] == "1"
    finally:
        slow.close()
    deadline = time.monotonic() + 10
    while httpx.post(traces_url(collector), content=b"", headers=PROTOBUF).status_code == 429:
        assert time.monotonic() < deadline, "the slot of a disconnected client was never given back"
        time.sleep(0.02)


def test_other_paths_and_methods_answer_json(collector):
    missing = httpx.post(collector.http_server.url + "/v1/metrics", content=b"", headers=PROTOBUF)
    assert missing.status_code == 404 and "/v1/traces" in missing.json()["error"]
    wrong_method = httpx.get(traces_url(collector))
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"


CORS = FAST_BATCH + """receivers:
  otlp:
    protocols:
      http:
        cors:
          allowed_origins: ["https://app.example.com", "https://*.agents.example.com"]
          allowed_headers: ["X-Custom"]
          max_age: 7200
"""


def test_cors_preflight_for_configured_origins_only(started):
    collector = started(CORS)
    for origin in ("https://app.example.com", "https://eu.agents.example.com"):
        preflight = httpx.options(traces_url(collector), headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-custom"})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == origin
        assert preflight.headers["access-control-max-age"] == "7200"
    refused = httpx.options(traces_url(collector), headers={
        "Origin": "https://evil.example.net", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in refused.headers
    not_nested = httpx.options(traces_url(collector), headers={
        "Origin": "https://a.b.agents.example.com.evil.net", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in not_nested.headers
    simple = httpx.post(traces_url(collector), content=_spans_request(1).SerializeToString(),
                        headers={**PROTOBUF, "Origin": "https://app.example.com"})
    assert simple.status_code == 200
    assert simple.headers["access-control-allow-origin"] == "https://app.example.com"


def test_grpc_and_http_share_the_duplicate_check(collector):
    from collector_support import RawClient

    body = _spans_request(2).SerializeToString()
    client = RawClient(collector.server.address)
    try:
        client.export(body)
    finally:
        client.close()
    assert httpx.post(traces_url(collector), content=body, headers=PROTOBUF).status_code == 200
    wait_stored(collector, 2)
    assert collector.stats.duplicate_requests == 1
    assert rows(collector, "SELECT count() AS n FROM spanledger.otel_traces") == [{"n": 2}]


def test_http_is_on_when_its_key_is_in_the_file_and_off_otherwise():
    assert load_config(text="receivers:\n  otlp:\n    protocols:\n      http:\n").http_enabled()
    assert not load_config(text="receivers:\n  otlp:\n    protocols:\n      grpc:\n").http_enabled()
    assert not load_config(text=FAST_BATCH).http_enabled()
    assert load_config().http_enabled()  # no file: the shipped otel-config.yaml, which has it
    assert load_config(path=__import__("pathlib").Path(__file__).parents[2] / "otel-config.yaml").http_enabled() \
        in (True,)
