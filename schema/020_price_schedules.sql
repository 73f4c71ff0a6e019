-- Prices as schedules, resolved before each WAL segment is stored: no parking, no re-ingest.
--
-- spanledger_prices holds, per (provider, model) the collector has seen, every
-- price genai-prices (plus the overrides) gives for it: periods by date and
-- time of day, each with its tiers by input tokens and a fee per request
-- (spanledger.pricing_rules).  The ingest pipeline prices every span from it
-- with one joinGet in the single pass that stores the span.
--
-- Several collectors may share one server, so nobody ever TRUNCATEs or
-- deletes here: a collector only inserts whole rows by key, and a Join with
-- join_any_take_last_row keeps the last row of each key.  A key once present
-- is never absent again, so a segment whose pairs were published is priced
-- whatever another collector writes meanwhile.
--
-- Replaced here: spanledger_price_lookup (first tier only) and
-- spanledger_model_prices.  spanledger_spans_unpriced (the old parking table)
-- is emptied through the new pipeline and dropped by the collector at its
-- first start on this schema (collector/pricing/lookup.py), as its rows
-- were acknowledged and must be stored.
DROP VIEW IF EXISTS ${database}.spanledger_stage_mv ${on_cluster};
DROP VIEW IF EXISTS ${database}.spanledger_store_mv ${on_cluster};
DROP TABLE IF EXISTS ${database}.spanledger_price_lookup ${on_cluster};
DROP TABLE IF EXISTS ${database}.spanledger_model_prices ${on_cluster};

-- The same rows as a table that can be read back (a Join's keys cannot, once reloaded):
-- the pairs seen so far, re-resolved at every start.  Latest resolution per key wins.
CREATE TABLE IF NOT EXISTS ${database}.spanledger_price_schedules ${on_cluster}
(
    ProviderKey String,
    ModelKey String,
    Known UInt8,  -- 1: priced; 2: resolved, no price known (0 is what a missing key reads as)
    -- per-token rates (USD), exact to 18 decimals; see spanledger.pricing_rules for the rules
    Schedule Tuple(
        period_from_day Array(Int32),          -- UTC days since 1970-01-01
        period_daily_from_ns Array(UInt64),    -- UTC time-of-day window [from, to), wraps past midnight
        period_daily_to_ns Array(UInt64),
        period_request_usd Array(Decimal(38, 18)),
        tier_period Array(UInt16),             -- 1-based period of each tier row
        tier_above Array(Int64),               -- -1: the base rates
        input Array(Decimal(38, 18)),
        output Array(Decimal(38, 18)),
        cache_read Array(Decimal(38, 18)),
        cache_write Array(Decimal(38, 18)),
        reasoning Array(Decimal(38, 18))),
    MatchedModel String,
    PriceSource LowCardinality(String),
    Resolver String,  -- genai-prices version and overrides digest that produced the row
    ResolvedAt DateTime64(6) DEFAULT now64(6)
)
ENGINE = ${replacing_merge_tree}(ResolvedAt)
ORDER BY (ProviderKey, ModelKey);

-- What the pipeline reads (joinGet): the same columns, the last row of each key.
CREATE TABLE IF NOT EXISTS ${database}.spanledger_prices ${on_cluster} AS ${database}.spanledger_price_schedules
ENGINE = Join(ANY, LEFT, ProviderKey, ModelKey)
SETTINGS join_any_take_last_row = 1;
