"""Collector A forwards to collectors B and C (OTLP/gRPC and OTLP/HTTP): every accepted span, unchanged,
through outages and restarts, without a dead destination holding up storage or the others."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from collector_support import FAST_BATCH, RawClient, make_span, new_request, rows, wait_stored
from otlp_http_support import OPERATOR_TOKEN, TENANT_TOKENS, auth_config, start_http_collector
from process_support import CollectorProcess

from spanledger.collector.app import Collector, Overrides
from spanledger.collector.config import ConfigError, load_config

FAST_RETRY = "retry_on_failure: {initial_interval: 50ms, max_interval: 200ms}"
SPAN_COLUMNS = "SELECT TraceId, SpanId, ParentSpanId, SpanName, SpanAttributes, ServiceName FROM spanledger.otel_traces"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def forwarding_config(destinations: dict[str, str], extra: str = "", tail: str = "") -> str:
    """A's configuration: store, and forward to each {name: endpoint}."""
    lines = [FAST_BATCH.rstrip("\n"), "exporters:"]
    for name, endpoint in destinations.items():
        lines.append(f"  {name}: {{endpoint: '{endpoint}', tls: {{insecure: true}}, {FAST_RETRY}{extra}}}")
    lines.append(tail.rstrip("\n")) if tail else None
    lines.append("service:\n  pipelines:\n    traces:\n      exporters: [clickhouse, " + ", ".join(destinations) + "]")
    return "\n".join(lines) + "\n"


@pytest.fixture
def fleet(tmp_path):
    """``fleet("a", config)``: collector A in this process; ``fleet.destination("b")``: one in its own process."""
    started: list[Collector] = []
    processes: list[CollectorProcess] = []

    def start(name: str, config_text: str = FAST_BATCH) -> Collector:
        collector = start_http_collector(tmp_path / name, config_text)
        started.append(collector)
        return collector

    def stop(collector: Collector) -> None:
        collector.stop(timeout_s=10)
        started.remove(collector)

    def destination(name: str, config_text: str = FAST_BATCH, grpc_port: int = 0, token: str | None = None):
        process = CollectorProcess(tmp_path / name, config_text, grpc_port, token)
        processes.append(process)
        return process

    start.stop, start.destination = stop, destination
    yield start
    for collector in started:
        collector.stop(timeout_s=10)
    for process in processes:
        process.stop()


def send(collector: Collector, requests: int, spans: int = 5, prefix: str = "op", token: str | None = None) -> int:
    client = RawClient(collector.server.address, metadata=(("authorization", f"Bearer {token}"),) if token else ())
    try:
        for r in range(requests):
            request, scope = new_request("forwarded-service")
            for i in range(spans):
                make_span(scope, f"{prefix}-{r}-{i}", attributes={"gen_ai.usage.input_tokens": i, "n": str(r)})
            client.export(request.SerializeToString())
    finally:
        client.close()
    return requests * spans


def same_spans(a: Collector, b: CollectorProcess) -> None:
    """Every column that says what the span is, identical at the destination."""
    key = lambda r: r["SpanId"]  # noqa: E731
    here = [{**r, "SpanAttributes": dict(r["SpanAttributes"])} for r in rows(a, SPAN_COLUMNS)]
    there = [{**r, "SpanAttributes": dict(r["SpanAttributes"])} for r in b.sql(SPAN_COLUMNS)]
    assert sorted(here, key=key) == sorted(there, key=key)
    assert len(here) > 0


def wait_until(predicate, timeout: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_every_span_reaches_grpc_and_http_destinations_unchanged(fleet):
    b = fleet.destination("b")
    c = fleet.destination("c")
    a = fleet("a", forwarding_config({"otlp/b": b.grpc_address, "otlphttp/c": c.http_url}))
    sent = send(a, 6)
    wait_stored(a, sent)
    b.wait_count(sent)
    c.wait_count(sent)
    same_spans(a, b)
    same_spans(a, c)
    forwarding = a.stats_snapshot()["forwarding"]
    for name in ("otlp/b", "otlphttp/c"):
        wait_until(lambda: a.stats_snapshot()["forwarding"][name]["spans_sent"] == sent, what=name)
        assert forwarding[name]["spans_dropped"] == 0
    assert b.stats()["duplicate_requests"] == 0 and c.stats()["duplicate_requests"] == 0


def test_destination_down_then_back_catches_up_while_a_stores_everything(fleet):
    port = free_port()
    a = fleet("a", forwarding_config({"otlp/b": f"127.0.0.1:{port}"}))
    sent = send(a, 4)
    wait_stored(a, sent)  # storage does not wait for the destination
    wait_until(lambda: a.stats_snapshot()["forwarding"]["otlp/b"]["send_failures"] >= 2, what="retries")
    assert a.stats_snapshot()["forwarding"]["otlp/b"]["segments_behind"] >= 1
    sent += send(a, 3, prefix="while-down")
    wait_stored(a, sent)
    b = fleet.destination("b", grpc_port=port)
    b.wait_count(sent)
    same_spans(a, b)
    wait_until(lambda: a.stats_snapshot()["forwarding"]["otlp/b"]["segments_behind"] == 0, what="lag back to 0")
    assert a.stats_snapshot()["forwarding"]["otlp/b"]["spans_dropped"] == 0


def test_a_dead_destination_holds_up_neither_storage_nor_the_others(fleet):
    b = fleet.destination("b")
    a = fleet("a", forwarding_config({"otlp/dead": f"127.0.0.1:{free_port()}", "otlp/b": b.grpc_address}))
    sent = 0
    for round_ in range(3):
        sent += send(a, 3, prefix=f"round-{round_}")
        time.sleep(0.15)  # several segments
    wait_stored(a, sent)
    b.wait_count(sent)
    same_spans(a, b)
    stats = a.stats_snapshot()["forwarding"]
    assert stats["otlp/dead"]["spans_sent"] == 0 and stats["otlp/dead"]["send_failures"] > 0
    assert stats["otlp/dead"]["segments_behind"] >= 2


def test_restart_of_a_resends_nothing_delivered(fleet, tmp_path):
    b = fleet.destination("b")
    config = forwarding_config({"otlp/b": b.grpc_address})
    a = fleet("a", config)
    first = send(a, 5, prefix="before")
    b.wait_count(first)
    fleet.stop(a)
    assert (tmp_path / "a" / "forward" / "otlp_b.cursor.json").exists()
    a = fleet("a", config)
    second = send(a, 2, prefix="after")
    wait_stored(a, first + second)
    b.wait_count(first + second)
    time.sleep(0.5)  # anything resent would have arrived by now
    assert b.count() == first + second
    assert b.stats()["duplicate_requests"] == 0
    same_spans(a, b)


def test_a_new_destination_gets_what_is_sealed_from_then_on(fleet, tmp_path):
    a = fleet("a")
    old = send(a, 2, prefix="before-forwarding")
    wait_stored(a, old)
    fleet.stop(a)
    b = fleet.destination("b")
    a = fleet("a", forwarding_config({"otlp/b": b.grpc_address}))
    new = send(a, 2, prefix="new")
    b.wait_count(new)
    time.sleep(0.3)
    assert {r["SpanName"].split("-")[0] for r in b.sql("SELECT SpanName FROM spanledger.otel_traces")} == {"new"}


def test_backlog_bound_drops_and_counts_what_falls_past_it(fleet, tmp_path):
    a = fleet("a", forwarding_config({"otlp/dead": f"127.0.0.1:{free_port()}"}, extra=", sending_queue: {queue_size: 2}",
                                     tail="  clickhouse:\n    wal: {retain_done_mib: 0}"))
    sent = 0
    for round_ in range(6):
        sent += send(a, 1, spans=4, prefix=f"round-{round_}")
        time.sleep(0.2)  # one segment per round
    wait_stored(a, sent)
    wait_until(lambda: a.stats_snapshot()["forwarding"]["otlp/dead"]["segments_dropped"] >= 3, what="drops counted")
    stats = a.stats_snapshot()["forwarding"]["otlp/dead"]
    assert stats["spans_dropped"] >= 12 and stats["spans_dropped"] % 4 == 0
    assert stats["segments_behind"] <= 2
    done = sorted((tmp_path / "a" / "wal").glob("*.done"))
    assert 1 <= len(done) <= 3, done  # held for the destination, but only up to its bound


def test_stored_segments_are_kept_until_every_destination_has_them(fleet, tmp_path):
    port = free_port()
    a = fleet("a", forwarding_config({"otlp/b": f"127.0.0.1:{port}"},
                                     tail="  clickhouse:\n    wal: {retain_done_mib: 0}"))
    for round_ in range(3):
        send(a, 1, prefix=f"round-{round_}")
        time.sleep(0.2)
    wait_stored(a, 15)
    wal_dir = tmp_path / "a" / "wal"
    assert len(list(wal_dir.glob("*.done"))) >= 3  # retain_done_mib 0, yet kept: the destination has not read them
    b = fleet.destination("b", grpc_port=port)
    b.wait_count(15)
    send(a, 1, prefix="later")  # the next stored segment expires the delivered ones
    b.wait_count(20)
    wait_until(lambda: len(list(wal_dir.glob("*.done"))) <= 1, what=".done segments released")


TOKEN, ACME, GLOBEX = OPERATOR_TOKEN, TENANT_TOKENS["acme"], TENANT_TOKENS["globex"]
AUTH = auth_config(("acme", "globex"))


def test_tenant_filter_forwards_only_the_listed_tenants_and_headers_are_sent(fleet):
    b_config = FAST_BATCH + AUTH
    b = fleet.destination("b", b_config, token=TOKEN)
    a_config = forwarding_config({"otlp/b": b.grpc_address},
                                 extra=f", tenants: [acme], headers: {{authorization: 'Bearer {TOKEN}'}}") + AUTH
    a = fleet("a", a_config)
    acme = send(a, 2, prefix="acme", token=ACME)
    globex = send(a, 2, prefix="globex", token=GLOBEX)
    wait_stored(a, acme + globex)
    b.wait_count(acme)
    time.sleep(0.3)
    names = {r["SpanName"].split("-")[0] for r in b.sql("SELECT SpanName FROM spanledger.otel_traces")}
    assert names == {"acme"}


def test_a_destination_that_refuses_for_good_is_counted_not_retried_forever(fleet):
    c = fleet.destination("c", FAST_BATCH + "receivers:\n  otlp:\n    protocols:\n      http:\n        max_request_body_size: 100\n")
    a = fleet("a", forwarding_config({"otlphttp/c": c.http_url}))
    sent = send(a, 2)
    wait_stored(a, sent)
    wait_until(lambda: a.stats_snapshot()["forwarding"]["otlphttp/c"]["spans_dropped"] == sent, what="drop counted")
    assert "413" in a.stats_snapshot()["forwarding"]["otlphttp/c"]["last_error"]
    assert a.stats_snapshot()["forwarding"]["otlphttp/c"]["segments_behind"] == 0


def test_pipeline_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="exporters.otlp/x.endpoint"):
        load_config(text="exporters:\n  otlp/x: {}\nservice: {pipelines: {traces: {exporters: [clickhouse, otlp/x]}}}\n")
    with pytest.raises(ConfigError, match="list clickhouse"):
        load_config(text="exporters:\n  otlp/x: {endpoint: 'h:1'}\nservice: {pipelines: {traces: {exporters: [otlp/x]}}}\n")
    with pytest.raises(ConfigError, match="'otlp/y' is not available"):
        load_config(text="service: {pipelines: {traces: {exporters: [clickhouse, otlp/y]}}}\n")
    with pytest.raises(ConfigError, match="exporters.otlp/x.bogus: unknown key"):
        load_config(text="exporters:\n  otlp/x: {endpoint: 'h:1', bogus: 1}\n")
    with pytest.raises(ConfigError, match="exporters.kafka/x: unknown key"):
        load_config(text="exporters:\n  kafka/x: {}\n")
    with pytest.raises(ConfigError, match="compression"):
        load_config(text="exporters:\n  otlp/x: {endpoint: 'h:1', compression: zstd}\n"
                         "service: {pipelines: {traces: {exporters: [clickhouse, otlp/x]}}}\n")
    # configured but not in the pipeline: not used (as in the Collector)
    assert load_config(text="exporters:\n  otlp/x: {endpoint: 'h:1'}\n").forward_exporters() == {}


def test_sigkill_of_a_mid_forwarding_loses_nothing_and_the_destination_stores_once(tmp_path):
    """A in its own process, killed with SIGKILL while forwarding; B (here) ends with every span exactly once."""
    import signal

    b = start_http_collector(tmp_path / "b")
    a = None
    try:
        config = forwarding_config({"otlp/b": b.server.address})
        a = CollectorProcess(tmp_path / "a", config)
        client = RawClient(a.grpc_address)
        sent = 0
        try:
            for r in range(40):
                request, scope = new_request("crash")
                for i in range(25):
                    make_span(scope, f"crash-{r}-{i}")
                client.export(request.SerializeToString())
                sent += 25
                if r % 10 == 9:
                    time.sleep(0.15)  # several segments
        finally:
            client.close()
        wait_until(lambda: b.stats.spans_accepted > 0, what="forwarding started")
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(30)
        a = CollectorProcess(tmp_path / "a", config)  # same data dir: WAL and cursor recovered
        wait_stored(b, sent, timeout=60)
        time.sleep(0.5)
        assert rows(b, "SELECT count() AS n, uniqExact(SpanId) AS u FROM spanledger.otel_traces") == [{"n": sent, "u": sent}]
        assert a.stats()["forwarding"]["otlp/b"]["spans_dropped"] == 0
    finally:
        if a is not None:
            a.stop()
        b.stop(timeout_s=10)
