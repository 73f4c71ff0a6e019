-- The flatten view as it was on main before perf round 3 (commit e736727,
-- schema/900_ingest_pipeline.sql): three nested layers over ARRAY JOINs of whole
-- tuples at resource, scope and span level, and the functions it read, renamed
-- spanledger_previous_* so that they live beside the current ones in one engine.
-- Kept as the "previous view" reference of bench/bench_normalize.py and
-- bench/references.py, rendered with the same placeholders as schema/900 (event
-- attributes without drop/redact patterns: the benches configure none).
CREATE OR REPLACE FUNCTION spanledger_previous_scalar_to_string ${on_cluster} AS (v) -> multiIf(
    tupleElement(v, 'string_value') IS NOT NULL, assumeNotNull(tupleElement(v, 'string_value')),
    tupleElement(v, 'int_value') IS NOT NULL, toString(assumeNotNull(tupleElement(v, 'int_value'))),
    tupleElement(v, 'double_value') IS NOT NULL, toString(assumeNotNull(tupleElement(v, 'double_value'))),
    tupleElement(v, 'bool_value') IS NOT NULL, if(assumeNotNull(tupleElement(v, 'bool_value')), 'true', 'false'),
    tupleElement(v, 'bytes_value') IS NOT NULL, base64Encode(assumeNotNull(tupleElement(v, 'bytes_value'))),
    '');

-- A scalar inside an array or kvlist, as JSON (what the OpenTelemetry Collector's
-- pcommon Value.AsString writes: strings quoted, bytes as base64 strings, no value as null).
CREATE OR REPLACE FUNCTION spanledger_previous_scalar_to_json ${on_cluster} AS (v) -> multiIf(
    tupleElement(v, 'string_value') IS NOT NULL, toJSONString(assumeNotNull(tupleElement(v, 'string_value'))),
    tupleElement(v, 'int_value') IS NOT NULL, toString(assumeNotNull(tupleElement(v, 'int_value'))),
    tupleElement(v, 'double_value') IS NOT NULL, if(isFinite(assumeNotNull(tupleElement(v, 'double_value'))),
        toString(assumeNotNull(tupleElement(v, 'double_value'))), 'null'),
    tupleElement(v, 'bool_value') IS NOT NULL, if(assumeNotNull(tupleElement(v, 'bool_value')), 'true', 'false'),
    tupleElement(v, 'bytes_value') IS NOT NULL, toJSONString(base64Encode(assumeNotNull(tupleElement(v, 'bytes_value')))),
    'null');

-- A value one level down: a scalar, or an array / kvlist of scalars (keys sorted, as Go's encoding/json does).
CREATE OR REPLACE FUNCTION spanledger_previous_nested_to_json ${on_cluster} AS (v) -> multiIf(
    notEmpty(tupleElement(tupleElement(v, 'array_value'), 'values')),
    concat('[', arrayStringConcat(arrayMap(x -> spanledger_previous_scalar_to_json(x),
        tupleElement(tupleElement(v, 'array_value'), 'values')), ','), ']'),
    notEmpty(tupleElement(tupleElement(v, 'kvlist_value'), 'values')),
    concat('{', arrayStringConcat(arrayMap(kv -> concat(toJSONString(tupleElement(kv, 'key')), ':',
        spanledger_previous_scalar_to_json(tupleElement(kv, 'value'))),
        arraySort(kv -> tupleElement(kv, 'key'), tupleElement(tupleElement(v, 'kvlist_value'), 'values'))), ','), '}'),
    spanledger_previous_scalar_to_json(v));

-- Scalars as their text; arrays and kvlists as JSON, as the OpenTelemetry Collector stores them.
CREATE OR REPLACE FUNCTION spanledger_previous_anyvalue_to_string ${on_cluster} AS (v) -> multiIf(
    notEmpty(tupleElement(tupleElement(v, 'array_value'), 'values')),
    concat('[', arrayStringConcat(arrayMap(x -> spanledger_previous_nested_to_json(x),
        tupleElement(tupleElement(v, 'array_value'), 'values')), ','), ']'),
    notEmpty(tupleElement(tupleElement(v, 'kvlist_value'), 'values')),
    concat('{', arrayStringConcat(arrayMap(kv -> concat(toJSONString(tupleElement(kv, 'key')), ':',
        spanledger_previous_nested_to_json(tupleElement(kv, 'value'))),
        arraySort(kv -> tupleElement(kv, 'key'), tupleElement(tupleElement(v, 'kvlist_value'), 'values'))), ','), '}'),
    spanledger_previous_scalar_to_string(v));

CREATE OR REPLACE FUNCTION spanledger_previous_attributes_to_map ${on_cluster} AS (attrs, max_count, max_length) -> mapFromArrays(
    arrayMap(a -> tupleElement(a, 'key'), arraySlice(attrs, 1, max_count)),
    arrayMap(a -> substringUTF8(spanledger_previous_anyvalue_to_string(tupleElement(a, 'value')), 1, max_length), arraySlice(attrs, 1, max_count)));

-- Three layers, read innermost first.  Each layer reads the columns of the one
-- inside it, so the attribute map and each value's text are computed once and
-- later layers refer to them by name.  The engine analyses this query at every
-- INSERT (every WAL segment): as one flat query whose WITH aliases expand into
-- every use, that took ~120 ms per segment; layered, ~70 ms, with the same rows.
CREATE MATERIALIZED VIEW ${database}.spanledger_flatten_mv ${on_cluster}
TO ${database}.spanledger_spans_ingest
AS WITH
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
FROM
(
    -- the attribute map, built once from each value's text
    SELECT *,
        mapFromArrays(attr_keys, arrayMap(t -> substringUTF8(t, 1, ${max_attribute_length}), attr_texts)) AS sa,
        toUInt32(attrs_over + arrayCount(t -> lengthUTF8(t) > ${max_attribute_length}, attr_texts)) AS TruncatedAttributes
    FROM
    (
        -- one row per span; every attribute value stringified once
        SELECT
            fromUnixTimestamp64Nano(toInt64(s.start_time_unix_nano)) AS Timestamp,
            lower(hex(s.trace_id)) AS TraceId,
            lower(hex(s.span_id)) AS SpanId,
            lower(hex(s.parent_span_id)) AS ParentSpanId,
            s.trace_state AS TraceState,
            s.name AS SpanName,
            ['Unspecified', 'Internal', 'Server', 'Client', 'Producer', 'Consumer'][least(greatest(s.kind, 0), 5) + 1] AS SpanKind,
            spanledger_previous_attributes_to_map(rs.resource.attributes, ${max_attributes}, ${max_attribute_length}) AS ra,
            ss.scope.name AS ScopeName,
            ss.scope.version AS ScopeVersion,
            arrayMap(a -> a.key, arraySlice(s.attributes, 1, ${max_attributes})) AS attr_keys,
            arrayMap(a -> spanledger_previous_anyvalue_to_string(a.value), arraySlice(s.attributes, 1, ${max_attributes})) AS attr_texts,
            greatest(length(s.attributes) - ${max_attributes}, 0) AS attrs_over,
            s.end_time_unix_nano - s.start_time_unix_nano AS Duration,
            ['Unset', 'Ok', 'Error'][least(greatest(s.status.code, 0), 2) + 1] AS StatusCode,
            s.status.message AS StatusMessage,
            arrayMap(e -> fromUnixTimestamp64Nano(toInt64(e.time_unix_nano)), arraySlice(s.events, 1, ${max_events})) AS `Events.Timestamp`,
            arrayMap(e -> e.name, arraySlice(s.events, 1, ${max_events})) AS `Events.Name`,
            arrayMap(e -> spanledger_previous_attributes_to_map(e.attributes, ${max_attributes}, ${max_attribute_length}), arraySlice(s.events, 1, ${max_events})) AS `Events.Attributes`,
            arrayMap(l -> lower(hex(l.trace_id)), arraySlice(s.links, 1, ${max_links})) AS `Links.TraceId`,
            arrayMap(l -> lower(hex(l.span_id)), arraySlice(s.links, 1, ${max_links})) AS `Links.SpanId`,
            arrayMap(l -> l.trace_state, arraySlice(s.links, 1, ${max_links})) AS `Links.TraceState`,
            arrayMap(l -> spanledger_previous_attributes_to_map(l.attributes, ${max_attributes}, ${max_attribute_length}),
                     arraySlice(s.links, 1, ${max_links})) AS `Links.Attributes`,
            tenant AS TenantId,
            toUInt32(greatest(length(s.events) - ${max_events}, 0)) AS TruncatedEvents
        FROM ${database}.spanledger_otlp_raw
        ARRAY JOIN resource_spans AS rs
        ARRAY JOIN rs.scope_spans AS ss
        ARRAY JOIN ss.spans AS s
    )
);
