"""Schema files apply in order, idempotently, from scratch or from an older version."""

from __future__ import annotations

from spanledger.collector.store import SchemaOptions, Store, StoreConfig, migrate
from spanledger.collector.store.ddl import schema_files
from spanledger.collector.store.migrations import applied_versions


def _store(tmp_path, **options) -> Store:
    return Store(StoreConfig(data_dir=tmp_path, options=SchemaOptions(**options)))


def _tables(store: Store) -> set[str]:
    return {r[0] for r in store.query("SELECT name FROM system.tables WHERE database = 'spanledger'").result_rows}


def test_fresh_then_repeated(tmp_path):
    store = _store(tmp_path)
    try:
        first = migrate(store.writer, store.options)
        assert first.applied[0] == "000_schema_versions.sql" and "900_ingest_pipeline.sql" in first.applied
        assert {"otel_traces", "otel_traces_trace_id_ts", "spanledger_usage_hourly", "spanledger_cost_daily",
                "spanledger_prices", "spanledger_otlp_raw"} <= _tables(store)
        # prices are resolved before a segment is loaded: no parking table, no first-tier-only lookup
        assert not {"spanledger_spans_unpriced", "spanledger_price_lookup", "spanledger_model_prices"} & _tables(store)
        again = migrate(store.writer, store.options)
        assert again.applied == () and again.current_version == first.current_version
        columns = {r[0]: r[1] for r in store.query("SELECT name, type FROM system.columns WHERE database='spanledger' "
                                                   "AND table='otel_traces'").result_rows}
        # the OpenTelemetry Collector ClickHouse exporter's column names and types
        for name, type_ in {"Timestamp": "DateTime64(9)", "TraceId": "String", "SpanId": "String",
                            "ParentSpanId": "String", "TraceState": "String", "SpanName": "LowCardinality(String)",
                            "SpanKind": "LowCardinality(String)", "ServiceName": "LowCardinality(String)",
                            "ResourceAttributes": "Map(LowCardinality(String), String)",
                            "ScopeName": "String", "ScopeVersion": "String",
                            "SpanAttributes": "Map(LowCardinality(String), String)", "Duration": "UInt64",
                            "StatusCode": "LowCardinality(String)", "StatusMessage": "String",
                            "Events.Timestamp": "Array(DateTime64(9))", "Links.TraceId": "Array(String)"}.items():
            assert columns[name] == type_, name
    finally:
        store.close()


def test_upgrade_from_previous_version(tmp_path):
    store = _store(tmp_path)
    try:
        files = schema_files(store.options)
        migrate(store.writer, store.options, before=4)  # a store created before pricing tables existed
        store.command("INSERT INTO spanledger.otel_traces (Timestamp, TraceId, SpanId, SpanName) "
                      "VALUES (now64(9), 'aa', 'bb', 'kept')")
        report = migrate(store.writer, store.options)
        assert report.applied == tuple(f.name for f in files if f.version > 3)  # 004_pricing.sql onwards
        assert set(applied_versions(store.writer, store.options)) == {f.version for f in files}
        assert store.query("SELECT SpanName FROM spanledger.otel_traces").result_rows == [("kept",)]
    finally:
        store.close()


def test_changed_limits_reapply_only_the_repeatable_pipeline(tmp_path):
    store = _store(tmp_path)
    try:
        migrate(store.writer, store.options)
        store.options = SchemaOptions(max_attributes=7)
        report = migrate(store.writer, store.options)
        assert report.applied == ("900_ingest_pipeline.sql",)
        mv = store.query("SELECT create_table_query FROM system.tables WHERE name = 'spanledger_flatten_mv'").result_rows[0][0]
        assert "7" in mv
    finally:
        store.close()


def test_ttl_renders_with_ttl_only_drop_parts():
    statements = [s for f in schema_files(SchemaOptions(ttl_days=30)) for s in f.statements]
    spans = next(s for s in statements if "CREATE TABLE IF NOT EXISTS spanledger.otel_traces " in s)
    assert "TTL toDateTime(Timestamp) + toIntervalDay(30)" in spans and "ttl_only_drop_parts = 1" in spans


def test_cluster_ddl_is_replicated_and_distributed():
    statements = [s for f in schema_files(SchemaOptions(cluster="prod")) for s in f.statements]
    text = "\n".join(statements)
    spans = next(s for s in statements if "CREATE TABLE IF NOT EXISTS spanledger.otel_traces_local" in s)
    assert "ON CLUSTER prod" in spans
    assert "ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')" in spans
    assert "ReplicatedSummingMergeTree(" in text
    assert "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', ResolvedAt)" in text
    distributed = [s for s in statements if "ENGINE = Distributed(" in s]
    assert {s.split()[5] for s in distributed} == {
        "spanledger.otel_traces", "spanledger.otel_traces_trace_id_ts", "spanledger.otel_traces_trace_rows",
        "spanledger.spanledger_usage_hourly", "spanledger.spanledger_cost_daily"}
    # each shard keeps the trace rows of its own spans
    assert "TO spanledger.otel_traces_local_trace_rows" in text and "FROM spanledger.otel_traces_local\n" in text
    assert all("ON CLUSTER prod" in s for s in statements if s.startswith(("CREATE TABLE", "CREATE MATERIALIZED")))
    # the ingest pipeline writes to the shard-local tables
    assert "TO spanledger.otel_traces_local" in text


def test_the_server_load_path_sends_the_segment_as_the_insert_body(tmp_path):
    """The one ingest difference between embedded and server, run on the embedded engine.

    A server gets the segment's bytes as the body of INSERT ... FORMAT Protobuf
    (clickhouse-connect's raw_insert); the chDB client accepts the same call, so
    the server branch is exercised for real here, not mocked."""
    import os
    import time

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from spanledger.collector.wal import encode_record

    store = _store(tmp_path / "store")
    try:
        migrate(store.writer, store.options)
        request = ExportTraceServiceRequest()
        span = request.resource_spans.add().scope_spans.add().spans.add()
        span.trace_id, span.span_id, span.name = os.urandom(16), os.urandom(8), "via-http-body"
        span.start_time_unix_nano = time.time_ns()
        span.end_time_unix_nano = span.start_time_unix_nano + 5
        segment = tmp_path / "000000000001.wal"
        segment.write_bytes(encode_record(request.SerializeToString(), "acme"))
        store.segments_as_body = True  # what a server-backed store does
        store.load_segment(segment, "server-path-1")
        store.load_segment(segment, "server-path-1")  # a replay: deduplicated by its token
        assert store.query("SELECT SpanName, TenantId, Duration FROM spanledger.otel_traces").result_rows == [
            ("via-http-body", "acme", 5)]
    finally:
        store.close()
