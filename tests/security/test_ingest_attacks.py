"""Ingest integrity attacks: a client's bytes cannot choose its tenant, break other clients' segments,
or make the store refuse what was acknowledged; what the store still refuses is isolated and counted."""

from __future__ import annotations

import os
import threading
import time

from collector_support import RawClient, make_span, new_request, rows, start_collector, token_config, wait_stored

from spanledger.collector.wal import _varint, encode_record

ACME = "acme-token-0123456789"
GLOBEX = "globex-token-0123456789"
TENANTS = token_config(tenants={"acme": ACME, "globex": GLOBEX}, batch_timeout="300ms")


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _request_bytes(resource: bytes, scope: bytes, spans: list[bytes], tail: bytes = b"") -> bytes:
    scope_spans = _field(1, scope) + b"".join(_field(2, s) for s in spans)
    return _field(1, _field(1, resource) + _field(2, scope_spans)) + tail


def _parts(service: str, names: list[str], attributes: dict | None = None):
    request, scope = new_request(service)
    spans = [make_span(scope, name, attributes=attributes) for name in names]
    rs = request.resource_spans[0]
    return rs.resource.SerializeToString(), rs.scope_spans[0].scope.SerializeToString(), spans


def test_wal_fields_in_client_bytes_cannot_choose_or_drop_the_tenant(collector_factory):
    collector = collector_factory(TENANTS)
    client = RawClient(collector.server.address, metadata=(("authorization", f"Bearer {ACME}"),))
    resource, scope, spans = _parts("injector", ["claims-globex", "drops-tenant", "nested"])
    tenant_globex = _field(1001, b"globex")
    empty_tenant_then_checksum = _field(1001, b"") + b"\xd5\x3e" + os.urandom(4)
    # a span carrying field 1001 inside it, and an attribute value carrying it: unknown there, dropped
    nested = spans[2].SerializeToString() + _field(1001, b"globex")
    attempts = [
        _request_bytes(resource, scope, [spans[0].SerializeToString()], tenant_globex),
        _request_bytes(resource, scope, [spans[1].SerializeToString()], empty_tenant_then_checksum),
        _request_bytes(resource, scope, [nested], tenant_globex + tenant_globex),
    ]
    for payload in attempts:
        response = client.export(payload)
        assert not response.HasField("partial_success"), response
    wait_stored(collector, 3)
    stored = rows(collector, "SELECT SpanName, TenantId FROM spanledger.otel_traces ORDER BY SpanName")
    assert stored == [{"SpanName": "claims-globex", "TenantId": "acme"}, {"SpanName": "drops-tenant", "TenantId": "acme"},
                      {"SpanName": "nested", "TenantId": "acme"}]
    assert collector.stats.segments_quarantined == 0 and collector.stats.store_failures == 0


def test_wrong_wire_types_are_rejected_and_other_clients_spans_in_the_same_segment_are_stored(collector_factory):
    collector = collector_factory(TENANTS)
    acme = RawClient(collector.server.address, metadata=(("authorization", f"Bearer {ACME}"),))
    globex = RawClient(collector.server.address, metadata=(("authorization", f"Bearer {GLOBEX}"),))
    resource, scope, spans = _parts("mixed", ["good-1", "name-as-varint", "attr-int-as-bytes", "time-as-bytes",
                                              "good-2"])
    bad_value = _field(1, b"k") + _field(2, _field(3, b"not a varint"))  # AnyValue.int_value sent length-delimited
    encoded = [
        spans[0].SerializeToString(),
        spans[1].SerializeToString() + bytes([5 << 3 | 0, 7]),  # Span.name (string) as a varint
        spans[2].SerializeToString() + _field(9, bad_value),
        spans[3].SerializeToString() + _field(7, b"12345678"),  # fixed64 start time as length-delimited
        spans[4].SerializeToString(),
    ]
    # both clients inside one segment (batch timeout 300 ms)
    others = []
    for i in range(3):
        request, other_scope = new_request("bystander")
        make_span(other_scope, f"globex-{i}")
        others.append(request.SerializeToString())
    results = {}
    threads = [threading.Thread(target=lambda p=p, i=i: results.__setitem__(i, globex.export(p)))
               for i, p in enumerate(others)]
    for thread in threads:
        thread.start()
    response = acme.export(_request_bytes(resource, scope, encoded))
    for thread in threads:
        thread.join()
    assert response.partial_success.rejected_spans == 3
    message = response.partial_success.error_message
    for needle in ("field name (number 5) of Span", "field int_value (number 3) of AnyValue",
                   "field start_time_unix_nano (number 7) of Span"):
        assert needle in message, message
    assert all(not r.HasField("partial_success") for r in results.values())
    wait_stored(collector, 5)
    stored = rows(collector, "SELECT SpanName, TenantId FROM spanledger.otel_traces ORDER BY SpanName")
    assert stored == [{"SpanName": f"globex-{i}", "TenantId": "globex"} for i in range(3)] + [
        {"SpanName": "good-1", "TenantId": "acme"}, {"SpanName": "good-2", "TenantId": "acme"}]
    assert collector.stats.segments_quarantined == 0 and collector.stats.store_failures == 0


def test_numbers_the_store_cannot_take_are_rejected_in_every_spelling(raw_client, collector):
    bad = {
        "tokens-overflow": {"gen_ai.usage.input_tokens": 10**15},
        "tokens-uint64-string": {"gen_ai.usage.output_tokens": "18446744073709551615"},
        "tokens-negative-double": {"llm.token_count.prompt": -3.0},
        "tokens-bool": {"gen_ai.usage.input_tokens": True},
        "tokens-nan-string": {"llm.usage.prompt_tokens": "nan"},
        "tokens-long-text": {"gen_ai.usage.input_tokens": "1" + "0" * 80},
        "cost-negative-string": {"gen_ai.usage.cost": " -0.5"},
        "cost-negative-operation": {"operation.cost": -1},
        "cost-overflow": {"spanledger.cost.total_usd": "1e7"},
        "cost-overflow-double": {"llm.cost.prompt": 2e6},
        "cost-array": {"llm.cost.total": ["1"]},
        "cost-infinite": {"llm.cost.completion": float("inf")},
    }
    good = {
        "tokens-as-string": {"gen_ai.usage.input_tokens": "120", "gen_ai.request.model": "gpt-4o"},
        "cost-as-double": {"gen_ai.usage.cost": 0.25},
        "cost-at-scale": {"spanledger.cost.total_usd": "0.000000000001"},
        "tokens-at-bound": {"gen_ai.usage.output_tokens": 10**8},
    }
    request, scope = new_request("numbers")
    for name, attributes in {**bad, **good}.items():
        make_span(scope, name, attributes=attributes)
    response = raw_client.export(request.SerializeToString())
    assert response.partial_success.rejected_spans == len(bad), response.partial_success.error_message
    wait_stored(collector, len(good))
    stored = {r["SpanName"]: r for r in rows(collector, "SELECT SpanName, InputTokens, OutputTokens, TotalCost "
                                                        "FROM spanledger.otel_traces")}
    assert set(stored) == set(good)
    assert stored["tokens-as-string"]["InputTokens"] == 120
    assert stored["tokens-at-bound"]["OutputTokens"] == 10**8
    assert str(stored["cost-as-double"]["TotalCost"]) == "0.250000000000"


# The refusal must come before the block is written: an error raised after the spans table took
# the block (in a view downstream of it) leaves those rows there, and a split would store them
# again under new tokens (README, "Limits we know of").
POISON_VIEW = ("ALTER TABLE spanledger.otel_traces ADD CONSTRAINT IF NOT EXISTS no_poison "
               "CHECK SpanName != 'b-overflow'")


def install_poison_view(data_dir):
    from spanledger.collector.store import Store, StoreConfig

    store = Store(StoreConfig(data_dir=data_dir))
    try:
        store.command(POISON_VIEW)
    finally:
        store.close()


def test_a_segment_the_store_refuses_is_split_the_rest_stored_and_the_refused_span_quarantined(tmp_path):
    data_dir = tmp_path / "data"
    collector = start_collector(data_dir)
    client = RawClient(collector.server.address)
    warm, scope = new_request("warm")  # gpt-4o gets priced, so pricing runs inside the segment's INSERT
    make_span(scope, "warm", attributes={"gen_ai.request.model": "gpt-4o", "gen_ai.system": "openai",
                                         "gen_ai.usage.input_tokens": 10})
    client.export(warm.SerializeToString())
    wait_stored(collector, 1)
    client.close()
    collector.stop()

    # A span the store refuses on every retry.  Validation and pricing now keep every value the
    # pipeline computes in range, so the refusal comes from a CHECK constraint of the kind an
    # operator puts on otel_traces: a real engine error inside the segment's one INSERT, exactly
    # where an unforeseen data error would surface.
    install_poison_view(data_dir)
    def request(service, spans):
        req, sc = new_request(service)
        for name, attributes in spans:
            make_span(sc, name, attributes=attributes)
        return req.SerializeToString()

    records = [request("before", [("a-1", {}), ("a-2", {})]),
               request("poisoned", [("b-ok-1", {}), ("b-overflow", {}), ("b-ok-2", {})]),
               request("after", [("c-1", {})])]
    segment = data_dir / "wal" / f"{9999:012d}.wal"
    segment.write_bytes(b"".join(encode_record(r, "") for r in records))

    collector = start_collector(data_dir)
    try:
        wait_stored(collector, 1 + 5)
        names = [r["SpanName"] for r in rows(collector, "SELECT SpanName FROM spanledger.otel_traces ORDER BY SpanName")]
        assert names == ["a-1", "a-2", "b-ok-1", "b-ok-2", "c-1", "warm"]  # each once
        stats = collector.stats_snapshot()
        assert (stats["segments_split"], stats["spans_quarantined"], stats["segments_quarantined"]) == (1, 1, 1)
        assert stats["last_store_error_code"] == 469
        quarantine = data_dir / "wal" / "quarantine"
        reason = (quarantine / segment.with_suffix(".reason").name).read_text()
        assert "code 469" in reason and "b-overflow" in reason
        from spanledger.collector.wal import scan
        kept = scan((quarantine / segment.name).read_bytes()).records
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
        kept_names = [s.name for r in kept for rs in ExportTraceServiceRequest.FromString(r.request).resource_spans
                      for ss in rs.scope_spans for s in ss.spans]
        assert kept_names == ["b-overflow"]
        assert not list((data_dir / "wal").glob("*.wal"))  # nothing left blocking the writers
    finally:
        collector.stop()


def test_a_split_interrupted_part_way_and_run_again_stores_each_span_once(collector, raw_client, tmp_path):
    from spanledger.collector.errors import StoreUnavailable
    from spanledger.collector.wal import Record
    from spanledger.collector.writer.splitting import split_and_store

    warm, scope = new_request("warm")
    make_span(scope, "warm", attributes={"gen_ai.request.model": "gpt-4o", "gen_ai.system": "openai",
                                         "gen_ai.usage.input_tokens": 10})
    raw_client.export(warm.SerializeToString())
    wait_stored(collector, 1)
    collector.store().command(POISON_VIEW)
    records = []
    for r in range(4):
        request, sc = new_request(f"split-{r}")
        for i in range(3):
            make_span(sc, "b-overflow" if (r, i) == (2, 1) else f"r{r}-s{i}")
        records.append(Record(request.SerializeToString(), ""))
    store, piece = collector.store(), tmp_path / "piece.wal"
    calls = []

    def load(data: bytes, token: str, fail_after: int | None = None) -> None:
        calls.append(token)
        if fail_after is not None and len(calls) > fail_after:
            raise StoreUnavailable("the store went away mid-split")
        piece.write_bytes(data)
        store.load_segment(piece, token)

    token = "spanledger-wal-test-1-0-00000000"
    try:
        split_and_store(records, token, lambda d, t: load(d, t, fail_after=4))
        raise AssertionError("the outage should have aborted the split")
    except StoreUnavailable:
        pass
    first_tokens = list(calls)
    calls.clear()
    outcome = split_and_store(records, token, load)
    assert calls[:len(first_tokens) - 1] == first_tokens[:-1]  # the same pieces, the same tokens, in order
    assert outcome.refused_spans == 1 and len(outcome.refused) == 1
    stored = rows(collector, "SELECT SpanName, count() AS n FROM spanledger.otel_traces "
                             "WHERE ServiceName LIKE 'split-%' GROUP BY SpanName ORDER BY SpanName")
    expected = [f"r{r}-s{i}" for r in range(4) for i in range(3) if (r, i) != (2, 1)]
    assert stored == [{"SpanName": name, "n": 1} for name in expected]


def test_a_segment_spanning_more_than_a_hundred_days_is_stored(collector, raw_client):
    """ClickHouse refuses an INSERT that touches over 100 partitions (days) on every retry by default."""
    request, scope = new_request("backfill")
    day = 86_400 * 10**9
    start = time.time_ns() - 150 * day
    for i in range(150):
        make_span(scope, f"day-{i}", start_ns=start + i * day)
    response = raw_client.export(request.SerializeToString())
    assert response.partial_success.rejected_spans == 0
    assert wait_stored(collector, 150) == 150
    days = rows(collector, "SELECT uniqExact(toDate(Timestamp)) AS d FROM spanledger.otel_traces")[0]["d"]
    assert days == 150
