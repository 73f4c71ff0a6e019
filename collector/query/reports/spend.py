"""Spend reports: what it cost, in what, and who spent it.

``spend`` groups by any of the keys below per hour, day or month; ``top``
ranks one high-cardinality key (users, sessions, traces, tickets...) by cost
or tokens with keyset pagination.  Both read the hourly rollup when it can
answer exactly (see ReportRequest.choose_tier) and raw spans otherwise.

Unpriced calls -- an LLM call whose model has no known price
(CostSource 'unknown_model') or that carries a model but no cost at all
(CostSource '') -- are counted apart (``unpriced_calls``, ``unpriced_tokens``);
their cost is unknown, never $0, and is not in ``usd``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from ...errors import ReportError
from .base import (BUCKETS, CURSOR, MAX_GROUP_ROWS, SOURCE, Output, Param, ReportRequest,
                   bucket_expression, decode_cursor, encode_cursor, is_digits, limit_param, page)
from .rates import saving_expression, saving_rates

# group_by / key name -> spans column
GROUP_KEYS = {"model": "Model", "provider": "Provider", "agent": "AgentName", "service": "ServiceName",
              "project": "ProjectId", "user": "UserId", "environment": "Environment", "session": "SessionId",
              "ticket": "TicketId", "conversation": "ConversationId", "trace": "TraceId"}
SPEND_GROUPS = ("model", "provider", "agent", "service", "project", "user", "environment", "session", "ticket")
TOP_KEYS = ("user", "session", "trace", "ticket", "project", "agent", "model", "conversation")
UNPRICED = "CostSource IN ('unknown_model', '')"


def _per_model(rollup: bool) -> list[str]:
    """The sums per group and model (inner query), from the rollup's columns or from raw spans."""
    if rollup:
        calls = ["sum(LlmCalls) AS i_calls", f"sumIf(LlmCalls, {UNPRICED}) AS i_unpriced",
                 f"sumIf(InputTokens + OutputTokens, {UNPRICED} AND LlmCalls > 0) AS i_unpriced_tokens",
                 "sum(TotalCost) AS i_usd"]
    else:
        calls = ["countIf(Model != '') AS i_calls", f"countIf(Model != '' AND {UNPRICED}) AS i_unpriced",
                 f"sumIf(InputTokens + OutputTokens, Model != '' AND {UNPRICED}) AS i_unpriced_tokens",
                 "sum(toDecimal128(TotalCost, 12)) AS i_usd"]
    return calls + ["sum(InputTokens) AS i_in", "sum(OutputTokens) AS i_out", "sum(CacheReadTokens) AS i_cache",
                    "sum(CacheWriteTokens) AS i_cache_write", "sum(ReasoningTokens) AS i_reasoning"]


def _measures(saving_sql: str) -> list[str]:
    """The report's columns, summed over a group's models (outer query)."""
    return [
        "sum(i_calls) AS llm_calls", "sum(i_unpriced) AS unpriced_calls", "sum(i_unpriced_tokens) AS unpriced_tokens",
        "sum(i_usd) AS usd", "sum(i_in) AS input_tokens", "sum(i_out) AS output_tokens",
        "sum(i_cache) AS cache_read_tokens", "sum(i_cache_write) AS cache_write_tokens",
        "sum(i_reasoning) AS reasoning_tokens",
        "if(input_tokens = 0, NULL, round(cache_read_tokens / input_tokens, 6)) AS cache_hit_ratio",
        f"{saving_sql} AS cache_savings_usd",
        "if(output_tokens = 0, NULL, round(reasoning_tokens / output_tokens, 6)) AS reasoning_share",
    ]


def _rates(req: ReportRequest, table: str, condition, notes: list[str]):
    """Saving rates of the models with cache reads in this report's scope (one small query first)."""
    if req.price_book is None:
        notes.append("cache_savings_usd is null: no price book here")
        return None
    _, pairs = req.execute(f"SELECT DISTINCT Provider, lower(Model) FROM {table} WHERE ({condition.sql}) "
                           "AND CacheReadTokens > 0 AND Model != '' LIMIT 10000", dict(condition.parameters))
    return saving_rates(req.price_book, [(str(p), str(m)) for p, m in pairs])


def spend(req: ReportRequest) -> Output:
    keys = tuple(k for k in req.params["group_by"] if k != "none")
    columns = {GROUP_KEYS[k] for k in keys}
    rollup, condition, why_raw = req.choose_tier(columns)
    notes = [f"read raw spans because {why_raw}"] if why_raw else []
    table = req.tables.usage_hourly if rollup else req.tables.spans
    # the saving rate is looked up once per group and model (inner query), not once per span
    saving_sql, parameters = saving_expression(_rates(req, table, condition, notes), "i_cache",
                                               provider="sv_provider", model="sv_model")
    bucket = bucket_expression(req.params["bucket"], "Hour" if rollup else "Timestamp")
    select = ([f"{bucket} AS bucket"] if bucket else []) + [f"{GROUP_KEYS[k]} AS {k}" for k in keys]
    group = (["bucket"] if bucket else []) + list(keys)
    limit = req.params["limit"]
    inner = (f"SELECT {', '.join(select + ['Provider AS sv_provider', 'lower(Model) AS sv_model'] + _per_model(rollup))} "
             f"FROM {table} WHERE {condition.sql} GROUP BY {', '.join(group + ['sv_provider', 'sv_model'])}")
    sql = (f"SELECT {', '.join(group + _measures(saving_sql))} FROM ({inner})"
           + (f" GROUP BY {', '.join(group)}" if group else "")
           # groups with no model activity (agent runs, tool calls) are left out, not shown as zeros
           + " HAVING llm_calls > 0 OR usd != 0 OR input_tokens + output_tokens > 0"
           + " ORDER BY " + ", ".join((["bucket"] if bucket else []) + ["usd DESC"] + list(keys))
           + " LIMIT {row_limit:UInt32}")
    names, rows = req.execute(sql, {**condition.parameters, **parameters, "tz": req.time_zone, "row_limit": limit + 1})
    truncated = len(rows) > limit
    if truncated:
        notes.append(f"more than {limit} rows: raise limit (up to {MAX_GROUP_ROWS}), narrow the range, or use top")
    return Output(names, rows[:limit], table, truncated=truncated, notes=notes)


def top(req: ReportRequest) -> Output:
    key, by, limit = req.params["key"], req.params["by"], req.params["limit"]
    column = GROUP_KEYS[key]
    rollup, condition, why_raw = req.choose_tier({column})
    notes = [f"read raw spans because {why_raw}"] if why_raw else []
    table = req.tables.usage_hourly if rollup else req.tables.spans
    value = ("sum(TotalCost)" if rollup else "sum(toDecimal128(TotalCost, 12))") if by == "cost" \
        else "sum(InputTokens + OutputTokens)"
    value_type = "Decimal(38, 12)" if by == "cost" else "UInt64"
    parameters = dict(condition.parameters)
    having = ""
    after = decode_cursor(req.params.get("cursor"), f"top:{key}:{by}", 2)
    if after:
        parameters.update(cv=_cursor_value(after[0], by), ck=after[1])
        having = f" HAVING value < {{cv:{value_type}}} OR (value = {{cv:{value_type}}} AND {key} > {{ck:String}})"
    spans = "sum(Spans)" if rollup else "count()"
    calls = "sum(LlmCalls)" if rollup else "countIf(Model != '')"
    unpriced = f"sumIf(LlmCalls, {UNPRICED})" if rollup else f"countIf(Model != '' AND {UNPRICED})"
    usd = "sum(TotalCost)" if rollup else "sum(toDecimal128(TotalCost, 12))"
    sql = (f"SELECT {column} AS {key}, {value} AS value, {usd} AS usd, sum(InputTokens + OutputTokens) AS tokens, "
           f"{calls} AS llm_calls, {unpriced} AS unpriced_calls, {spans} AS spans "
           f"FROM {table} WHERE ({condition.sql}) AND {column} != '' GROUP BY {key}{having} "
           f"ORDER BY value DESC, {key} ASC LIMIT {{row_limit:UInt32}}")
    names, rows = req.execute(sql, {**parameters, "row_limit": limit + 1})
    rows, cursor = page(rows, limit, lambda row: encode_cursor(f"top:{key}:{by}", [row[1], row[0]]))
    return Output(names, rows, table, next_cursor=cursor, notes=notes)


def _cursor_value(text: str, by: str) -> str:
    """The ranking value a cursor carries, as exact text the engine parses (finite, in range), or ReportError."""
    try:
        if by == "tokens":
            if not is_digits(text, 20):
                raise ValueError
            return text
        value = Decimal(text)
        if not value.is_finite() or abs(value) >= Decimal(10) ** 26:
            raise ValueError
        return format(value, "f")
    except (InvalidOperation, ValueError):
        raise ReportError("cursor: damaged; pass next_cursor from the previous page unchanged") from None


SPEND_PARAMS = (
    Param("group_by", "list", "keys to group by, comma-separated (none: one total)", choices=SPEND_GROUPS + ("none",),
          default=("model",)),
    Param("bucket", "enum", "time bucket in the report's time zone", choices=BUCKETS, default="day"),
    limit_param(1000, MAX_GROUP_ROWS), SOURCE,
)
TOP_PARAMS = (
    Param("key", "enum", "what to rank", choices=TOP_KEYS, default="user"),
    Param("by", "enum", "rank by cost (USD) or tokens (input + output)", choices=("cost", "tokens"), default="cost"),
    limit_param(20), CURSOR, SOURCE,
)
