"""/metrics: Prometheus text format, parsed with prometheus_client's own parser, counters equal to what was sent."""

from __future__ import annotations

import socket
import time

import httpx
import pytest
from collector_support import FAST_BATCH, RawClient, make_span, new_request, wait_stored
from otlp_http_support import OPERATOR_TOKEN, TENANT_TOKENS, auth_config, start_http_collector, traces_url
from prometheus_client.parser import text_string_to_metric_families
from serve_support import serve_routers

from spanledger.collector.query import run_query
from spanledger.collector.serve.metrics import router

TOKEN, TENANT = OPERATOR_TOKEN, TENANT_TOKENS["acme"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(url: str, token: str | None = None) -> dict[tuple[str, tuple], float]:
    response = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"} if token else {})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _request(spans: int) -> bytes:
    request, scope = new_request("metrics")
    for i in range(spans):
        make_span(scope, f"m-{i}")
    return request.SerializeToString()


@pytest.fixture
def collector(tmp_path):
    dead = _free_port()
    config = FAST_BATCH + f"""exporters:
  otlp/nowhere: {{endpoint: '127.0.0.1:{dead}', tls: {{insecure: true}}, retry_on_failure: {{initial_interval: 50ms, max_interval: 100ms}}}}
service: {{pipelines: {{traces: {{exporters: [clickhouse, otlp/nowhere]}}}}}}
"""
    collector = start_http_collector(tmp_path / "data", config)
    yield collector
    collector.stop(timeout_s=10)


def test_counters_match_what_was_sent_over_grpc_and_http(collector):
    client = RawClient(collector.server.address)
    try:
        for _ in range(3):
            client.export(_request(4))
    finally:
        client.close()
    for _ in range(2):
        assert httpx.post(traces_url(collector), content=_request(5),
                          headers={"Content-Type": "application/x-protobuf"}).status_code == 200
    assert httpx.post(traces_url(collector), content=b"\x0a\xff garbage",
                      headers={"Content-Type": "application/x-protobuf"}).status_code == 400
    assert httpx.post(traces_url(collector), content=b"x", headers={"Content-Type": "text/plain"}).status_code == 415
    wait_stored(collector, 22)
    run_query(collector, "SELECT count() FROM spanledger.otel_traces", tenant=None)
    time.sleep(0.3)  # let the forwarder fail a few times
    with serve_routers(collector, router) as url:
        m = scrape(url)
    assert m[("spanledger_receiver_accepted_spans_total", ())] == 22
    assert m[("spanledger_receiver_accepted_requests_total", ())] == 5
    assert m[("spanledger_receiver_requests_total", (("outcome", "ok"), ("transport", "grpc")))] == 3
    assert m[("spanledger_receiver_requests_total", (("outcome", "ok"), ("transport", "http")))] == 2
    assert m[("spanledger_receiver_requests_total", (("outcome", "invalid"), ("transport", "http")))] == 1
    assert m[("spanledger_receiver_requests_total",
              (("outcome", "unsupported_media_type"), ("transport", "http")))] == 1
    assert m[("spanledger_receiver_export_duration_seconds_count", (("transport", "grpc"),))] == 3
    assert m[("spanledger_receiver_export_duration_seconds_count", (("transport", "http"),))] == 3
    assert m[("spanledger_receiver_export_duration_seconds_bucket", (("le", "+Inf"), ("transport", "http")))] == 3
    assert m[("spanledger_query_duration_seconds_count", (("outcome", "ok"),))] >= 1
    assert m[("spanledger_store_segments_stored_total", ())] >= 1
    assert m[("spanledger_store_ready", ())] == 1
    assert m[("spanledger_wal_unstored_bytes", ())] == 0
    assert m[("spanledger_receiver_refused_requests_total", (("reason", "memory"),))] == 0
    assert m[("spanledger_forward_sent_spans_total", (("destination", "otlp/nowhere"),))] == 0
    assert m[("spanledger_forward_send_failures_total", (("destination", "otlp/nowhere"),))] >= 1
    assert m[("spanledger_forward_lag_segments", (("destination", "otlp/nowhere"),))] >= 1
    assert m[("process_resident_memory_bytes", ())] > 10 << 20


def test_metrics_need_an_operator_token_when_auth_is_on(tmp_path):
    config = FAST_BATCH + auth_config()
    collector = start_http_collector(tmp_path / "data", config)
    try:
        with serve_routers(collector, router) as url:
            assert httpx.get(f"{url}/metrics").status_code == 401
            assert httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TENANT}"}).status_code == 403
            assert httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer not-a-token-0123456"}).status_code == 401
            m = scrape(url, TOKEN)
            assert m[("spanledger_receiver_accepted_spans_total", ())] == 0
    finally:
        collector.stop(timeout_s=10)
