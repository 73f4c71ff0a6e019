"""``spanledger trace <trace-or-span-id>``: one trace as a tree, with duration, tokens and cost per node."""

from __future__ import annotations

import csv
import io
import json
import re
import sys

from ._reader import CommandFailed, add_store_flags, read

NAME = "trace"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="show one trace as a tree (durations, tokens, cost per node and subtree)")
    p.add_argument("id", help="a trace id (32 hex digits) or the span id (16) of any activity in it")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    add_store_flags(p)


def run(args) -> int:
    wanted = args.id.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{16}|[0-9a-f]{32}", wanted):
        print(f"spanledger trace: {args.id!r} is neither a trace id (32 hex digits) nor a span id (16)", file=sys.stderr)
        return 2
    try:
        if len(wanted) == 16:
            activity = read(args, f"/v1/activities/{wanted}", {}, lambda r: _activity(r, wanted))
            wanted = activity["trace_id"]
        trace = read(args, f"/v1/traces/{wanted}", {}, lambda r: _trace(r, wanted))
    except CommandFailed as exc:
        print(f"spanledger trace: {exc}", file=sys.stderr)
        return 1
    print(render(trace, args.format))
    return 0


def _activity(reader, span_id: str) -> dict:
    from ..query import activities as q

    return q.get_activity(reader, span_id, tenant=None, detailed=False)


def _trace(reader, trace_id: str) -> dict:
    from ..query import activities as q

    spans, truncated = q.trace_spans(reader, trace_id, tenant=None)
    roots = q.trace_tree(spans)
    return {"trace_id": trace_id, "spans": len(spans), "truncated": truncated, "totals": q.subtree_totals(roots),
            "roots": roots}


def walk(roots: list[dict]):
    """(depth, node) depth first, children in start order."""
    stack = [(0, r) for r in reversed(roots)]
    while stack:
        depth, node = stack.pop()
        yield depth, node
        stack.extend((depth + 1, c) for c in reversed(sorted(node["children"], key=lambda c: c["start_time"])))


def render(trace: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(trace, indent=2)
    rows = [[("  " * depth) + n["name"], n["type"], n["agent"], n["model"], n["status"], f"{n['duration_ms']:.1f}",
             n["input_tokens"], n["output_tokens"], n["cost_usd"], n["subtree"]["cost_usd"], n["span_id"]]
            for depth, n in walk(trace["roots"])]
    columns = ["span", "type", "agent", "model", "status", "duration_ms", "input_tokens", "output_tokens",
               "cost_usd", "subtree_cost_usd", "span_id"]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows([[r[0].strip(), *r[1:]] for r in rows])
        return out.getvalue().rstrip("\n")
    from ..cli import format_table

    totals = trace["totals"]
    head = (f"trace {trace['trace_id']}: {trace['spans']} spans, {totals['input_tokens']} input and "
            f"{totals['output_tokens']} output tokens, ${totals['cost_usd']}"
            + (" (truncated)" if trace["truncated"] else ""))
    return head + "\n" + format_table(columns, rows)
