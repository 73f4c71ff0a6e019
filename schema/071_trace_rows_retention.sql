-- spanledger: repeatable
-- The trace rows (070_trace_rows.sql) live exactly as long as the raw spans
-- (exporters.clickhouse.retention.spans): re-applied whenever those days change.
-- Rows, not whole parts, expire (its parts span a month): TTL merges drop them.
ALTER TABLE ${database}.${traces_table}_trace_rows ${on_cluster}
    MODIFY TTL toDateTime(Timestamp) + toIntervalDay(${retention_spans_days}) ${retention_spans_where};
