"""The activity API's reads: a filtered, keyset-paginated listing, one activity (with its chain), one trace as a tree.

Every read goes through ``run_query`` with the caller's tenant, with values
bound by the engine.  Two things here are about spans rather than SQL:

* **Pagination is keyset on (Timestamp, SpanId), newest first.**  A page
  ends at a key; the next page reads strictly below it.  Spans that arrive
  meanwhile with newer timestamps are above every cursor and never shift a
  page; late spans with old timestamps land below the cursor and are met when
  the pages reach them.  Nothing is repeated, because keys strictly decrease.
  The cursor is signed (HMAC) and bound to the query's filters and tenant, so
  a tampered or transplanted cursor is refused.
* **An activity written twice with one span id** (started, then completed:
  ``PUT /v1/activities/{span_id}``) is read once: the completed version wins
  (a final status over started/in_progress, then the longer duration).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import functools
import hashlib
import hmac
import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SpanledgerError
from . import run_query
from ..store.retention import CONTENT_PATTERN
from .filters import FIELDS, build_condition

MAX_LIMIT = 1000
DEFAULT_LIMIT = 50
MAX_TRACE_SPANS = 10_000
HEX16 = re.compile(r"^[0-9a-f]{16}$")
HEX32 = re.compile(r"^[0-9a-f]{32}$")
OPEN_STATUSES = ("started", "in_progress")

# The listing's fields: API name -> column expression of the spans table.
SUMMARY: dict[str, str] = {
    "trace_id": "TraceId", "span_id": "SpanId", "parent_span_id": "ParentSpanId", "name": "SpanName",
    "type": "ActivityType", "agent": "AgentName", "service": "ServiceName", "operation": "Operation",
    "model": "Model", "provider": "Provider", "start_ns": "toUnixTimestamp64Nano(Timestamp)",
    "duration_ns": "Duration", "status": FIELDS["status"].column, "severity": "Severity",
    "input_tokens": "InputTokens", "output_tokens": "OutputTokens", "cache_read_tokens": "CacheReadTokens",
    "cache_write_tokens": "CacheWriteTokens", "reasoning_tokens": "ReasoningTokens",
    "cost_usd": "toString(TotalCost)", "cost_source": "CostSource", "user_id": "UserId", "session_id": "SessionId",
    "project_id": "ProjectId", "ticket_id": "TicketId", "conversation_id": "ConversationId",
    "environment": "Environment", "tenant": "TenantId",
}
DETAIL: dict[str, str] = {
    "span_kind": "SpanKind", "status_message": "StatusMessage", "scope": "ScopeName",
    "attributes": "SpanAttributes", "resource": "ResourceAttributes",
    "event_times": "arrayMap(t -> toUnixTimestamp64Nano(t), `Events.Timestamp`)", "event_names": "`Events.Name`",
    "event_attributes": "`Events.Attributes`", "link_trace_ids": "`Links.TraceId`",
    "link_span_ids": "`Links.SpanId`", "link_attributes": "`Links.Attributes`",
    "truncated_attributes": "TruncatedAttributes", "truncated_events": "TruncatedEvents",
}
# Captured content: attributes that hold prompts, outputs, tool arguments and results.
CONTENT_KEYS = re.compile(CONTENT_PATTERN)
# Prefer the completed version of a span written twice (started, then completed).
PREFERENCE = f"(ActivityStatus IN {OPEN_STATUSES!r}) ASC, Duration DESC"


class CursorError(SpanledgerError):
    """A cursor that was not issued by this collector for this query (HTTP 400)."""


class NotFound(SpanledgerError):
    """No such activity or trace for this caller (HTTP 404)."""


@dataclass(frozen=True)
class CursorSigner:
    """Signs keyset positions so a client can hold them but not forge or transplant them."""

    key: bytes

    @staticmethod
    def scope(params: Mapping[str, list[str]], tenant: str | None, detailed: bool) -> str:
        """What a cursor is bound to: the caller's tenant and the filters (not the page size)."""
        relevant = {k: sorted(v) for k, v in sorted(params.items()) if k not in ("cursor", "limit")}
        return hashlib.sha256(json.dumps([tenant, relevant, detailed]).encode()).hexdigest()[:16]

    def encode(self, start_ns: int, span_id: str, scope: str) -> str:
        body = json.dumps([start_ns, span_id, scope], separators=(",", ":")).encode()
        mac = hmac.new(self.key, body, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(body + mac).decode().rstrip("=")

    def decode(self, cursor: str, scope: str) -> tuple[int, str]:
        try:
            if len(cursor) > 200:
                raise ValueError
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            body, mac = raw[:-16], raw[-16:]
            if not hmac.compare_digest(mac, hmac.new(self.key, body, hashlib.sha256).digest()[:16]):
                raise ValueError
            start_ns, span_id, bound_scope = json.loads(body)
            if not isinstance(start_ns, int) or not HEX16.match(span_id) and span_id != "":
                raise ValueError
        except (ValueError, TypeError, UnicodeDecodeError):
            raise CursorError("cursor: not a cursor this collector issued (it is altered, truncated, or from "
                              "another collector); start again without cursor and follow next_cursor") from None
        if bound_scope != scope:
            raise CursorError("cursor: it belongs to a query with other filters; keep the filters of the first page "
                              "when following next_cursor, or start again without cursor")
        return start_ns, span_id


def cursor_key(data_dir) -> bytes:
    """The data dir's cursor-signing key (created on first use, mode 0600); a random one without a data dir."""
    if not data_dir:
        return os.urandom(32)
    path = Path(data_dir) / "api-cursor.key"
    try:
        key = path.read_bytes()
        if len(key) == 32:
            return key
    except OSError:
        pass
    key = os.urandom(32)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    os.replace(tmp, path)
    return key


def exact(value: decimal.Decimal) -> str:
    """A decimal as plain text with no exponent and no trailing zeros: '0.0025', '12', '0'."""
    return "0" if value == 0 else format(value.normalize(), "f")


def iso_ns(ns: int) -> str:
    """Unix nanoseconds as ISO 8601 UTC with all nine fraction digits (no precision lost)."""
    seconds, fraction = divmod(int(ns), 1_000_000_000)
    return f"{_iso_second(seconds)}.{fraction:09d}Z"


@functools.lru_cache(maxsize=4096)
def _iso_second(seconds: int) -> str:
    # The spans of a trace, or of a page, share few seconds: formatting each second once takes a
    # 10,000-span trace's timestamps from ~35 ms to ~5 ms.
    return f"{dt.datetime.fromtimestamp(seconds, dt.timezone.utc):%Y-%m-%dT%H:%M:%S}"


def _select(detailed: bool) -> str:
    columns = {**SUMMARY, **(DETAIL if detailed else {})}
    return ", ".join(f"{expr} AS `{name}`" for name, expr in columns.items())


def _table(collector) -> str:
    store = collector.store()
    if store is None:
        from ..store import StoreUnavailable

        raise StoreUnavailable("the store is not reachable yet; retry shortly")
    return f"{store.options.database}.{store.options.traces_table}"


def shape(row: dict[str, Any], detailed: bool) -> dict[str, Any]:
    """A stored row as the API's activity."""
    out = {k: row[k] for k in SUMMARY if k not in ("start_ns", "duration_ns")}
    out["start_time"] = iso_ns(row["start_ns"])
    out["duration_ms"] = row["duration_ns"] / 1e6
    out["cost_usd"] = exact(decimal.Decimal(row["cost_usd"] or "0"))
    if detailed:
        attributes = dict(row["attributes"])
        out["attributes"] = {k: v for k, v in attributes.items() if not CONTENT_KEYS.match(k)}
        out["content"] = {k: _maybe_json(v) for k, v in attributes.items() if CONTENT_KEYS.match(k)}
        out["resource"] = dict(row["resource"])
        out["events"] = [{"time": iso_ns(t), "name": n, "attributes": dict(a)}
                         for t, n, a in zip(row["event_times"], row["event_names"], row["event_attributes"])]
        out["links"] = [{"trace_id": t, "span_id": s, "attributes": dict(a)}
                        for t, s, a in zip(row["link_trace_ids"], row["link_span_ids"], row["link_attributes"])]
        for key in ("span_kind", "status_message", "scope", "truncated_attributes", "truncated_events"):
            out[key] = row[key]
    return out


def _maybe_json(text: str) -> Any:
    if text[:1] in ("[", "{"):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def _rows(result) -> list[dict[str, Any]]:
    return [dict(zip(result.column_names, r)) for r in result.result_rows]


# How far back each round of a page's key search reaches from its anchor (the cursor, or now): most pages are
# answered from the newest hour or day, so the engine reads a few partitions, not the table.
KEY_WINDOWS_S = (3600, 86400, 7 * 86400, 31 * 86400, 366 * 86400, None)


def list_activities(collector, params: Mapping[str, list[str]], *, tenant: str | None, limit: int,
                    after: tuple[int, str] | None, detailed: bool) -> tuple[list[dict], tuple[int, str] | None]:
    """One page, newest first, and the key to continue from (None on the last page).

    Two steps: the page's keys (Timestamp, SpanId) from the filter's columns only, in widening time windows;
    then the full rows of just those keys."""
    condition = build_condition(params, operator=tenant is None)
    parameters = dict(condition.parameters)
    where = [f"({condition.sql})"]
    anchor = time.time_ns()
    if after is not None:
        where.append("(toUnixTimestamp64Nano(Timestamp), SpanId) < ({after_ns:Int64}, {after_span:String})")
        where.append("Timestamp <= fromUnixTimestamp64Nano({after_ns:Int64})")  # prunes partitions and granules
        parameters.update(after_ns=after[0], after_span=after[1])
        anchor = after[0]
    parameters["page"] = limit + 1
    table = _table(collector)
    keys: list[tuple[int, str]] = []
    for window in KEY_WINDOWS_S:
        bounded = list(where)
        if window is not None:
            bounded.append("Timestamp >= fromUnixTimestamp64Nano({lower_ns:Int64})")
            parameters["lower_ns"] = anchor - window * 1_000_000_000
        sql = (f"SELECT toUnixTimestamp64Nano(Timestamp) AS ns, SpanId FROM {table} WHERE {' AND '.join(bounded)} "
               "GROUP BY ns, SpanId ORDER BY ns DESC, SpanId DESC LIMIT {page:UInt32}")
        keys = [tuple(r) for r in run_query(collector, sql, parameters, tenant=tenant).result_rows]
        if len(keys) > limit:
            break
    more = len(keys) > limit
    keys = keys[:limit]
    if not keys:
        return [], None
    rows = _rows_for_keys(collector, table, keys, tenant, detailed)
    next_key = (keys[-1][0], keys[-1][1]) if more else None
    return [shape(r, detailed) for r in rows], next_key


def _rows_for_keys(collector, table: str, keys: list[tuple[int, str]], tenant: str | None, detailed: bool) -> list[dict]:
    """The stored rows of a page's keys, in the page's order (the completed version of a span written twice)."""
    parameters = {"ids": [k[1] for k in keys], "lo": min(k[0] for k in keys), "hi": max(k[0] for k in keys)}
    sql = (f"SELECT {_select(detailed)} FROM {table} WHERE SpanId IN {{ids:Array(String)}} "
           "AND Timestamp BETWEEN fromUnixTimestamp64Nano({lo:Int64}) AND fromUnixTimestamp64Nano({hi:Int64}) "
           f"ORDER BY SpanId, {PREFERENCE}")
    found: dict[tuple[int, str], dict] = {}
    for row in _rows(run_query(collector, sql, parameters, tenant=tenant)):
        found.setdefault((row["start_ns"], row["span_id"]), row)  # the first is the preferred version
    return [found[k] for k in keys if k in found]


class BadId(SpanledgerError):
    """A malformed span or trace id (HTTP 400)."""


def _check_id(value: str, pattern: re.Pattern, what: str) -> str:
    value = value.strip().lower()
    if not pattern.match(value):
        digits = 16 if pattern is HEX16 else 32
        raise BadId(f"{what}: expected {digits} hex digits (as OpenTelemetry prints it), got {value[:40]!r}")
    return value


def _trace_bounds(collector, trace_id: str) -> tuple[dt.datetime, dt.datetime] | None:
    """When the trace started and ended, from the trace-id lookup table, read as operator: only the times are
    used, never returned; the spans are then read with the caller's tenant.  If the query gateway does not
    let the lookup table be read, the spans are read without the bound (slower, same answer)."""
    from ..errors import QueryRefused

    table = _table(collector) + "_trace_id_ts"
    try:
        result = run_query(collector, f"SELECT min(Start), max(End), count() FROM {table} "
                                      "WHERE TraceId = {t:String}", {"t": trace_id}, tenant=None)
    except QueryRefused:
        return UNBOUNDED
    start, end, n = result.result_rows[0]
    return (start, end) if n else None


UNBOUNDED = (dt.datetime(1970, 1, 1), dt.datetime(2106, 1, 1))


# The activity API's summary fields in each trace row (schema/070_trace_rows.sql, Row), in that order; trace_id is
# the row's key.  Every value is text there, so its JSON types never depend on a setting.
TRACE_ROW = ("span_id", "parent_span_id", "name", "type", "agent", "service", "operation", "model", "provider",
             "start_ns", "duration_ns", "status", "severity", "input_tokens", "output_tokens", "cache_read_tokens",
             "cache_write_tokens", "reasoning_tokens", "cost_usd", "cost_source", "user_id", "session_id",
             "project_id", "ticket_id", "conversation_id", "environment", "tenant")
TRACE_ROW_INTS = frozenset(("start_ns", "duration_ns", "input_tokens", "output_tokens", "cache_read_tokens",
                            "cache_write_tokens", "reasoning_tokens"))
# Only Row is read (each column is a fixed cost in the engine); no ORDER BY: the versions of a span are grouped
# here, so only a trace of more than 2 * MAX_TRACE_SPANS rows (cut anyway) depends on the order rows come in.
TRACE_ROWS_SQL = "SELECT Row FROM {table}_trace_rows WHERE TraceId = {{t:String}} LIMIT {{n:UInt32}}"


def _decode_trace_rows(trace_id: str, rows: list[tuple[str]]) -> list[dict[str, Any]]:
    """Every row in one json.loads (one C call for the whole trace, not one per span)."""
    out = []
    for values in json.loads("[" + ",".join(row for (row,) in rows) + "]"):
        decoded = dict(zip(TRACE_ROW, values))
        for key in TRACE_ROW_INTS:
            decoded[key] = int(decoded[key])
        decoded["trace_id"] = trace_id
        out.append(decoded)
    return out


def _preferred(rows: list[dict]) -> dict:
    """The completed version of a span written twice: a final status over started/in_progress, then the longer."""
    return min(rows, key=lambda r: (r["status"] in OPEN_STATUSES, -r["duration_ns"]))


def trace_spans(collector, trace_id: str, *, tenant: str | None, detailed: bool = False) -> tuple[list[dict], bool]:
    """Every span of a trace (one per span id: the completed version), oldest first, and whether the trace was
    cut at MAX_TRACE_SPANS.

    The summary comes from the trace rows (schema/070_trace_rows.sql): one primary-key range of one column,
    read with the caller's tenant like every read; the detailed view reads the spans table."""
    if detailed:
        return trace_spans_from_spans(collector, trace_id, tenant=tenant, detailed=True)
    trace_id = _check_id(trace_id, HEX32, "trace id")
    sql = TRACE_ROWS_SQL.format(table=_table(collector))
    result = run_query(collector, sql, {"t": trace_id, "n": 2 * MAX_TRACE_SPANS + 1}, tenant=tenant)
    versions: dict[str, list[dict]] = {}
    for decoded in _decode_trace_rows(trace_id, result.result_rows):
        versions.setdefault(decoded["span_id"], []).append(decoded)
    if not versions:
        raise NotFound(f"no trace {trace_id}: check the id, or wait a second if it was just sent")
    rows = [_preferred(v) for v in versions.values()]
    truncated = len(rows) > MAX_TRACE_SPANS or len(result.result_rows) > 2 * MAX_TRACE_SPANS
    rows = sorted(rows[:MAX_TRACE_SPANS], key=lambda r: (r["start_ns"], r["span_id"]))
    return [shape(r, False) for r in rows], truncated


def trace_spans_from_spans(collector, trace_id: str, *, tenant: str | None,
                           detailed: bool = False) -> tuple[list[dict], bool]:
    """``trace_spans`` read from the spans table: bounds from the trace-id lookup, then the spans of those
    days.  Serves the detailed view (attributes, events: not in the trace rows) and is the benchmark's
    reference for the trace-rows read (bench/bench_trace.py)."""
    trace_id = _check_id(trace_id, HEX32, "trace id")
    bounds = _trace_bounds(collector, trace_id)
    if bounds is None:
        raise NotFound(f"no trace {trace_id}: check the id, or wait a second if it was just sent")
    sql = (f"SELECT {_select(detailed)} FROM {_table(collector)} WHERE TraceId = {{t:String}} "
           "AND Timestamp >= toDateTime64({start:DateTime}, 9) AND Timestamp < toDateTime64({end:DateTime}, 9) + 1 "
           f"ORDER BY SpanId, {PREFERENCE} LIMIT {{n:UInt32}}")
    result = run_query(collector, sql, {"t": trace_id, "start": bounds[0], "end": bounds[1],
                                        "n": 2 * MAX_TRACE_SPANS + 1}, tenant=tenant)
    by_span: dict[str, dict] = {}
    for row in _rows(result):
        by_span.setdefault(row["span_id"], row)  # rows of one span id are adjacent, the preferred first
    if not by_span:
        raise NotFound(f"no trace {trace_id}: check the id, or wait a second if it was just sent")
    rows = list(by_span.values())
    truncated = len(rows) > MAX_TRACE_SPANS or len(result.result_rows) > 2 * MAX_TRACE_SPANS
    rows = sorted(rows[:MAX_TRACE_SPANS], key=lambda r: (r["start_ns"], r["span_id"]))
    return [shape(r, detailed) for r in rows], truncated


def get_activity(collector, span_id: str, *, tenant: str | None, detailed: bool = True) -> dict[str, Any]:
    span_id = _check_id(span_id, HEX16, "span id")
    sql = (f"SELECT {_select(detailed)} FROM {_table(collector)} WHERE SpanId = {{s:String}} "
           f"ORDER BY {PREFERENCE} LIMIT 1")
    rows = _rows(run_query(collector, sql, {"s": span_id}, tenant=tenant))
    if not rows:
        raise NotFound(f"no activity with span id {span_id}: check the id, or wait a second if it was just sent")
    return shape(rows[0], detailed)


def chain(spans: list[dict], span_id: str) -> dict[str, list[dict]]:
    """The ancestors (root first) and descendants (depth first) of ``span_id`` among a trace's spans."""
    by_id = {s["span_id"]: s for s in spans}
    ancestors, seen = [], {span_id}
    parent = by_id.get(span_id, {}).get("parent_span_id", "")
    while parent and parent in by_id and parent not in seen:  # ``seen`` stops a hostile cycle of parents
        seen.add(parent)
        ancestors.append(by_id[parent])
        parent = by_id[parent]["parent_span_id"]
    children = _children(spans)
    descendants, stack = [], list(reversed(children.get(span_id, [])))
    while stack:
        span = stack.pop()
        if span["span_id"] in seen:
            continue
        seen.add(span["span_id"])
        descendants.append(span)
        stack.extend(reversed(children.get(span["span_id"], [])))
    return {"ancestors": list(reversed(ancestors)), "descendants": descendants}


def _children(spans: list[dict]) -> dict[str, list[dict]]:
    children: dict[str, list[dict]] = {}
    for span in spans:
        children.setdefault(span["parent_span_id"], []).append(span)
    return children


TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")


def trace_tree(spans: list[dict]) -> list[dict]:
    """Spans nested under their parents (roots: no parent, or a parent not in the trace), each with
    ``subtree`` sums of tokens and cost (exact decimals) over itself and everything below it."""
    by_id = {s["span_id"]: dict(s, children=[]) for s in spans}
    roots = []
    for node in by_id.values():
        parent = by_id.get(node["parent_span_id"])
        if parent is not None and parent is not node:
            parent["children"].append(node)
        else:
            roots.append(node)
    reachable = set()
    for root in roots:
        _sum_subtree(root, reachable)
    # a cycle of parents (only a hostile client can send one) is unreachable from any root: show it at the top
    for node in by_id.values():
        if node["span_id"] not in reachable:
            node["children"] = []
            _sum_subtree(node, reachable)
            roots.append(node)
    return roots


def _sum_subtree(root: dict, seen: set) -> None:
    order, stack = [], [root]
    while stack:  # iterative: a trace can be thousands of levels deep
        node = stack.pop()
        seen.add(node["span_id"])
        order.append(node)
        stack.extend(node["children"])
    for node in reversed(order):
        sums = {k: node[k] for k in TOKEN_FIELDS}
        cost = decimal.Decimal(node["cost_usd"])
        spans = 1
        for child in node["children"]:
            for k in TOKEN_FIELDS:
                sums[k] += child["subtree"][k]
            cost += decimal.Decimal(child["subtree"]["cost_usd"])
            spans += child["subtree"]["spans"]
        node["subtree"] = {**sums, "cost_usd": exact(cost), "spans": spans}


def subtree_totals(roots: list[dict]) -> dict[str, Any]:
    """Tokens, cost and span count of a whole trace: the sum over its roots' subtrees."""
    totals: dict[str, Any] = {k: 0 for k in TOKEN_FIELDS}
    cost, spans = decimal.Decimal(0), 0
    for root in roots:
        for k in TOKEN_FIELDS:
            totals[k] += root["subtree"][k]
        cost += decimal.Decimal(root["subtree"]["cost_usd"])
        spans += root["subtree"]["spans"]
    return {**totals, "cost_usd": exact(cost), "spans": spans}
