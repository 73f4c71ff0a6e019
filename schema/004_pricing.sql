-- Prices the collector resolved, one row per (provider, model) it has seen.
-- Python resolves each pair once with spanledger.pricing (genai-prices plus
-- the configured overrides); ClickHouse then prices every span of that model
-- with a hash lookup, so no per-span Python work is on the ingest path.
-- Rates are USD per token, exact to 18 decimals.
CREATE TABLE IF NOT EXISTS ${database}.spanledger_model_prices ${on_cluster}
(
    ProviderKey String,
    ModelKey String,
    Known UInt8,  -- 1: priced; 2: resolved, no price known (0 is what a missing key reads as)
    InputRate Decimal(38, 18),
    OutputRate Decimal(38, 18),
    CacheReadRate Decimal(38, 18),
    CacheWriteRate Decimal(38, 18),
    TierThreshold UInt64,
    TierInputRate Decimal(38, 18),
    TierOutputRate Decimal(38, 18),
    TierCacheReadRate Decimal(38, 18),
    TierCacheWriteRate Decimal(38, 18),
    MatchedModel String,
    PriceSource LowCardinality(String),
    ResolvedAt DateTime DEFAULT now()
)
ENGINE = ${replacing_merge_tree}(ResolvedAt)
ORDER BY (ProviderKey, ModelKey);

-- The same prices held in memory for joinGet() on the ingest path.  Rebuilt
-- from spanledger_model_prices and the current price book at every start.
CREATE TABLE IF NOT EXISTS ${database}.spanledger_price_lookup ${on_cluster}
(
    ProviderKey String,
    ModelKey String,
    Known UInt8,
    InputRate Decimal(38, 18),
    OutputRate Decimal(38, 18),
    CacheReadRate Decimal(38, 18),
    CacheWriteRate Decimal(38, 18),
    TierThreshold UInt64,
    TierInputRate Decimal(38, 18),
    TierOutputRate Decimal(38, 18),
    TierCacheReadRate Decimal(38, 18),
    TierCacheWriteRate Decimal(38, 18)
)
ENGINE = Join(ANY, LEFT, ProviderKey, ModelKey)
SETTINGS join_any_take_last_row = 1;
