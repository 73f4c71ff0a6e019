"""Exports: activities as CSV or JSON lines, and spans as OTLP/JSON, streamed block by block.

Everything reads through ``run_query_stream`` (tenant scoping, the gateway's
limits) with the caller's filters compiled by ``filters.build_condition``, so
an export never holds more than one block of rows.  The OTLP export rebuilds
each span from the OpenTelemetry Collector layout of ``otel_traces``; a body
it writes is accepted back by ``POST /v1/traces`` (attribute values travel as
strings, because the table keeps them as strings).
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import itertools
import json
from collections.abc import Iterator, Mapping

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ..ingest.otlp_json import protobuf_to_otlp_json
from .filters import build_condition

FORMATS = ("csv", "jsonl", "otlp")

# name in the export -> column expression (one row per activity)
ACTIVITY_COLUMNS: dict[str, str] = {
    "timestamp": "Timestamp", "trace_id": "TraceId", "span_id": "SpanId", "parent_span_id": "ParentSpanId",
    "name": "SpanName", "kind": "SpanKind", "service": "ServiceName", "type": "ActivityType",
    "operation": "Operation", "status": "if(ActivityStatus != '', ActivityStatus, lower(StatusCode))",
    "status_message": "StatusMessage", "severity": "Severity", "agent": "AgentName", "agent_id": "AgentId",
    "tool": "ToolName", "provider": "Provider", "model": "Model", "user": "UserId", "project": "ProjectId",
    "session": "SessionId", "conversation": "ConversationId", "ticket": "TicketId", "environment": "Environment",
    "duration_ms": "Duration / 1e6", "input_tokens": "InputTokens", "output_tokens": "OutputTokens",
    "cache_read_tokens": "CacheReadTokens", "reasoning_tokens": "ReasoningTokens",
    "cost_usd": "toString(TotalCost)", "cost_source": "CostSource",
}
_OPERATOR_COLUMNS = {"tenant": "TenantId"}
_SPAN_COLUMNS = ("Timestamp", "TraceId", "SpanId", "ParentSpanId", "TraceState", "SpanName", "SpanKind",
                 "ServiceName", "ResourceAttributes", "ScopeName", "ScopeVersion", "SpanAttributes", "Duration",
                 "StatusCode", "StatusMessage", "Events.Timestamp", "Events.Name", "Events.Attributes",
                 "Links.TraceId", "Links.SpanId", "Links.TraceState", "Links.Attributes")
# timestamps leave the engine as integers: a Python datetime would cut them to microseconds
_NANOSECOND_SELECT = {"Timestamp": "toUnixTimestamp64Nano(Timestamp) AS StartNanos",
                      "Events.Timestamp": "arrayMap(t -> toUnixTimestamp64Nano(t), `Events.Timestamp`) AS EventTimes"}
_KINDS = {"Unspecified": 0, "Internal": 1, "Server": 2, "Client": 3, "Producer": 4, "Consumer": 5}
_STATUS = {"Unset": 0, "Ok": 1, "Error": 2}


def _table(collector) -> str:
    options = collector.store().options if collector.store() is not None else None
    if options is None:
        from ..store import StoreUnavailable

        raise StoreUnavailable("the store is not reachable yet; retry shortly")
    return f"{options.database}.{options.traces_table}"


def export_query(collector, params: Mapping, *, operator: bool, fmt: str) -> tuple[list[str], str, dict]:
    """(column names, SQL, parameters) for an export of the spans ``params`` select."""
    condition = build_condition(params, operator=operator)
    if fmt == "otlp":
        columns = list(_SPAN_COLUMNS)
        select = ", ".join(_NANOSECOND_SELECT.get(c, f"`{c}`") for c in columns)
    else:
        chosen = {**ACTIVITY_COLUMNS, **(_OPERATOR_COLUMNS if operator else {})}
        columns = list(chosen)
        select = ", ".join(f"{expr} AS {name}" for name, expr in chosen.items())
    sql = (f"SELECT {select} FROM {_table(collector)} WHERE {condition.sql} "
           "ORDER BY Timestamp, TraceId, SpanId")
    return columns, sql, condition.parameters


def _cell(value):
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def csv_chunks(columns: list[str], blocks: Iterator[list]) -> Iterator[bytes]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    yield out.getvalue().encode()
    for block in blocks:
        out.seek(0)
        out.truncate()
        writer.writerows([_cell(v) for v in row] for row in block)
        yield out.getvalue().encode()


def jsonl_chunks(columns: list[str], blocks: Iterator[list]) -> Iterator[bytes]:
    for block in blocks:
        yield b"".join(json.dumps(dict(zip(columns, map(_cell, row))), default=str).encode() + b"\n"
                       for row in block)


def _attributes(target, mapping: Mapping[str, str]) -> None:
    for key, value in mapping.items():
        target.add(key=key).value.string_value = value


def rows_to_request(columns: list[str], block: list) -> ExportTraceServiceRequest:
    """One ExportTraceServiceRequest for a block of span rows (grouped by resource and scope)."""
    request = ExportTraceServiceRequest()
    resources: dict[tuple, object] = {}
    scopes: dict[tuple, object] = {}
    for row in block:
        r = dict(zip(columns, row))
        resource_key = tuple(sorted(r["ResourceAttributes"].items()))
        resource_spans = resources.get(resource_key)
        if resource_spans is None:
            resource_spans = resources[resource_key] = request.resource_spans.add()
            _attributes(resource_spans.resource.attributes, r["ResourceAttributes"])
        scope_key = (resource_key, r["ScopeName"], r["ScopeVersion"])
        scope_spans = scopes.get(scope_key)
        if scope_spans is None:
            scope_spans = scopes[scope_key] = resource_spans.scope_spans.add()
            scope_spans.scope.name, scope_spans.scope.version = r["ScopeName"], r["ScopeVersion"]
        span = scope_spans.spans.add()
        span.trace_id, span.span_id = bytes.fromhex(r["TraceId"]), bytes.fromhex(r["SpanId"])
        span.parent_span_id = bytes.fromhex(r["ParentSpanId"]) if r["ParentSpanId"] else b""
        span.trace_state, span.name = r["TraceState"], r["SpanName"]
        span.kind = _KINDS.get(r["SpanKind"], 0)
        span.start_time_unix_nano = int(r["Timestamp"])
        span.end_time_unix_nano = span.start_time_unix_nano + int(r["Duration"])
        _attributes(span.attributes, r["SpanAttributes"])
        span.status.code, span.status.message = _STATUS.get(r["StatusCode"], 0), r["StatusMessage"]
        for ts, name, attrs in zip(r["Events.Timestamp"], r["Events.Name"], r["Events.Attributes"]):
            event = span.events.add(time_unix_nano=int(ts), name=name)
            _attributes(event.attributes, attrs)
        for trace_id, span_id, state, attrs in zip(r["Links.TraceId"], r["Links.SpanId"], r["Links.TraceState"],
                                                   r["Links.Attributes"]):
            link = span.links.add(trace_id=bytes.fromhex(trace_id), span_id=bytes.fromhex(span_id), trace_state=state)
            _attributes(link.attributes, attrs)
    return request


def otlp_chunks(columns: list[str], blocks: Iterator[list]) -> Iterator[bytes]:
    """One OTLP/JSON ExportTraceServiceRequest per line (per block): each line can be POSTed to /v1/traces."""
    for block in blocks:
        yield protobuf_to_otlp_json(rows_to_request(columns, block)) + b"\n"


def export_chunks(collector, params: Mapping, *, tenant: str | None, fmt: str,
                  block_rows: int = 10_000) -> Iterator[bytes]:
    """The whole export as byte chunks; the query is compiled (and refused) before the first chunk."""
    from . import run_query_stream

    if fmt not in FORMATS:
        from .filters import FilterError

        raise FilterError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    columns, sql, parameters = export_query(collector, params, operator=tenant is None, fmt=fmt)
    blocks = run_query_stream(collector, sql, parameters, tenant=tenant, block_rows=block_rows)
    first = next(blocks, None)  # a refused query or a store that is down fails here, before any byte is sent
    writer = {"csv": csv_chunks, "jsonl": jsonl_chunks, "otlp": otlp_chunks}[fmt]
    return writer(columns, itertools.chain([first] if first is not None else [], blocks))
