"""The trace-id lookup table carries TenantId (schema/060), on a fresh store and after an upgrade.

A tenant's one-trace read may use the lookup only if every row says whose trace it is: new
spans get their tenant through the view, and traces stored before the migration get their
tenant's row from the backfill."""

from __future__ import annotations

from spanledger.collector.store import SchemaOptions, Store, StoreConfig, migrate
from spanledger.collector.store.ddl import schema_files

LOOKUP = "spanledger.otel_traces_trace_id_ts"


def _insert_spans(store: Store, rows: list[tuple[str, str, str]]) -> None:
    for tenant, trace_id, span_id in rows:
        store.command("INSERT INTO spanledger.otel_traces (Timestamp, TraceId, SpanId, SpanName, TenantId) "
                      "VALUES (now64(9), {t:String}, {s:String}, 'op', {tenant:String})",
                      parameters={"t": trace_id, "s": span_id, "tenant": tenant})


def _lookup_rows(store: Store) -> set[tuple[str, str]]:
    return {tuple(r) for r in store.query(f"SELECT TenantId, TraceId FROM {LOOKUP}").result_rows}


def test_fresh_store_lookup_has_the_exporter_columns_and_the_tenant(tmp_path):
    store = Store(StoreConfig(data_dir=tmp_path))
    try:
        migrate(store.writer, store.options)
        columns = [r[0] for r in store.query("SELECT name FROM system.columns WHERE database = 'spanledger' "
                                             "AND table = 'otel_traces_trace_id_ts' ORDER BY position").result_rows]
        assert columns == ["TraceId", "TenantId", "Start", "End"]
        _insert_spans(store, [("acme", "t1", "s1"), ("acme", "t1", "s2"), ("globex", "t2", "s3")])
        assert _lookup_rows(store) == {("acme", "t1"), ("globex", "t2")}
        # a tenant's question on the lookup: only its own trace ids, found through the key
        mine = store.query(f"SELECT TraceId, min(Start) <= max(End) FROM {LOOKUP} "
                           "WHERE TenantId = {tenant:String} GROUP BY TraceId", parameters={"tenant": "acme"})
        assert mine.result_rows == [("t1", True)]
    finally:
        store.close()


def test_upgrade_backfills_the_tenant_of_traces_stored_before(tmp_path):
    store = Store(StoreConfig(data_dir=tmp_path))
    try:
        migrate(store.writer, store.options, before=60)  # the store as the release before left it
        _insert_spans(store, [("acme", "old1", "s1"), ("globex", "old2", "s2")])
        assert "TenantId" not in {r[0] for r in store.query(
            "SELECT name FROM system.columns WHERE database = 'spanledger' AND table = 'otel_traces_trace_id_ts'").result_rows}
        report = migrate(store.writer, store.options)
        assert "060_trace_id_lookup_tenant.sql" in report.applied
        after = _lookup_rows(store)
        assert {("acme", "old1"), ("globex", "old2")} <= after  # backfilled
        assert {tenant for tenant, _ in after} <= {"", "acme", "globex"}  # pre-migration rows keep '', nothing else
        _insert_spans(store, [("acme", "new1", "s3")])
        assert ("acme", "new1") in _lookup_rows(store) and ("", "new1") not in _lookup_rows(store)
        assert migrate(store.writer, store.options).applied == ()
    finally:
        store.close()


def test_cluster_rendering_alters_on_the_cluster():
    statements = [s for f in schema_files(SchemaOptions(cluster="prod")) if f.version == 60 for s in f.statements]
    assert all("otel_traces_local" in s for s in statements)
    assert all("ON CLUSTER prod" in s for s in statements if s.startswith("ALTER"))
