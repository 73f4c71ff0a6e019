-- The trace-id lookup table gets the tenant, so a tenant's one-trace read can
-- use it (filtered by TenantId like every span table) instead of scanning the
-- spans table.  Additive: the OpenTelemetry Collector exporter's columns
-- (TraceId, Start, End) and the sort key stay as they are; a trace is found by
-- TraceId through the key, and TenantId narrows it.
ALTER TABLE ${database}.${traces_table}_trace_id_ts ${on_cluster}
    ADD COLUMN IF NOT EXISTS TenantId LowCardinality(String) DEFAULT '' CODEC(ZSTD(1)) AFTER TraceId;

ALTER TABLE ${database}.${traces_table}_trace_id_ts_mv ${on_cluster} MODIFY QUERY
SELECT
    TenantId,
    TraceId,
    min(Timestamp) AS Start,
    max(Timestamp) AS End
FROM ${database}.${traces_table}
WHERE TraceId != ''
GROUP BY TenantId, TraceId;

-- Rows written before this migration have TenantId ''; give every stored trace
-- its tenant's row too (a repeat of a row is harmless: readers take min/max).
INSERT INTO ${database}.${traces_table}_trace_id_ts (TenantId, TraceId, Start, End)
SELECT TenantId, TraceId, min(Timestamp), max(Timestamp)
FROM ${database}.${traces_table}
WHERE TraceId != '' AND TenantId != ''
GROUP BY TenantId, TraceId;
