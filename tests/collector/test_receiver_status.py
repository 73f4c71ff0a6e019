"""The OTLP status rules: every client mistake gets its own code and an English message."""

from __future__ import annotations

import gzip
import os
import time

import grpc
import pytest
from collector_support import RawClient, make_span, new_request, rows, token_config, wait_stored
from google.rpc import error_details_pb2

TOKEN = "operator-token-0123456789"
TENANT_TOKEN = "acme-token-0123456789ab"


def test_empty_request_is_ok_and_partial_success_unset(raw_client):
    response = raw_client.export(b"")
    assert not response.HasField("partial_success")


def test_valid_request_leaves_partial_success_unset(collector, raw_client):
    request, scope = new_request()
    make_span(scope, "fine")
    response = raw_client.export(request.SerializeToString())
    assert not response.HasField("partial_success")
    wait_stored(collector, 1)


def test_malformed_protobuf_is_invalid_argument(raw_client):
    with pytest.raises(grpc.RpcError) as err:
        raw_client.export(b"\x0a\xff\xff\xff\xff\x0f garbage")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid OTLP" in err.value.details()


def test_invalid_spans_are_rejected_one_by_one_and_the_rest_stored(collector, raw_client):
    request, scope = new_request()
    good = [make_span(scope, f"good-{i}") for i in range(3)]
    short_id = make_span(scope, "short-trace-id")
    short_id.trace_id = b"\x01" * 8
    backwards = make_span(scope, "backwards")
    backwards.end_time_unix_nano = backwards.start_time_unix_nano - 1
    make_span(scope, "negative-tokens", attributes={"gen_ai.usage.input_tokens": -5})
    make_span(scope, "nan-cost", attributes={"spanledger.cost.total_usd": "NaN"})
    make_span(scope, "nan-tokens", attributes={"gen_ai.usage.output_tokens": float("nan")})
    make_span(scope, "ancient", start_ns=10**9)  # 1970: seconds mistaken for nanoseconds
    make_span(scope, "NOT_UTF8")
    payload = request.SerializeToString().replace(b"NOT_UTF8", b"NOT\xff\xfeTF8")

    response = raw_client.export(payload)
    assert response.partial_success.rejected_spans == 7
    message = response.partial_success.error_message
    for expected in ("trace_id must be 16 bytes", "end_time_unix_nano is before", "is negative",
                     "not a finite number", "outside 2000-01-01", "not valid UTF-8", "The other spans were stored"):
        assert expected in message
    wait_stored(collector, 3)
    names = sorted(r["SpanName"] for r in rows(collector, "SELECT SpanName FROM spanledger.otel_traces"))
    assert names == sorted(s.name for s in good)
    assert collector.stats.spans_rejected == 7


def test_oversized_message_is_resource_exhausted_without_retry_info(collector_factory):
    collector = collector_factory("receivers:\n  otlp:\n    protocols:\n      grpc:\n        max_recv_msg_size_mib: 1\n")
    client = RawClient(collector.server.address)
    request, scope = new_request()
    make_span(scope, "big", attributes={"blob": "x" * (2 << 20)})
    with pytest.raises(grpc.RpcError) as err:
        client.export(request.SerializeToString())
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert not any(k == "google.rpc.retryinfo-bin" for k, _ in err.value.trailing_metadata() or ())


def test_gzip_bomb_is_checked_after_decompression(collector_factory):
    collector = collector_factory("receivers:\n  otlp:\n    protocols:\n      grpc:\n        max_recv_msg_size_mib: 1\n")
    request, scope = new_request()
    make_span(scope, "bomb", attributes={"blob": "A" * (32 << 20)})
    payload = request.SerializeToString()
    assert len(gzip.compress(payload)) < (1 << 20)  # small on the wire, 32 MiB inside
    client = RawClient(collector.server.address, compression=grpc.Compression.Gzip)
    with pytest.raises(grpc.RpcError) as err:
        client.export(payload)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # and the collector still serves others
    ok_request, ok_scope = new_request()
    make_span(ok_scope, "after-bomb")
    RawClient(collector.server.address).export(ok_request.SerializeToString())
    wait_stored(collector, 1)


AUTH_CONFIG = token_config(operators=(TOKEN,), tenants={"acme": TENANT_TOKEN})


def test_bad_credentials_are_unauthenticated_and_tenant_comes_from_the_token(collector_factory):
    collector = collector_factory(AUTH_CONFIG)
    request, scope = new_request()
    make_span(scope, "spoof", attributes={"spanledger.tenant.id": "other-tenant"})
    payload = request.SerializeToString()
    for metadata in ((), (("authorization", "Bearer wrong-token-000000000"),), (("authorization", TOKEN),)):
        with pytest.raises(grpc.RpcError) as err:
            RawClient(collector.server.address, metadata=metadata).export(payload)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert TOKEN not in err.value.details()
    RawClient(collector.server.address, metadata=(("authorization", f"Bearer {TENANT_TOKEN}"),)).export(payload)
    wait_stored(collector, 1)
    assert rows(collector, "SELECT TenantId FROM spanledger.otel_traces") == [{"TenantId": "acme"}]


def test_full_wal_answers_unavailable_with_retry_info(collector_factory):
    collector = collector_factory("processors: {batch: {timeout: 100ms}}\n"
                                  "exporters: {clickhouse: {wal: {max_size_mib: 1}}}\n")
    collector.store().command("DETACH TABLE spanledger.spanledger_otlp_raw")  # storage refuses every insert
    client = RawClient(collector.server.address)
    codes = []
    for _ in range(12):
        request, scope = new_request()
        for _ in range(100):
            make_span(scope, "filler", attributes={"blob": os.urandom(900).hex()})
        try:
            client.export(request.SerializeToString())
            codes.append("OK")
        except grpc.RpcError as err:
            codes.append(err.code().name)
            assert err.code() == grpc.StatusCode.UNAVAILABLE
            trailers = dict(err.trailing_metadata())
            info = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
            assert info.retry_delay.seconds >= 1
    assert "OK" in codes and "UNAVAILABLE" in codes
    accepted = codes.count("OK")
    collector.store().command("ATTACH TABLE spanledger.spanledger_otlp_raw")
    wait_stored(collector, accepted * 100, timeout=60)
    time.sleep(0.3)
    assert rows(collector, "SELECT count() AS n FROM spanledger.otel_traces")[0]["n"] == accepted * 100
