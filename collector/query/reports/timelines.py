"""Timelines: what happened, in order, for one project, conversation, ticket or session.

Raw spans only (a timeline lists activities; rollups have none).  Each is
paged with a keyset cursor on its order -- (Timestamp, SpanId), or
(sequence, SpanId) for a conversation -- so a page never repeats or skips a
row when more arrive behind it.  The id is bound; the caller's filters narrow
further (``type=llm_call``, ``where=...``).
"""

from __future__ import annotations

from .base import CURSOR, ID, Output, ReportRequest, decode_cursor, encode_cursor, limit_param, page

COMMON = ("toString(Timestamp, {tz:String}) AS timestamp", "ActivityType AS activity_type", "SpanName AS name",
          "AgentName AS agent", "if(ActivityStatus != '', ActivityStatus, lower(StatusCode)) AS status",
          "Severity AS severity", "round(Duration / 1e6, 3) AS duration_ms", "Model AS model",
          "InputTokens AS input_tokens", "OutputTokens AS output_tokens",
          "toDecimal128(TotalCost, 12) AS usd", "CostSource AS cost_source",
          "TraceId AS trace_id", "SpanId AS span_id", "ParentSpanId AS parent_span_id")
TIME_ORDER = "toUnixTimestamp64Nano(Timestamp) AS cursor_ns"


def _timeline(req: ReportRequest, id_column: str, extra: tuple[str, ...]) -> Output:
    condition = req.raw_condition()
    limit = req.params["limit"]
    kind = f"timeline:{id_column}"
    parameters = {**condition.parameters, "id": req.params["id"], "row_limit": limit + 1, "tz": req.time_zone}
    after = decode_cursor(req.params.get("cursor"), kind, 2, numeric_first=True)
    where = f"{id_column} = {{id:String}} AND ({condition.sql})"
    if after:
        where += " AND (toUnixTimestamp64Nano(Timestamp), SpanId) > ({c_ns:Int64}, {c_span:String})"
        parameters.update(c_ns=int(after[0]), c_span=after[1])
    sql = (f"SELECT {', '.join(COMMON + extra)}, {TIME_ORDER} FROM {req.tables.spans} WHERE {where} "
           "ORDER BY Timestamp, SpanId LIMIT {row_limit:UInt32}")
    names, rows = req.execute(sql, parameters)
    ns, span = names.index("cursor_ns"), names.index("span_id")
    rows, cursor = page(rows, limit, lambda row: encode_cursor(kind, [row[ns], row[span]]))
    return Output(names[:-1], [row[:-1] for row in rows], req.tables.spans, next_cursor=cursor)


def project_timeline(req: ReportRequest) -> Output:
    return _timeline(req, "ProjectId", (
        "if(SpanAttributes['spanledger.project.action'] != '', SpanAttributes['spanledger.project.action'], "
        "ActivityType) AS action",
        "SpanAttributes['spanledger.project.action_details'] AS details",
        "UserId AS user", "Environment AS environment"))


def ticket_history(req: ReportRequest) -> Output:
    return _timeline(req, "TicketId", (
        "SpanAttributes['spanledger.ticket.operation'] AS operation",
        "SpanAttributes['spanledger.ticket.changed_fields'] AS changed_fields",
        "SpanAttributes['spanledger.ticket.assignee'] AS assignee",
        "SpanAttributes['spanledger.activity.description'] AS description"))


def session_events(req: ReportRequest) -> Output:
    return _timeline(req, "SessionId", (
        "UserId AS user", "ConversationId AS conversation",
        "SpanAttributes['spanledger.event.type'] AS event_type",
        "SpanAttributes['spanledger.event.category'] AS event_category"))


SEQUENCE = "toUInt64OrZero(SpanAttributes['spanledger.conversation.sequence'])"


def conversation(req: ReportRequest) -> Output:
    """The conversation's activities in sequence order (user message -> tool call -> tool response -> answer)."""
    condition = req.raw_condition()
    limit = req.params["limit"]
    parameters = {**condition.parameters, "id": req.params["id"], "row_limit": limit + 1, "tz": req.time_zone}
    where = (f"ConversationId = {{id:String}} AND mapContains(SpanAttributes, 'spanledger.conversation.sequence') "
             f"AND ({condition.sql})")
    after = decode_cursor(req.params.get("cursor"), "conversation", 2, numeric_first=True)
    if after:
        where += f" AND ({SEQUENCE}, SpanId) > ({{c_seq:UInt64}}, {{c_span:String}})"
        parameters.update(c_seq=int(after[0]), c_span=after[1])
    sql = (f"SELECT {SEQUENCE} AS sequence, SpanAttributes['spanledger.conversation.activity'] AS step, "
           "toString(Timestamp, {tz:String}) AS timestamp, SpanName AS name, SessionId AS session, UserId AS user, "
           "SpanAttributes['spanledger.mcp.server'] AS mcp_server, ToolName AS tool, "
           "if(ActivityStatus != '', ActivityStatus, lower(StatusCode)) AS status, "
           "SpanAttributes['spanledger.conversation.message'] AS message, "
           "toUInt64OrZero(SpanAttributes['spanledger.conversation.tokens']) AS tokens, "
           "round(Duration / 1e6, 3) AS duration_ms, TraceId AS trace_id, SpanId AS span_id "
           f"FROM {req.tables.spans} WHERE {where} ORDER BY sequence, SpanId LIMIT {{row_limit:UInt32}}")
    names, rows = req.execute(sql, parameters)
    rows, cursor = page(rows, limit, lambda row: encode_cursor("conversation", [row[0], row[-1]]))
    return Output(names, rows, req.tables.spans, next_cursor=cursor)


TIMELINE_PARAMS = (ID, limit_param(100), CURSOR)
