-- Cost and tokens per hour by tenant, service, provider, model, agent,
-- project, user and environment.  Spend reports and budgets read this, not
-- the raw spans: a month of spend is a few thousand rows.
CREATE TABLE IF NOT EXISTS ${database}.spanledger_usage_hourly${local_suffix} ${on_cluster}
(
    Hour DateTime CODEC(Delta, ZSTD(1)),
    TenantId LowCardinality(String),
    ServiceName LowCardinality(String),
    Provider LowCardinality(String),
    Model LowCardinality(String),
    AgentName LowCardinality(String),
    ProjectId String,
    UserId String,
    Environment LowCardinality(String),
    CostSource LowCardinality(String),
    Spans UInt64,
    ErrorSpans UInt64,
    LlmCalls UInt64,
    DurationNs UInt64,
    InputTokens UInt64,
    OutputTokens UInt64,
    CacheReadTokens UInt64,
    CacheWriteTokens UInt64,
    ReasoningTokens UInt64,
    InputCost Decimal(38, 12),
    OutputCost Decimal(38, 12),
    TotalCost Decimal(38, 12)
)
ENGINE = ${summing_merge_tree}
PARTITION BY toYYYYMM(Hour)
ORDER BY (TenantId, Hour, ServiceName, Provider, Model, AgentName, ProjectId, UserId, Environment, CostSource)
${ttl_hour}
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${database}.spanledger_usage_hourly_mv ${on_cluster}
TO ${database}.spanledger_usage_hourly${local_suffix}
AS SELECT
    toStartOfHour(Timestamp) AS Hour,
    TenantId, ServiceName, Provider, Model, AgentName, ProjectId, UserId, Environment, CostSource,
    count() AS Spans,
    countIf(StatusCode = 'Error') AS ErrorSpans,
    countIf(Model != '') AS LlmCalls,
    sum(Duration) AS DurationNs,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(CacheReadTokens) AS CacheReadTokens,
    sum(CacheWriteTokens) AS CacheWriteTokens,
    sum(ReasoningTokens) AS ReasoningTokens,
    sum(toDecimal128(InputCost, 12)) AS InputCost,
    sum(toDecimal128(OutputCost, 12)) AS OutputCost,
    sum(toDecimal128(TotalCost, 12)) AS TotalCost
FROM ${database}.${traces_table}
GROUP BY Hour, TenantId, ServiceName, Provider, Model, AgentName, ProjectId, UserId, Environment, CostSource;

-- The same per day and model only: the cheapest answer to "spend per day".
CREATE TABLE IF NOT EXISTS ${database}.spanledger_cost_daily${local_suffix} ${on_cluster}
(
    Day Date,
    TenantId LowCardinality(String),
    Provider LowCardinality(String),
    Model LowCardinality(String),
    Spans UInt64,
    InputTokens UInt64,
    OutputTokens UInt64,
    TotalCost Decimal(38, 12)
)
ENGINE = ${summing_merge_tree}
PARTITION BY toYYYYMM(Day)
ORDER BY (TenantId, Day, Provider, Model)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${database}.spanledger_cost_daily_mv ${on_cluster}
TO ${database}.spanledger_cost_daily${local_suffix}
AS SELECT
    toDate(Timestamp) AS Day, TenantId, Provider, Model,
    count() AS Spans,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(toDecimal128(TotalCost, 12)) AS TotalCost
FROM ${database}.${traces_table}
GROUP BY Day, TenantId, Provider, Model;
