-- When each trace started and ended, keyed by TraceId: finding one trace in
-- the spans table then reads only the days it spans.  Same shape as the
-- OpenTelemetry Collector ClickHouse exporter's otel_traces_trace_id_ts.
CREATE TABLE IF NOT EXISTS ${database}.${traces_table}_trace_id_ts ${on_cluster}
(
    TraceId String CODEC(ZSTD(1)),
    Start DateTime CODEC(Delta, ZSTD(1)),
    End DateTime CODEC(Delta, ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = ${merge_tree}
PARTITION BY toDate(Start)
ORDER BY (TraceId, Start)
${ttl_start}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${database}.${traces_table}_trace_id_ts_mv ${on_cluster}
TO ${database}.${traces_table}_trace_id_ts
AS SELECT
    TraceId,
    min(Timestamp) AS Start,
    max(Timestamp) AS End
FROM ${database}.${traces_table}
WHERE TraceId != ''
GROUP BY TraceId;
