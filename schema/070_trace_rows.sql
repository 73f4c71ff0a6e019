-- One trace, read in one small query: every span's API summary, pre-encoded,
-- keyed by trace.  The spans table is sorted for reports (ServiceName,
-- SpanName, time) and partitioned by day, so reading one trace there costs a
-- lookup query, a visit to every matching day's parts and ~28 columns; each
-- column of each part is a fixed cost in the engine (measured: ~0.25 ms per
-- column, ~0.2 ms per part, bench/README.md "One trace").  Here a trace is a
-- primary-key range of one String column: ~3 ms at 1M spans.
--
-- Row is JSONCompactEachRow of the activity API's summary fields (the tenant
-- too, so a read needs no other column), in the order of collector/query/activities.py TRACE_ROW (change both together,
-- with a new migration that rebuilds the rows).  A span written twice
-- (started, then completed) has two rows; the reader keeps the completed one,
-- as it does on the spans table.  Deletions follow the spans table: the same
-- TTL (071_trace_rows_retention.sql) and collector/store/retention.py.
CREATE TABLE IF NOT EXISTS ${database}.${traces_table}_trace_rows ${on_cluster}
(
    TraceId String CODEC(ZSTD(1)),
    TenantId LowCardinality(String) CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    Row String CODEC(ZSTD(1))
)
ENGINE = ${merge_tree}
PARTITION BY toYYYYMM(Timestamp)
ORDER BY (TraceId, TenantId, SpanId)
SETTINGS index_granularity = 1024, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${database}.${traces_table}_trace_rows_mv ${on_cluster}
TO ${database}.${traces_table}_trace_rows
AS SELECT
    TraceId,
    TenantId,
    SpanId,
    Timestamp,
    formatRowNoNewline('JSONCompactEachRow',
        SpanId, ParentSpanId, SpanName, ActivityType, AgentName, ServiceName, Operation, Model, Provider,
        toString(toUnixTimestamp64Nano(Timestamp)), toString(Duration),
        if(ActivityStatus != '', ActivityStatus, lower(StatusCode)), Severity,
        toString(InputTokens), toString(OutputTokens), toString(CacheReadTokens), toString(CacheWriteTokens),
        toString(ReasoningTokens), toString(TotalCost), CostSource, UserId, SessionId, ProjectId, TicketId,
        ConversationId, Environment, TenantId) AS Row
FROM ${database}.${traces_table}
WHERE TraceId != '';

-- Spans stored before this migration (a span stored while it runs may get two
-- identical rows: the reader keeps one row per span id).
INSERT INTO ${database}.${traces_table}_trace_rows (TraceId, TenantId, SpanId, Timestamp, Row)
SELECT
    TraceId,
    TenantId,
    SpanId,
    Timestamp,
    formatRowNoNewline('JSONCompactEachRow',
        SpanId, ParentSpanId, SpanName, ActivityType, AgentName, ServiceName, Operation, Model, Provider,
        toString(toUnixTimestamp64Nano(Timestamp)), toString(Duration),
        if(ActivityStatus != '', ActivityStatus, lower(StatusCode)), Severity,
        toString(InputTokens), toString(OutputTokens), toString(CacheReadTokens), toString(CacheWriteTokens),
        toString(ReasoningTokens), toString(TotalCost), CostSource, UserId, SessionId, ProjectId, TicketId,
        ConversationId, Environment, TenantId)
FROM ${database}.${traces_table}
WHERE TraceId != '';
