-- The spans table.  Column names and types follow the OpenTelemetry Collector
-- ClickHouse exporter's traces table, so tools that read that table (Grafana's
-- ClickHouse data source in OpenTelemetry mode, existing hand-written queries)
-- read ours.  spanledger adds promoted, typed columns for what users aggregate.
--
-- Placeholders (filled by spanledger.collector.store.ddl): ${database},
-- ${traces_table} (the storage table: otel_traces, or otel_traces_local on a
-- cluster), ${on_cluster}, ${merge_tree}, ${ttl}.
CREATE TABLE IF NOT EXISTS ${database}.${traces_table} ${on_cluster}
(
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),

    -- spanledger: who sent it (from the auth token, never from span attributes)
    TenantId LowCardinality(String) CODEC(ZSTD(1)),
    -- spanledger: what the span is
    Operation LowCardinality(String) CODEC(ZSTD(1)),
    ActivityType LowCardinality(String) CODEC(ZSTD(1)),
    Severity LowCardinality(String) CODEC(ZSTD(1)),
    ActivityStatus LowCardinality(String) CODEC(ZSTD(1)),
    Provider LowCardinality(String) CODEC(ZSTD(1)),
    RequestModel LowCardinality(String) CODEC(ZSTD(1)),
    Model LowCardinality(String) CODEC(ZSTD(1)),
    AgentId String CODEC(ZSTD(1)),
    AgentName LowCardinality(String) CODEC(ZSTD(1)),
    ToolName LowCardinality(String) CODEC(ZSTD(1)),
    -- spanledger: whose it is
    TicketId String CODEC(ZSTD(1)),
    ProjectId String CODEC(ZSTD(1)),
    UserId String CODEC(ZSTD(1)),
    SessionId String CODEC(ZSTD(1)),
    ConversationId String CODEC(ZSTD(1)),
    Environment LowCardinality(String) CODEC(ZSTD(1)),
    -- spanledger: tokens (input includes cached, output includes reasoning)
    InputTokens UInt64 CODEC(T64, ZSTD(1)),
    OutputTokens UInt64 CODEC(T64, ZSTD(1)),
    CacheReadTokens UInt64 CODEC(T64, ZSTD(1)),
    CacheWriteTokens UInt64 CODEC(T64, ZSTD(1)),
    ReasoningTokens UInt64 CODEC(T64, ZSTD(1)),
    TokensSource LowCardinality(String) CODEC(ZSTD(1)),
    -- spanledger: exact USD cost and where it came from
    InputCost Decimal(18, 12) CODEC(ZSTD(1)),
    OutputCost Decimal(18, 12) CODEC(ZSTD(1)),
    TotalCost Decimal(18, 12) CODEC(ZSTD(1)),
    CostSource LowCardinality(String) CODEC(ZSTD(1)),
    -- spanledger: how much of the span the collector had to cut to fit its limits
    TruncatedAttributes UInt32 CODEC(T64, ZSTD(1)),
    TruncatedEvents UInt32 CODEC(T64, ZSTD(1)),

    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1,
    INDEX idx_user_id UserId TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_project_id ProjectId TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_session_id SessionId TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_conversation_id ConversationId TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_ticket_id TicketId TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_total_cost TotalCost TYPE minmax GRANULARITY 1
)
ENGINE = ${merge_tree}
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp))
${ttl}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;
