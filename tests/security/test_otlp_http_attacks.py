"""Hostile input on the OTLP/HTTP receiver and /metrics: nothing a client sends crashes the receiver, escapes
its limits or changes its tenant; a hypothesis fuzz of OTLP/JSON bodies."""

from __future__ import annotations

import gzip
import json
import os
import time

import httpx
import pytest
from collector_support import FAST_BATCH, make_span, new_request, rows, wait_stored
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from otlp_http_support import start_http_collector, traces_url

from spanledger.collector.ingest.otlp_json import otlp_json_to_protobuf
from spanledger.collector.ingest.validation import InvalidRequest

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}
TOKEN, ACME = "operator-token-0123456789", "acme-token-0123456789ab"
CONFIG = FAST_BATCH + f"""receivers:
  otlp:
    protocols:
      http:
        max_request_body_size: 262144
        auth: {{authenticator: bearertokenauth}}
extensions:
  bearertokenauth:
    tokens: ["{TOKEN}"]
    tenants: {{acme: "{ACME}"}}
"""
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def collector(tmp_path_factory):
    collector = start_http_collector(tmp_path_factory.mktemp("otlp-http-attacks"), CONFIG)
    yield collector
    collector.stop(timeout_s=10)


def _post(collector, body: bytes, headers: dict) -> httpx.Response:
    return httpx.post(traces_url(collector), content=body, headers={**OPERATOR, **headers}, timeout=30)


def _still_serves(collector) -> None:
    request, scope = new_request("after-attack")
    make_span(scope, "alive")
    assert _post(collector, request.SerializeToString(), PROTOBUF).status_code == 200


def test_multi_member_gzip_bomb_is_413(collector):
    member = gzip.compress(b"\x00" * (4 << 20))
    response = _post(collector, member * 8, {**PROTOBUF, "Content-Encoding": "gzip"})
    assert response.status_code == 413
    _still_serves(collector)


def test_deflate_bomb_is_413(collector):
    import zlib

    response = _post(collector, zlib.compress(b"\x00" * (64 << 20), 9), {**PROTOBUF, "Content-Encoding": "deflate"})
    assert response.status_code == 413


def test_a_lying_content_length_is_refused_before_reading(collector):
    import socket

    host, port = collector.http_server.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                  b"Authorization: Bearer " + TOKEN.encode() + b"\r\nContent-Length: 99999999999\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 413")


_DEEP_ANY_VALUE = json.loads('{"arrayValue": {"values": [' * 200 + '{"intValue": 1}' + ']}}' * 200)


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "00" * 16, "spanId": "00" * 8,
               "attributes": [{"key": "k", "value": _DEEP_ANY_VALUE}]}]}]}]}).encode(),
    b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": 1e400}]}]}]}',
    b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "abc"}]}]}]}',
    b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": 12345}]}]}]}',
    b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"kind": "SPAN_KIND_NOPE"}]}]}]}',
    b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "-5"}]}]}]}',
    b'{"resourceSpans": [{"scopeSpans": [{"spans": ["not an object"]}]}]}',
    b'\xff\xfe{"resourceSpans": []}',
    b'{"resourceSpans": [], "resourceSpans": {"x": 1}}',
])
def test_hostile_json_is_400_and_the_receiver_lives_on(collector, body):
    """Refused whole (400/413), or, where the spans parse but are not valid, each rejected in partial_success
    (an unknown enum name is ignored, as OTLP asks of receivers, and the span then lacks its ids)."""
    response = _post(collector, body, JSON)
    if response.status_code == 200:
        assert int(response.json()["partialSuccess"]["rejectedSpans"]) >= 1
    else:
        assert response.status_code in (400, 413), response.text
        assert response.json()["error"]
    _still_serves(collector)


def test_the_tenant_comes_from_the_token_never_from_the_body(collector):
    request, scope = new_request("spoof")
    request.resource_spans[0].resource.attributes.add(key="spanledger.tenant").value.string_value = "victim"
    request.resource_spans[0].resource.attributes.add(key="tenant.id").value.string_value = "victim"
    span = make_span(scope, "spoofed-tenant", attributes={"spanledger.tenant": "victim", "TenantId": "victim"})
    body = request.SerializeToString()
    response = httpx.post(traces_url(collector), content=body,
                          headers={**PROTOBUF, "Authorization": f"Bearer {ACME}", "X-Tenant": "victim"})
    assert response.status_code == 200
    wait_stored(collector, 1)
    found = rows(collector, "SELECT TenantId FROM spanledger.otel_traces WHERE SpanId = {s:String}", s=span.span_id.hex())
    assert found == [{"TenantId": "acme"}]


def _raw_status(collector, head: bytes) -> bytes:
    """Send a request head byte for byte (no client library tidying it up); the status line's code."""
    import socket

    host, port = collector.http_server.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(head)
        return s.recv(4096).split(b"\r\n", 1)[0].split(b" ")[1]


@pytest.mark.parametrize("authorization", [
    b"", b"Bearer", b"Bearer ", b"Basic " + TOKEN.encode(), b"Bearer " + TOKEN.encode() + b"x",
    b"Bearer " + TOKEN[:-1].encode(), b"Bearer " + b"a" * 10_000, b"Bearer " + TOKEN.encode() + b"\xc2\xa0",
    b"Bearer \x00" + TOKEN.encode(),
])
def test_bad_authorization_headers_are_401(collector, authorization):
    head = (b"POST /v1/traces?token=" + TOKEN.encode() + b" HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-protobuf\r\nContent-Length: 0\r\nAuthorization: " + authorization +
            b"\r\nConnection: close\r\n\r\n")
    assert _raw_status(collector, head) in (b"401", b"400")  # 400: the HTTP parser refused the header itself


def test_methods_other_than_post_are_405_and_no_cors_without_configuration(collector):
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        assert httpx.request(method, traces_url(collector), headers=OPERATOR).status_code == 405
    preflight = httpx.options(traces_url(collector), headers={"Origin": "https://evil.example",
                                                              "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers


def test_path_tricks_do_not_reach_the_route(collector):
    base = collector.http_server.url
    for path in ("/v1/traces/../traces", "/V1/TRACES", "/v1/traces%00", "//v1/traces"):
        response = httpx.post(base + path, content=b"", headers={**OPERATOR, **PROTOBUF})
        assert response.status_code in (200, 404), (path, response.status_code)
        assert response.status_code != 500


def test_mismatched_content_type_and_body_is_400_not_500(collector):
    request, scope = new_request()
    make_span(scope, "x")
    assert _post(collector, request.SerializeToString(), JSON).status_code == 400
    assert _post(collector, b'{"resourceSpans": []}', PROTOBUF).status_code == 400


# -- fuzz: any JSON at all, and OTLP-shaped JSON with hostile leaves --------------------------
_leaf = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                  st.floats(allow_nan=True), st.text(max_size=40), st.sampled_from(["00" * 16, "ab" * 8, "zz", ""]))
_json = st.recursive(_leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                    st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                     max_leaves=25)
_field_names = ["traceId", "spanId", "parentSpanId", "name", "kind", "startTimeUnixNano", "endTimeUnixNano",
                "attributes", "status", "links", "events", "trace_id", "droppedAttributesCount", "flags"]
_span = st.dictionaries(st.sampled_from(_field_names), _json, max_size=8)
_otlp = st.fixed_dictionaries({"resourceSpans": st.lists(st.fixed_dictionaries({
    "resource": st.fixed_dictionaries({"attributes": st.lists(st.fixed_dictionaries(
        {"key": st.text(max_size=10), "value": _json}), max_size=3)}),
    "scopeSpans": st.lists(st.fixed_dictionaries({"spans": st.lists(_span, max_size=3)}), max_size=2),
}), max_size=2)})


@settings(max_examples=300, deadline=None)
@given(document=st.one_of(_json, _otlp))
def test_fuzz_json_decoder_either_decodes_or_says_what_is_wrong(document):
    body = json.dumps(document, allow_nan=True).encode()
    try:
        decoded = otlp_json_to_protobuf(body)
    except InvalidRequest as exc:
        assert str(exc)
        return
    assert isinstance(decoded, bytes)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=_otlp)
def test_fuzz_receiver_answers_200_or_400_never_500(collector, document):
    response = _post(collector, json.dumps(document).encode(), JSON)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.json()["code"] == 3 and response.json()["error"]
    else:
        assert isinstance(response.json(), dict)


def _read_one_response(sock) -> bytes:
    """Head and body of one HTTP/1.1 answer, however the server splits them into packets."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            return answer
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length and (chunk := sock.recv(4096)):
        body += chunk
    return head + b"\r\n\r\n" + body


def test_a_slow_body_is_cut_off_with_408_and_its_slot_given_back(tmp_path):
    """Slowloris: a sender trickling its body cannot hold a concurrency slot for ever."""
    import socket

    config = FAST_BATCH + ("receivers:\n  otlp:\n    protocols:\n      http:\n"
                           "        read_timeout: 500ms\n        max_concurrent_requests: 1\n")
    collector = start_http_collector(tmp_path / "slow", config)
    try:
        host, port = collector.http_server.address.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                      b"Content-Length: 1000\r\n\r\n" + b"\x00" * 10)
            answer = _read_one_response(s)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"read_timeout" in answer
        request, scope = new_request("after-slowloris")
        make_span(scope, "fine")
        response = httpx.post(traces_url(collector), content=request.SerializeToString(), headers=PROTOBUF)
        assert response.status_code == 200
    finally:
        collector.stop(timeout_s=10)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=2048), compress=st.booleans(),
       content_type=st.sampled_from(["application/x-protobuf", "application/json"]))
def test_fuzz_raw_bodies_over_http_answer_200_or_400(collector, body, compress, content_type):
    headers = {"Content-Type": content_type}
    if compress:
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    response = _post(collector, body, headers)
    assert response.status_code in (200, 400), (response.status_code, response.text[:300])
    if response.status_code == 400:
        assert _status_message(response)


def _status_message(response) -> str:
    from google.rpc import status_pb2

    if response.headers["content-type"].startswith("application/x-protobuf"):
        return status_pb2.Status.FromString(response.content).message
    return response.json()["error"]
