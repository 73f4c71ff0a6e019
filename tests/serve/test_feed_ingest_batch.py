"""schema/040_ingest_batch.sql: every stored row says which INSERT stored it, fresh and after an upgrade,
and the OpenTelemetry Collector exporter's columns are untouched."""

from __future__ import annotations

import pytest
from feed_support import collector_factory  # noqa: F401 - the fixture

from collector_support import RawClient, make_span, new_request, rows, wait_stored
from spanledger.collector.store import Store, StoreConfig, migrate

pytestmark = pytest.mark.timeout(120)


# The OpenTelemetry Collector ClickHouse exporter's traces table, in its order
EXPORTER_COLUMNS = ["Timestamp", "TraceId", "SpanId", "ParentSpanId", "TraceState", "SpanName", "SpanKind",
                    "ServiceName", "ResourceAttributes", "ScopeName", "ScopeVersion", "SpanAttributes", "Duration",
                    "StatusCode", "StatusMessage", "Events.Timestamp", "Events.Name", "Events.Attributes",
                    "Links.TraceId", "Links.SpanId", "Links.TraceState", "Links.Attributes"]


def test_each_segment_gets_its_own_increasing_batch_and_the_exporter_layout_stays(collector_factory):
    collector = collector_factory()
    client = RawClient(collector.server.address)
    for n in range(3):
        request, scope = new_request()
        for _ in range(5):
            make_span(scope, f"op-{n}")
        client.export(request.SerializeToString())
        wait_stored(collector, 5 * (n + 1))  # one segment per request (100 ms batches)
    client.close()
    batches = rows(collector, "SELECT SpanName, groupUniqArray(IngestBatch) AS b FROM spanledger.otel_traces "
                              "GROUP BY SpanName ORDER BY SpanName")
    assert [len(r["b"]) for r in batches] == [1, 1, 1]
    numbers = [r["b"][0] for r in batches]
    assert numbers == sorted(numbers) and len(set(numbers)) == 3 and all(n > 1_600_000_000_000_000 for n in numbers)
    columns = [r["name"] for r in rows(collector, "SELECT name FROM system.columns WHERE database = 'spanledger' "
                                                  "AND table = 'otel_traces' ORDER BY position")]
    assert columns[:len(EXPORTER_COLUMNS)] == EXPORTER_COLUMNS and columns[-1] == "IngestBatch"
    assert columns.count("IngestBatch") == 1
    indexes = rows(collector, "SELECT name, type FROM system.data_skipping_indices WHERE database = 'spanledger' "
                              "AND table = 'otel_traces' AND name = 'idx_ingest_batch'")
    assert indexes == [{"name": "idx_ingest_batch", "type": "minmax"}]


def test_an_existing_store_gains_the_column(tmp_path):
    store = Store(StoreConfig(data_dir=tmp_path))
    try:
        migrate(store.writer, store.options)
        # as a store from before 040: no column, neither applied version 40 nor this pipeline text
        store.command("ALTER TABLE spanledger.otel_traces DROP INDEX IF EXISTS idx_ingest_batch")
        store.command("ALTER TABLE spanledger.otel_traces DROP COLUMN IngestBatch")
        store.command("ALTER TABLE spanledger.spanledger_schema_versions DELETE WHERE Version IN (40, 900) "
                      "SETTINGS mutations_sync = 2")
        report = migrate(store.writer, store.options)
        assert "040_ingest_batch.sql" in report.applied and "900_ingest_pipeline.sql" in report.applied
        for table in ("otel_traces", "spanledger_spans_ingest"):
            names = [r[0] for r in store.query(f"SELECT name FROM system.columns WHERE database = 'spanledger' "
                                               f"AND table = '{table}' ORDER BY position").result_rows]
            assert names[-1] == "IngestBatch", table  # last, as an upgrade's ADD COLUMN puts it
        assert migrate(store.writer, store.options).applied == ()
    finally:
        store.close()
