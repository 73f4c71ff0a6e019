"""Agent statistics (what the orchestrator dashboards of seed 003 show), from raw spans.

Durations are exact quantiles (``quantileExactInclusive``: linear
interpolation between the two nearest values, the same definition as
Python's ``statistics.quantiles(method='inclusive')`` and numpy's default),
so a p99 is reproducible, not a sample.

``success_rate`` is completed agent runs / agent runs that finished
(completed, failed, conflict or paused); runs still in progress do not count.
"""

from __future__ import annotations

from .base import (CURSOR, Output, Param, ReportRequest, decode_cursor, encode_cursor, limit_param, page,
                   without_column)

# One quantileExactInclusive per level rather than quantilesExactInclusive(...): the gateway's parser
# (sqlglot) does not know the plural as a parametric aggregate and would misread it.
QUANTILES = ("[quantileExactInclusive(0.5)(Duration / 1e6), quantileExactInclusive(0.95)(Duration / 1e6), "
             "quantileExactInclusive(0.99)(Duration / 1e6)]")
FINISHED = "('completed', 'failed', 'conflict', 'paused')"
IS_ERROR = "(StatusCode = 'Error' OR ActivityStatus = 'failed' OR Severity IN ('error', 'critical'))"


def _limited(req: ReportRequest, sql: str, condition) -> tuple[list[str], list[list]]:
    """Run ``sql`` (which ends in ``LIMIT {row_limit:UInt32}``) with the report's filter and ``limit``."""
    return req.execute(sql, {**condition.parameters, "row_limit": req.params["limit"]})


def _limited_without_q(req: ReportRequest, sql: str, condition) -> Output:
    """The same, less the quantile array ``q`` the p50/p95/p99 columns were read from."""
    return Output(*without_column(*_limited(req, sql, condition), "q"), req.tables.spans)


def agent_stats(req: ReportRequest) -> Output:
    condition = req.raw_condition()
    sql = (
        "SELECT AgentName AS agent, count() AS events, countIf(ActivityType = 'agent_run') AS runs, "
        "countIf(ActivityType = 'agent_run' AND ActivityStatus = 'completed') AS completed, "
        "countIf(ActivityType = 'agent_run' AND ActivityStatus = 'failed') AS failed, "
        f"if(countIf(ActivityType = 'agent_run' AND ActivityStatus IN {FINISHED}) = 0, NULL, "
        f"round(completed / countIf(ActivityType = 'agent_run' AND ActivityStatus IN {FINISHED}), 6)) AS success_rate, "
        f"countIf({IS_ERROR}) AS errors, "
        "countIf(ActivityStatus = 'conflict' AND ActivityType != 'agent_run') AS conflicts, "
        "countIf(ActivityStatus = 'paused' AND ActivityType != 'agent_run') AS pauses, "
        "[" + ", ".join(f"quantileExactInclusiveIf({level})(Duration / 1e6, ActivityType = 'agent_run')"
                        for level in ("0.5", "0.95", "0.99")) + "] AS q, "
        "if(runs = 0, NULL, round(q[1], 3)) AS run_p50_ms, if(runs = 0, NULL, round(q[2], 3)) AS run_p95_ms, "
        "if(runs = 0, NULL, round(q[3], 3)) AS run_p99_ms, "
        "sum(toDecimal128(TotalCost, 12)) AS usd "
        f"FROM {req.tables.spans} WHERE AgentName != '' AND ({condition.sql}) "
        "GROUP BY agent ORDER BY events DESC, agent LIMIT {row_limit:UInt32}")
    return _limited_without_q(req, sql, condition)


def activity_durations(req: ReportRequest) -> Output:
    """p50/p95/p99 duration per agent and activity type (agent '' is activity outside any agent)."""
    condition = req.raw_condition()
    sql = (f"SELECT AgentName AS agent, ActivityType AS activity_type, count() AS events, "
           f"countIf({IS_ERROR}) AS errors, {QUANTILES} AS q, round(q[1], 3) AS p50_ms, round(q[2], 3) AS p95_ms, "
           "round(q[3], 3) AS p99_ms, round(max(Duration) / 1e6, 3) AS max_ms "
           f"FROM {req.tables.spans} WHERE {condition.sql} GROUP BY agent, activity_type "
           "ORDER BY agent, events DESC, activity_type LIMIT {row_limit:UInt32}")
    return _limited_without_q(req, sql, condition)


def events_by_type(req: ReportRequest) -> Output:
    condition = req.raw_condition()
    by_agent = req.params["per_agent"] == "yes"
    keys = ["AgentName AS agent"] if by_agent else []
    group = ["agent"] if by_agent else []
    sql = (f"SELECT {', '.join(keys + ['ActivityType AS activity_type', 'Severity AS severity'])}, count() AS events, "
           f"countIf({IS_ERROR}) AS errors FROM {req.tables.spans} WHERE {condition.sql} "
           f"GROUP BY {', '.join(group + ['activity_type', 'severity'])} "
           f"ORDER BY {', '.join(group + ['events DESC', 'activity_type', 'severity'])} LIMIT {{row_limit:UInt32}}")
    return Output(*_limited(req, sql, condition), req.tables.spans)


def problems(req: ReportRequest) -> Output:
    """Errors, conflicts and pauses that need a human, newest first."""
    condition = req.raw_condition()
    limit = req.params["limit"]
    parameters = {**condition.parameters, "row_limit": limit + 1, "tz": req.time_zone}
    where = f"({IS_ERROR} OR ActivityStatus IN ('conflict', 'paused')) AND ({condition.sql})"
    after = decode_cursor(req.params.get("cursor"), "problems", 2, numeric_first=True)
    if after:
        where += " AND (toUnixTimestamp64Nano(Timestamp), SpanId) < ({c_ns:Int64}, {c_span:String})"
        parameters.update(c_ns=int(after[0]), c_span=after[1])
    sql = ("SELECT toString(Timestamp, {tz:String}) AS timestamp, AgentName AS agent, ActivityType AS activity_type, "
           "SpanName AS name, if(ActivityStatus != '', ActivityStatus, lower(StatusCode)) AS status, "
           "Severity AS severity, StatusMessage AS message, "
           "SpanAttributes['spanledger.conflict.reason'] AS conflict_reason, TraceId AS trace_id, "
           "SpanId AS span_id, toUnixTimestamp64Nano(Timestamp) AS cursor_ns "
           f"FROM {req.tables.spans} WHERE {where} ORDER BY Timestamp DESC, SpanId DESC LIMIT {{row_limit:UInt32}}")
    names, rows = req.execute(sql, parameters)
    rows, cursor = page(rows, limit, lambda row: encode_cursor("problems", [row[-1], row[-2]]))
    return Output(names[:-1], [row[:-1] for row in rows], req.tables.spans, next_cursor=cursor)


STATS_PARAMS = (limit_param(1000),)
EVENTS_PARAMS = (Param("per_agent", "enum", "split the counts per agent", choices=("no", "yes"), default="no"),
                 limit_param(1000))
PROBLEMS_PARAMS = (limit_param(50), CURSOR)
