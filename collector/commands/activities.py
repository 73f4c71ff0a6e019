"""``spanledger activities``: the activity listing (GET /v1/activities) in a terminal, newest first."""

from __future__ import annotations

import csv
import io
import json
import sys

from ._reader import CommandFailed, add_store_flags, read

NAME = "activities"
COLUMNS = ("start_time", "type", "name", "agent", "model", "status", "duration_ms", "input_tokens",
           "output_tokens", "cost_usd", "span_id")


def add_parser(sub) -> None:
    from ..query.filters import FIELDS

    p = sub.add_parser(NAME, help="list activities (spans), newest first, with filters")
    for name, spec in FIELDS.items():
        p.add_argument(f"--{name.replace('_', '-')}", dest=f"f_{name}", action="append", metavar="VALUE",
                       help=spec.doc or None)
    p.add_argument("--since", help="from this time (ISO 8601 or Unix s/ms)")
    p.add_argument("--until", help="before this time")
    p.add_argument("--where", help="an expression: 'agent:planner AND (model:gpt-4o OR NOT status:error)'")
    p.add_argument("--limit", type=int, default=50, help="at most this many (1-1000, default 50)")
    p.add_argument("--cursor", help="continue after a previous page (its next_cursor, printed at the end)")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    add_store_flags(p)


def filter_params(args) -> dict[str, list[str] | str]:
    from ..query.filters import FIELDS

    params: dict = {name: getattr(args, f"f_{name}") for name in FIELDS if getattr(args, f"f_{name}", None)}
    for name in ("since", "until", "where"):
        if getattr(args, name):
            params[name] = getattr(args, name)
    return params


def run(args) -> int:
    if not 1 <= args.limit <= 1000:
        print("spanledger activities: --limit must be between 1 and 1000", file=sys.stderr)
        return 2
    params = filter_params(args)
    try:
        page = read(args, "/v1/activities", {**params, "limit": args.limit, "cursor": args.cursor},
                    lambda reader: _direct(reader, params, args.limit, args.cursor))
    except CommandFailed as exc:
        print(f"spanledger activities: {exc}", file=sys.stderr)
        return 1
    print(render(page, args.format))
    return 0


def _direct(reader, params: dict, limit: int, cursor: str | None) -> dict:
    """The same listing as the API, on a store opened by this command; cursors are signed with the data dir's
    key, so a cursor from the API works here and the other way round."""
    from ..query import activities as q

    lists = {k: v if isinstance(v, list) else [v] for k, v in params.items()}
    signer = q.CursorSigner(q.cursor_key(reader.data_dir))
    scope = signer.scope(lists, None, False)
    after = signer.decode(cursor, scope) if cursor else None
    rows, next_key = q.list_activities(reader, lists, tenant=None, limit=limit, after=after, detailed=False)
    return {"activities": rows, "next_cursor": signer.encode(*next_key, scope) if next_key else None,
            "time_zone": "UTC"}


def render(page: dict, fmt: str) -> str:
    items = page["activities"]
    if fmt == "json":
        return json.dumps(page, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(items[0]) if items else list(COLUMNS), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(items)
        return out.getvalue().rstrip("\n")
    from ..cli import format_table

    rows = [[a["start_time"][:23].replace("T", " "), a["type"], a["name"][:40], a["agent"], a["model"], a["status"],
             f"{a['duration_ms']:.1f}", a["input_tokens"], a["output_tokens"], a["cost_usd"], a["span_id"]]
            for a in items]
    text = format_table(list(COLUMNS), rows)
    if page.get("next_cursor"):
        text += f"\nmore: --cursor {page['next_cursor']}"
    return text
