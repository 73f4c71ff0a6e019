"""The trace rows (schema/070): one trace read from one key range gives exactly what the spans table gives.

Real embedded store, real schema: spans go into otel_traces and reach the trace rows through the view (or the
migration's backfill, for spans stored before it); the reads are the API's own functions."""

from __future__ import annotations

import pytest

from spanledger.collector.commands._reader import StoreReader
from spanledger.collector.query import activities as q
from spanledger.collector.store import Store, StoreConfig, migrate

TRACE = "0123456789abcdef0123456789abcdef"
INSERT = ("INSERT INTO spanledger.otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, SpanName, TenantId, "
          "ActivityStatus, StatusCode, Duration, InputTokens, TotalCost, Model, AgentName) VALUES "
          "(fromUnixTimestamp64Nano({ns:Int64}), {t:String}, {s:String}, {p:String}, 'op', {tenant:String}, "
          "{status:String}, 'Ok', {d:UInt64}, {tokens:UInt64}, {cost:Decimal(18, 12)}, 'gpt-4o', 'planner')")


def _span(store: Store, span_id: str, *, tenant: str = "acme", parent: str = "", status: str = "",
          duration: int = 1000, tokens: int = 10, cost: str = "0.0025", ns: int = 1_790_000_000_000_000_000,
          trace: str = TRACE) -> None:
    store.command(INSERT, parameters={"ns": ns, "t": trace, "s": span_id, "p": parent, "tenant": tenant,
                                      "status": status, "d": duration, "tokens": tokens, "cost": cost})


def _both(reader, tenant):
    new, new_cut = q.trace_spans(reader, TRACE, tenant=tenant)
    old, old_cut = q.trace_spans_from_spans(reader, TRACE, tenant=tenant)
    return new, old, new_cut, old_cut


@pytest.fixture
def store(tmp_path):
    store = Store(StoreConfig(data_dir=tmp_path))
    migrate(store.writer, store.options)
    yield store
    store.close()


def test_a_trace_reads_the_same_from_the_trace_rows_as_from_the_spans_table(store, tmp_path):
    _span(store, "00000000000000a1", duration=5000, tokens=2**40, cost="1.000000000001")
    _span(store, "00000000000000b2", parent="00000000000000a1", status="started", duration=10, ns=1_790_000_000_000_000_001)
    _span(store, "00000000000000b2", parent="00000000000000a1", status="completed", duration=900,
          ns=1_790_000_000_000_000_001)  # the same span written twice: the completed version is the answer
    _span(store, "00000000000000c3", parent="00000000000000b2", ns=1_790_000_000_000_000_002)
    reader = StoreReader(store, tmp_path)
    new, old, new_cut, old_cut = _both(reader, "acme")
    assert new == old and new_cut is old_cut is False
    assert [s["span_id"] for s in new] == ["00000000000000a1", "00000000000000b2", "00000000000000c3"]
    assert new[1]["status"] == "completed" and new[1]["duration_ms"] == 900 / 1e6
    assert new[0]["input_tokens"] == 2**40 and new[0]["cost_usd"] == "1.000000000001"  # exact, not a float
    assert new[0]["tenant"] == "acme" and new[0]["trace_id"] == TRACE and new[0]["start_time"].endswith(".000000000Z")


def test_a_tenant_reads_only_its_own_spans_of_a_shared_trace_id(store, tmp_path):
    _span(store, "00000000000000a1", tenant="acme")
    _span(store, "00000000000000e9", tenant="globex")  # another tenant reused the trace id
    reader = StoreReader(store, tmp_path)
    new, old, _, _ = _both(reader, "acme")
    assert [s["span_id"] for s in new] == ["00000000000000a1"] == [s["span_id"] for s in old]
    assert {s["tenant"] for s in q.trace_spans(reader, TRACE, tenant=None)[0]} == {"acme", "globex"}
    with pytest.raises(q.NotFound):
        q.trace_spans(reader, TRACE, tenant="initech")


def test_upgrade_backfills_the_trace_rows_of_spans_stored_before(tmp_path):
    store = Store(StoreConfig(data_dir=tmp_path))
    try:
        migrate(store.writer, store.options, before=70)  # the store as the release before left it
        _span(store, "00000000000000a1")
        _span(store, "00000000000000b2", parent="00000000000000a1")
        report = migrate(store.writer, store.options)
        assert "070_trace_rows.sql" in report.applied
        _span(store, "00000000000000c3", parent="00000000000000a1")  # after: through the view
        reader = StoreReader(store, tmp_path)
        new, old, _, _ = _both(reader, "acme")
        assert new == old and len(new) == 3
    finally:
        store.close()
