-- spanledger: repeatable
-- The ingest pipeline: WAL segments -> spans.  Re-applied whenever its text
-- (with the configured limits filled in) changes; it holds no data.
--
--   spanledger_otlp_raw (Null)       one row per WAL record, decoded by ClickHouse (FORMAT Protobuf)
--     -> spanledger_flatten_mv         one row per span: columns, promoted attributes, limits applied
--   spanledger_spans_ingest (Null)
--     -> spanledger_store_mv           every span priced (spanledger_prices, resolved before the
--                                      segment was loaded) -> ${traces_table}, in this one pass
--
-- Re-applying never opens a window in which an insert is lost: functions and
-- the Null tables are replaced atomically (CREATE OR REPLACE keeps the views
-- attached), and the migration runner turns each CREATE MATERIALIZED VIEW of
-- a view that exists into ALTER TABLE ... MODIFY QUERY (store/migrations.py).
-- A view the pipeline no longer has is dropped by name.
DROP VIEW IF EXISTS ${database}.spanledger_stage_mv ${on_cluster};

-- First the raw table: the functions below read its new shape, and the old ones read it too.
CREATE OR REPLACE TABLE ${database}.spanledger_otlp_raw ${on_cluster}
(
    resource_spans Array(Tuple(
        resource Tuple(attributes Array(Tuple(key String, value ${any_value_type}))),
        scope_spans Array(Tuple(
            scope Tuple(name String, version String),
            spans Array(Tuple(
                trace_id String, span_id String, trace_state String, parent_span_id String,
                name String, kind Int32, start_time_unix_nano UInt64, end_time_unix_nano UInt64,
                attributes Array(Tuple(key String, value ${any_value_type})),
                events Array(Tuple(time_unix_nano UInt64, name String,
                    attributes Array(Tuple(key String, value ${any_value_type})))),
                links Array(Tuple(trace_id String, span_id String, trace_state String,
                    attributes Array(Tuple(key String, value ${any_value_type})))),
                status Tuple(message String, code Int32))))))),
    tenant String
)
ENGINE = Null;

-- A scalar as its text.  Written as coalesce over functions that keep NULL (the decoded oneof
-- members are Nullable, so the member that is set wins, in the order of the oneof's checks): a
-- third of the multiIf's size, which counts because the engine expands it at every use.
CREATE OR REPLACE FUNCTION spanledger_scalar_to_string ${on_cluster} AS (v) -> coalesce(
    tupleElement(v, 'string_value'), toString(tupleElement(v, 'int_value')), toString(tupleElement(v, 'double_value')),
    toString(tupleElement(v, 'bool_value')), base64Encode(tupleElement(v, 'bytes_value')), '');

-- A scalar inside an array or kvlist, as JSON (what the OpenTelemetry Collector's
-- pcommon Value.AsString writes: strings quoted, bytes as base64 strings, non-finite
-- numbers and no value as null).  NOT isFinite(NULL) is NULL, so an absent double stays NULL.
CREATE OR REPLACE FUNCTION spanledger_scalar_to_json ${on_cluster} AS (v) -> coalesce(
    toJSONString(tupleElement(v, 'string_value')), toString(tupleElement(v, 'int_value')),
    if(NOT isFinite(tupleElement(v, 'double_value')), 'null', toString(tupleElement(v, 'double_value'))),
    toString(tupleElement(v, 'bool_value')), toJSONString(base64Encode(tupleElement(v, 'bytes_value'))), 'null');

-- A value's members when it is an array or a kvlist.  The two share one arrayMap in every
-- function below (an array is a list whose members have no key), so each function's body,
-- which the engine expands at every use when it analyses an INSERT, is about half the size.
CREATE OR REPLACE FUNCTION spanledger_is_list ${on_cluster} AS (v) ->
    notEmpty(tupleElement(tupleElement(v, 'array_value'), 'values'))
    OR notEmpty(tupleElement(tupleElement(v, 'kvlist_value'), 'values'));

-- The members' values: the array's, else the kvlist's in key order (as Go's encoding/json writes a map).
CREATE OR REPLACE FUNCTION spanledger_list_values ${on_cluster} AS (v) -> if(
    notEmpty(tupleElement(tupleElement(v, 'array_value'), 'values')),
    tupleElement(tupleElement(v, 'array_value'), 'values'),
    tupleElement(arraySort(kv -> tupleElement(kv, 'key'), tupleElement(tupleElement(v, 'kvlist_value'), 'values')), 'value'));

-- The list as JSON from its members' JSON texts (in spanledger_list_values order): [a,b] or {"k":a}.
-- The texts are written once in the body: an argument used twice is expanded twice.
CREATE OR REPLACE FUNCTION spanledger_list_json ${on_cluster} AS (v, texts) -> concat(
    if(notEmpty(tupleElement(tupleElement(v, 'array_value'), 'values')), '[', '{'),
    arrayStringConcat(arrayMap((p, t) -> concat(p, t),
        if(notEmpty(tupleElement(tupleElement(v, 'array_value'), 'values')),
           arrayWithConstant(length(tupleElement(tupleElement(v, 'array_value'), 'values')), ''),
           arrayMap(kv -> concat(toJSONString(tupleElement(kv, 'key')), ':'),
               arraySort(kv -> tupleElement(kv, 'key'), tupleElement(tupleElement(v, 'kvlist_value'), 'values')))),
        texts), ','),
    if(notEmpty(tupleElement(tupleElement(v, 'array_value'), 'values')), ']', '}'));

-- A value one level down: a scalar, or an array / kvlist of scalars.
CREATE OR REPLACE FUNCTION spanledger_nested_to_json ${on_cluster} AS (v) -> if(spanledger_is_list(v),
    spanledger_list_json(v, arrayMap(x -> spanledger_scalar_to_json(x), spanledger_list_values(v))),
    spanledger_scalar_to_json(v));

-- Scalars as their text; arrays and kvlists as JSON, as the OpenTelemetry Collector stores them.
CREATE OR REPLACE FUNCTION spanledger_anyvalue_to_string ${on_cluster} AS (v) -> if(spanledger_is_list(v),
    spanledger_list_json(v, arrayMap(x -> spanledger_nested_to_json(x), spanledger_list_values(v))),
    spanledger_scalar_to_string(v));

-- The first max_count attributes as a map of texts cut to max_length.  The texts are computed
-- over all attributes and sliced after: slicing the decoded values first copies them (with every
-- member of the AnyValue shape), which took ~110 MiB of the 50k-span insert.
CREATE OR REPLACE FUNCTION spanledger_attributes_to_map ${on_cluster} AS (attrs, max_count, max_length) -> mapFromArrays(
    arraySlice(tupleElement(attrs, 'key'), 1, max_count),
    arraySlice(arrayMap(a -> substringUTF8(spanledger_anyvalue_to_string(tupleElement(a, 'value')), 1, max_length), attrs), 1, max_count));

CREATE OR REPLACE TABLE ${database}.spanledger_spans_ingest ${on_cluster} AS ${database}.${traces_table} ENGINE = Null;

-- One query, no subqueries: the engine analyses it at every INSERT (every WAL segment),
-- and each layer of SELECT * cost 40-80 ms of that (bench/README.md, "Perf round 3").
--
-- Spans are taken apart where ClickHouse decoded them: every span field is read as the
-- subcolumn resource_spans.scope_spans.spans.<field> (an array per resource, per scope,
-- per span), and what a span needs from its attributes, events and links is computed in
-- arrayMap over those arrays, which reads them in place.  arrayFlatten then gives one
-- element per span and a single ARRAY JOIN makes the rows.  Three ARRAY JOINs of whole
-- tuples copied every member of the decoded shape at each level (~15 KiB per span at
-- 50k spans against ~8 KiB now, measured).  The WITH aliases below are expanded where
-- they are used; each value's text is still computed once (the engine merges equal
-- expressions).
CREATE MATERIALIZED VIEW ${database}.spanledger_flatten_mv ${on_cluster}
TO ${database}.spanledger_spans_ingest
AS WITH
    fromUnixTimestamp64Nano(toInt64(s_start)) AS Timestamp,
    lower(hex(s_trace_id)) AS TraceId,
    lower(hex(s_span_id)) AS SpanId,
    lower(hex(s_parent)) AS ParentSpanId,
    s_trace_state AS TraceState,
    s_name AS SpanName,
    ['Unspecified', 'Internal', 'Server', 'Client', 'Producer', 'Consumer'][least(greatest(s_kind, 0), 5) + 1] AS SpanKind,
    scope.name AS ScopeName,
    scope.version AS ScopeVersion,
    -- the attribute map: keys, and each value's text cut to the limit
    mapFromArrays(s_attrs.1, arrayMap(t -> substringUTF8(t, 1, ${max_attribute_length}), s_attrs.2)) AS sa,
    toUInt32(s_attrs.3 + arrayCount(t -> lengthUTF8(t) > ${max_attribute_length}, s_attrs.2)) AS TruncatedAttributes,
    s_end - s_start AS Duration,
    ['Unset', 'Ok', 'Error'][least(greatest(s_code, 0), 2) + 1] AS StatusCode,
    s_message AS StatusMessage,
    s_events.1 AS `Events.Timestamp`,
    s_events.2 AS `Events.Name`,
    s_events.3 AS `Events.Attributes`,
    s_events.4 AS TruncatedEvents,
    s_links.1 AS `Links.TraceId`,
    s_links.2 AS `Links.SpanId`,
    s_links.3 AS `Links.TraceState`,
    s_links.4 AS `Links.Attributes`,
    tenant AS TenantId,
    -- tokens in every spelling we know; the first present wins
    coalesce(toUInt64OrNull(sa['gen_ai.usage.input_tokens']), toUInt64OrNull(sa['gen_ai.usage.prompt_tokens']),
             toUInt64OrNull(sa['llm.token_count.prompt']), toUInt64OrNull(sa['llm.usage.prompt_tokens']), 0) AS in_raw,
    coalesce(toUInt64OrNull(sa['gen_ai.usage.output_tokens']), toUInt64OrNull(sa['gen_ai.usage.completion_tokens']),
             toUInt64OrNull(sa['llm.token_count.completion']), toUInt64OrNull(sa['llm.usage.completion_tokens']), 0) AS out_raw,
    coalesce(toUInt64OrNull(sa['gen_ai.usage.cache_read.input_tokens']), toUInt64OrNull(sa['gen_ai.usage.cache_read_input_tokens']),
             toUInt64OrNull(sa['llm.token_count.prompt_details.cache_read']), 0) AS cache_read,
    coalesce(toUInt64OrNull(sa['gen_ai.usage.cache_creation.input_tokens']), toUInt64OrNull(sa['gen_ai.usage.cache_creation_input_tokens']),
             toUInt64OrNull(sa['llm.token_count.prompt_details.cache_write']), 0) AS cache_write,
    coalesce(toUInt64OrNull(sa['gen_ai.usage.reasoning.output_tokens']), toUInt64OrNull(sa['llm.token_count.completion_details.reasoning']),
             toUInt64OrNull(sa['llm.usage.reasoning_tokens']), 0) AS reasoning,
    sa['openinference.span.kind'] AS oi_kind,
    lower(sa['traceloop.span.kind']) AS tl_kind,
    multiIf(sa['gen_ai.response.model'] != '', sa['gen_ai.response.model'],
            sa['gen_ai.request.model'] != '', sa['gen_ai.request.model'],
            sa['llm.model_name'] != '', sa['llm.model_name'],
            sa['llm.response.model'] != '', sa['llm.response.model'],
            sa['llm.request.model']) AS model,
    coalesce(toDecimal64OrNull(sa['spanledger.cost.total_usd'], 12), toDecimal64OrNull(sa['llm.cost.total'], 12),
             toDecimal64OrNull(sa['gen_ai.usage.cost'], 12), toDecimal64OrNull(sa['operation.cost'], 12)) AS cost_total,
    coalesce(toDecimal64OrNull(sa['spanledger.cost.input_usd'], 12), toDecimal64OrNull(sa['llm.cost.prompt'], 12)) AS cost_in,
    coalesce(toDecimal64OrNull(sa['spanledger.cost.output_usd'], 12), toDecimal64OrNull(sa['llm.cost.completion'], 12)) AS cost_out,
    sa['spanledger.cost.source'] AS declared_cost_source
SELECT
    Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind,
    ra['service.name'] AS ServiceName,
    ra AS ResourceAttributes,
    ScopeName, ScopeVersion,
    ${stored_span_attributes} AS SpanAttributes,
    Duration, StatusCode, StatusMessage,
    `Events.Timestamp`, `Events.Name`, `Events.Attributes`,
    `Links.TraceId`, `Links.SpanId`, `Links.TraceState`, `Links.Attributes`,
    TenantId,
    multiIf(sa['gen_ai.operation.name'] != '', sa['gen_ai.operation.name'],
            oi_kind = 'LLM', 'chat', oi_kind = 'EMBEDDING', 'embeddings', oi_kind = 'TOOL', 'execute_tool',
            oi_kind = 'AGENT', 'invoke_agent', tl_kind = 'tool', 'execute_tool', tl_kind = 'agent', 'invoke_agent',
            tl_kind IN ('workflow', 'task'), tl_kind, '') AS Operation,
    sa['spanledger.activity.type'] AS ActivityType,
    sa['spanledger.severity'] AS Severity,
    sa['spanledger.status'] AS ActivityStatus,
    lower(multiIf(sa['gen_ai.provider.name'] != '', sa['gen_ai.provider.name'],
                  sa['gen_ai.system'] != '', sa['gen_ai.system'],
                  sa['llm.provider'] != '', sa['llm.provider'],
                  sa['llm.system'])) AS Provider,
    multiIf(sa['gen_ai.request.model'] != '', sa['gen_ai.request.model'], sa['llm.request.model'] != '', sa['llm.request.model'], model) AS RequestModel,
    model AS Model,
    sa['gen_ai.agent.id'] AS AgentId,
    multiIf(sa['gen_ai.agent.name'] != '', sa['gen_ai.agent.name'], sa['agent.name'] != '', sa['agent.name'],
            tl_kind = 'agent', sa['traceloop.entity.name'], '') AS AgentName,
    multiIf(sa['gen_ai.tool.name'] != '', sa['gen_ai.tool.name'], sa['tool.name'] != '', sa['tool.name'],
            tl_kind = 'tool', sa['traceloop.entity.name'], '') AS ToolName,
    sa['spanledger.ticket.id'] AS TicketId,
    sa['spanledger.project.id'] AS ProjectId,
    multiIf(sa['spanledger.user.id'] != '', sa['spanledger.user.id'], sa['user.id'] != '', sa['user.id'], sa['enduser.id']) AS UserId,
    multiIf(sa['spanledger.session.id'] != '', sa['spanledger.session.id'], sa['session.id']) AS SessionId,
    multiIf(sa['gen_ai.conversation.id'] != '', sa['gen_ai.conversation.id'], sa['session.id']) AS ConversationId,
    multiIf(sa['spanledger.environment'] != '', sa['spanledger.environment'],
            ra['deployment.environment.name'] != '', ra['deployment.environment.name'], ra['deployment.environment']) AS Environment,
    -- input includes cached tokens and output includes reasoning tokens; an
    -- instrumentation that reports them apart is recognised by the parts
    -- exceeding the whole, and its totals are made whole, never counted twice.
    if(cache_read + cache_write > in_raw, in_raw + cache_read + cache_write, in_raw) AS InputTokens,
    if(reasoning > out_raw, out_raw + reasoning, out_raw) AS OutputTokens,
    cache_read AS CacheReadTokens,
    cache_write AS CacheWriteTokens,
    reasoning AS ReasoningTokens,
    multiIf(sa['spanledger.tokens.source'] != '', sa['spanledger.tokens.source'], in_raw + out_raw > 0, 'provider', '') AS TokensSource,
    -- provided costs are kept; 'pending' asks spanledger_store_mv to price the span
    multiIf(${provided_cost_wins} AND cost_total IS NOT NULL, coalesce(cost_in, toDecimal64(0, 12)), toDecimal64(0, 12)) AS InputCost,
    multiIf(${provided_cost_wins} AND cost_total IS NOT NULL, coalesce(cost_out, toDecimal64(0, 12)), toDecimal64(0, 12)) AS OutputCost,
    multiIf(${provided_cost_wins} AND cost_total IS NOT NULL, assumeNotNull(cost_total), toDecimal64(0, 12)) AS TotalCost,
    multiIf(${provided_cost_wins} AND cost_total IS NOT NULL, if(declared_cost_source != '', declared_cost_source, 'provided'),
            ${provided_cost_wins} AND declared_cost_source = 'unknown_model', 'unknown_model',
            model != '' AND in_raw + out_raw + cache_read + cache_write > 0, 'pending',
            '') AS CostSource,
    TruncatedAttributes, TruncatedEvents,
    -- the collector's number for this INSERT (see 040_ingest_batch.sql); 0 when it gave none
    toUInt64OrZero(extract(getSetting('log_comment'), 'spanledger_ingest_batch=([0-9]+)')) AS IngestBatch
FROM ${database}.spanledger_otlp_raw
ARRAY JOIN
    arrayFlatten(resource_spans.scope_spans.spans.trace_id) AS s_trace_id,
    arrayFlatten(resource_spans.scope_spans.spans.span_id) AS s_span_id,
    arrayFlatten(resource_spans.scope_spans.spans.parent_span_id) AS s_parent,
    arrayFlatten(resource_spans.scope_spans.spans.trace_state) AS s_trace_state,
    arrayFlatten(resource_spans.scope_spans.spans.name) AS s_name,
    arrayFlatten(resource_spans.scope_spans.spans.kind) AS s_kind,
    arrayFlatten(resource_spans.scope_spans.spans.start_time_unix_nano) AS s_start,
    arrayFlatten(resource_spans.scope_spans.spans.end_time_unix_nano) AS s_end,
    arrayFlatten(resource_spans.scope_spans.spans.status.message) AS s_message,
    arrayFlatten(resource_spans.scope_spans.spans.status.code) AS s_code,
    -- per span, a tuple (flattening stops at it): keys, every value's text (uncut: the
    -- truncation count needs the full length), and how many attributes were over the limit
    arrayFlatten(arrayMap(r -> arrayMap(sc -> arrayMap(attrs -> (
            arraySlice(attrs.key, 1, ${max_attributes}),
            arraySlice(arrayMap(a -> spanledger_anyvalue_to_string(a.value), attrs), 1, ${max_attributes}),
            greatest(length(attrs) - ${max_attributes}, 0)),
        sc), r), resource_spans.scope_spans.spans.attributes)) AS s_attrs,
    -- per span: the events' columns (the first max_events), and how many were dropped
    arrayFlatten(arrayMap(r -> arrayMap(sc -> arrayMap(events -> (
            arraySlice(arrayMap(t -> fromUnixTimestamp64Nano(toInt64(t)), events.time_unix_nano), 1, ${max_events}),
            arraySlice(events.name, 1, ${max_events}),
            arraySlice(arrayMap(e -> ${stored_event_attributes}, events), 1, ${max_events}),
            toUInt32(greatest(length(events) - ${max_events}, 0))),
        sc), r), resource_spans.scope_spans.spans.events)) AS s_events,
    arrayFlatten(arrayMap(r -> arrayMap(sc -> arrayMap(links -> (
            arraySlice(arrayMap(t -> lower(hex(t)), links.trace_id), 1, ${max_links}),
            arraySlice(arrayMap(t -> lower(hex(t)), links.span_id), 1, ${max_links}),
            arraySlice(links.trace_state, 1, ${max_links}),
            arraySlice(arrayMap(a -> spanledger_attributes_to_map(a, ${max_attributes}, ${max_attribute_length}), links.attributes),
                       1, ${max_links})),
        sc), r), resource_spans.scope_spans.spans.links)) AS s_links,
    -- the resource's map, built once per resource and repeated for each of its spans
    arrayFlatten(arrayMap((attrs, kinds) -> arrayWithConstant(length(arrayFlatten(kinds)),
            spanledger_attributes_to_map(attrs, ${max_attributes}, ${max_attribute_length})),
        resource_spans.resource.attributes, resource_spans.scope_spans.spans.kind)) AS ra,
    -- the scope (name, version), repeated for each of its spans
    arrayFlatten(arrayMap((scopes, kinds) -> arrayMap((s, k) -> arrayWithConstant(length(k), s), scopes, kinds),
        resource_spans.scope_spans.scope, resource_spans.scope_spans.spans.kind)) AS scope;

-- Pricing: one hash lookup per span, then the formula of spanledger.pricing_rules
-- (the SDK's cost_from_rates), which tests/collector/test_pricing_every_model.py
-- holds equal to it and to genai_prices.calc_price.  The collector published the
-- prices of every (provider, model) of the segment before loading it, so a span
-- whose key is missing or known to have no price is 'unknown_model' here, never parked.
--
-- Written without if(), multiIf(), AND or OR around the amounts, on purpose: those
-- evaluate their branches lazily, for the rows that take them, and a lazy branch
-- recomputes everything it uses (the lookups, the period and tier search, the
-- arithmetic) once per use.  That made this view ~8 µs per span; computed eagerly
-- once and chosen by index ([a, b][i]) or by 0/1 products, it is ~1 µs.
CREATE MATERIALIZED VIEW ${database}.spanledger_store_mv ${on_cluster}
TO ${database}.${traces_table}
AS WITH
    -- 0: missing (a missing key reads as 0), 1: priced, 2: resolved, no price known
    joinGet('${database}.spanledger_prices', 'Known', Provider, lower(Model)) AS known,
    joinGet('${database}.spanledger_prices', 'Schedule', Provider, lower(Model)) AS s,
    toUnixTimestamp64Nano(Timestamp) AS at_ns,
    -- the last active period, else the first; then the highest tier the input exceeds
    greatest(arrayLastIndex((from_day, window_from, window_to) -> intDiv(at_ns, 86400000000000) >= from_day
                 AND if(window_from <= window_to,
                        at_ns % 86400000000000 >= window_from AND at_ns % 86400000000000 < window_to,
                        at_ns % 86400000000000 >= window_from OR at_ns % 86400000000000 < window_to),
             s.period_from_day, s.period_daily_from_ns, s.period_daily_to_ns), 1) AS period,
    arrayLastIndex((tier_period, above) -> tier_period = period AND (above < 0 OR InputTokens > above),
                   s.tier_period, s.tier_above) AS tier,
    least(ReasoningTokens, OutputTokens) AS reasoning,
    toDecimal128(InputTokens - least(InputTokens, CacheReadTokens + CacheWriteTokens), 0) * s.input[tier]
        + toDecimal128(CacheReadTokens, 0) * s.cache_read[tier]
        + toDecimal128(CacheWriteTokens, 0) * s.cache_write[tier] AS input_usd,
    toDecimal128(OutputTokens - reasoning, 0) * s.output[tier] + toDecimal128(reasoning, 0) * s.reasoning[tier] AS output_usd,
    input_usd + output_usd + s.period_request_usd[period] AS total_usd,
    toDecimal128(1000000, 18) AS ceiling,
    -- a cost the column cannot hold (absurd token counts) is refused per span, never for the segment
    total_usd < ceiling AS in_range,
    CostSource = 'pending' AS pending,
    pending * (known = 1) * in_range AS priced,
    -- 1: keep, 2: unknown_model, 3: computed, 4: cost_out_of_range
    1 + pending * (1 + (known = 1) * (2 - in_range)) AS outcome
SELECT * REPLACE (
    [InputCost, toDecimal64(least(input_usd, ceiling), 12)][priced + 1] AS InputCost,
    [OutputCost, toDecimal64(least(output_usd, ceiling), 12)][priced + 1] AS OutputCost,
    [TotalCost, toDecimal64(least(total_usd, ceiling), 12)][priced + 1] AS TotalCost,
    [CostSource, 'unknown_model', 'computed', 'cost_out_of_range'][outcome] AS CostSource)
FROM ${database}.spanledger_spans_ingest;
