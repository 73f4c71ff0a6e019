"""Product analytics (seed 004): what users did, counted the way a product team reads it.

Over product events (``spanledger.product_event``: ActivityType
'product_event', with event type, category and action attributes).  The
summary is one grouped scan -- counts per (day in the report's zone,
category, type, action) -- folded here into totals; ties for the most active
day go to the earliest day, for the most common action to the first in
alphabetical order.
"""

from __future__ import annotations

from collections import Counter

from ...errors import ReportError
from .base import (CURSOR, MAX_GROUP_ROWS, Output, ReportRequest, decode_cursor, encode_cursor,
                   limit_param, page)

PRODUCT = "ActivityType = 'product_event'"


def analytics_summary(req: ReportRequest) -> Output:
    condition = req.raw_condition()
    sql = ("SELECT toString(toDate(Timestamp, {tz:String})) AS day, "
           "SpanAttributes['spanledger.event.category'] AS category, SpanAttributes['spanledger.event.type'] AS type, "
           "SpanAttributes['spanledger.event.action'] AS action, count() AS events "
           f"FROM {req.tables.spans} WHERE {PRODUCT} AND ({condition.sql}) GROUP BY day, category, type, action "
           "LIMIT {row_limit:UInt32}")
    _, rows = req.execute(sql, {**condition.parameters, "tz": req.time_zone, "row_limit": MAX_GROUP_ROWS * 10 + 1})
    if len(rows) > MAX_GROUP_ROWS * 10:
        raise ReportError("analytics_summary: too many distinct event types and days; narrow since/until or filter")
    days, categories, types, actions = Counter(), Counter(), Counter(), Counter()
    for day, category, type_, action, events in rows:
        days[day] += events
        categories[category] += events
        types[type_] += events
        actions[action] += events
    columns = ["total_events", "events_by_category", "events_by_type", "events_by_day", "most_active_day",
               "most_common_action"]
    row = [sum(days.values()), _ranked(categories), _ranked(types), dict(sorted(days.items())),
           _first(days), _first(actions)]
    return Output(columns, [row], req.tables.spans)


def _ranked(counts: Counter) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _first(counts: Counter) -> str | None:
    if not counts:
        return None
    return min(counts.items(), key=lambda item: (-item[1], item[0]))[0]


def sessions(req: ReportRequest) -> Output:
    """Sessions, most recently active first, with what happened in each."""
    condition = req.raw_condition()
    limit = req.params["limit"]
    parameters = {**condition.parameters, "row_limit": limit + 1, "tz": req.time_zone}
    having = ""
    after = decode_cursor(req.params.get("cursor"), "sessions", 2, numeric_first=True)
    if after:
        having = (" HAVING (toUnixTimestamp64Nano(max(Timestamp)) < {c_ns:Int64}) OR "
                  "(toUnixTimestamp64Nano(max(Timestamp)) = {c_ns:Int64} AND session > {c_key:String})")
        parameters.update(c_ns=int(after[0]), c_key=after[1])
    sql = ("SELECT SessionId AS session, any(UserId) AS user, count() AS events, "
           f"countIf({PRODUCT}) AS product_events, uniqExact(ConversationId) - (min(ConversationId) = '') AS conversations, "
           "toString(min(Timestamp), {tz:String}) AS first_seen, toString(max(Timestamp), {tz:String}) AS last_seen, "
           "round((toUnixTimestamp64Nano(max(Timestamp)) - toUnixTimestamp64Nano(min(Timestamp))) / 1e9, 3) AS duration_s, "
           "sum(toDecimal128(TotalCost, 12)) AS usd, toUnixTimestamp64Nano(max(Timestamp)) AS cursor_ns "
           f"FROM {req.tables.spans} WHERE SessionId != '' AND ({condition.sql}) GROUP BY session{having} "
           "ORDER BY cursor_ns DESC, session ASC LIMIT {row_limit:UInt32}")
    names, rows = req.execute(sql, parameters)
    rows, cursor = page(rows, limit, lambda row: encode_cursor("sessions", [row[-1], row[0]]))
    return Output(names[:-1], [row[:-1] for row in rows], req.tables.spans, next_cursor=cursor)


SUMMARY_PARAMS = ()
SESSIONS_PARAMS = (limit_param(50), CURSOR)
