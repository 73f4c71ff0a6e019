"""Named reports: the questions users come with, as documented, parameterized queries.

One module per family (spend, timelines, stats, analytics); this registry
lists them for ``GET /v1/reports`` and the CLI, checks a request's parameters
once (unknown names included), and wraps each answer the same way::

    {"report", "source", "range": {"since", "until"}, "time_zone",
     "columns", "rows", "next_cursor", "truncated", "notes"}

``source`` is the table that answered (raw spans or the hourly rollup);
``range`` the time range the report covered (``null`` = unbounded); exact
decimals are strings once serialized (serve.json_encoding.json_default).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ...errors import ReportError
from ..filters import FIELDS
from . import analytics, spend, stats, timelines
from .base import (TIME_ZONE, Execute, Output, Param, ReportRequest, Tables, check_time_zone, resolve_range,
                   split_params)

__all__ = ["REPORTS", "Report", "ReportError", "Tables", "describe_reports", "run_report"]


@dataclass(frozen=True)
class Report:
    name: str
    family: str
    description: str
    build: Callable[[ReportRequest], Output]
    params: tuple[Param, ...]
    default_days: int | None = 30  # the range when since is not given; None: unbounded (timelines by id)


REPORTS: dict[str, Report] = {r.name: r for r in (
    Report("spend", "spend", "Spend and tokens grouped by any of model, provider, agent, service, project, user, "
           "session, ticket, per hour, day or month; cache-hit ratio, money caching saved, reasoning share, "
           "unpriced calls apart", spend.spend, spend.SPEND_PARAMS),
    Report("top", "spend", "Top N users, sessions, traces, tickets... by cost or tokens, with a cursor",
           spend.top, spend.TOP_PARAMS),
    Report("project_timeline", "timelines", "A project's actions in time order", timelines.project_timeline,
           timelines.TIMELINE_PARAMS, None),
    Report("conversation", "timelines", "A conversation in sequence order: user message, tool call, tool response, "
           "assistant response", timelines.conversation, timelines.TIMELINE_PARAMS, None),
    Report("ticket_history", "timelines", "Everything done on a ticket, in time order", timelines.ticket_history,
           timelines.TIMELINE_PARAMS, None),
    Report("session_events", "timelines", "A session's events in time order", timelines.session_events,
           timelines.TIMELINE_PARAMS, None),
    Report("agent_stats", "stats", "Per agent: events, runs, success rate, errors, conflicts, pauses, "
           "p50/p95/p99 run duration, cost", stats.agent_stats, stats.STATS_PARAMS),
    Report("activity_durations", "stats", "p50/p95/p99 duration per agent and activity type",
           stats.activity_durations, stats.STATS_PARAMS),
    Report("events_by_type", "stats", "Events by activity type and severity (optionally per agent)",
           stats.events_by_type, stats.EVENTS_PARAMS),
    Report("problems", "stats", "Errors, conflicts and pauses, newest first", stats.problems, stats.PROBLEMS_PARAMS),
    Report("analytics_summary", "analytics", "Product events: total, by category, by type, by day, most active day, "
           "most common action", analytics.analytics_summary, analytics.SUMMARY_PARAMS),
    Report("sessions", "analytics", "Sessions, most recently active first, with event counts and cost",
           analytics.sessions, analytics.SESSIONS_PARAMS),
)}

_FILTER_DOCS = [{"name": name, "type": "number" if f.numeric else "string",
                 "description": f.doc or f"equals (repeat for any of several values)", "filter": True}
                for name, f in FIELDS.items()] + [
    {"name": "since", "type": "time", "description": "from (ISO 8601 or Unix s/ms), inclusive", "filter": True},
    {"name": "until", "type": "time", "description": "to, exclusive", "filter": True},
    {"name": "where", "type": "expression", "description": "AND/OR/NOT expression, e.g. "
     "agent:planner AND (model:gpt-4o OR NOT status:error)", "filter": True},
]


def _named(execute: Execute) -> Execute:
    """``execute`` that names the columns of an empty answer too (the embedded engine sends none then)."""
    def run(sql: str, parameters: dict[str, Any]):
        # only what the text binds: a client given values but no {name:Type} would format them in itself
        parameters = {k: v for k, v in parameters.items() if "{" + k + ":" in sql}
        return execute(sql, parameters)  # an empty answer still names its columns (Store.read)
    return run


def _exact(value: Any) -> Any:
    """Decimals as plain exact strings ('0.000100', never '1E-4'); everything else as the engine gave it."""
    return format(value, "f") if isinstance(value, Decimal) else value


def describe_reports() -> list[dict[str, Any]]:
    """Every report with its parameters and their types (GET /v1/reports)."""
    return [{"name": r.name, "family": r.family, "description": r.description,
             "default_range_days": r.default_days,
             "parameters": [p.describe() for p in (*r.params, TIME_ZONE)] + _FILTER_DOCS} for r in REPORTS.values()]


def run_report(name: str, raw: Mapping[str, Sequence[str]], *, execute: Execute, price_book: Any,
               operator: bool, time_zone: str, tables: Tables = Tables(),
               now: dt.datetime | None = None) -> dict[str, Any]:
    """Check ``raw`` (query-string shaped: name -> values) and run report ``name`` for one caller.

    Raises ReportError / FilterError for a bad request before anything runs."""
    report = REPORTS.get(name)
    if report is None:
        raise ReportError(f"no report named {name[:100]!r}; known: {', '.join(REPORTS)}")
    own = {p.name: p for p in (*report.params, TIME_ZONE)}
    split_params(raw, own, takes_filters=True)
    params = {p.name: p.parse(list(raw.get(p.name, []))) for p in own.values()}
    zone = check_time_zone(params["time_zone"], "time_zone") if params.get("time_zone") else time_zone
    since, until, filters = resolve_range(raw, report.default_days, now or dt.datetime.now(dt.timezone.utc))
    request = ReportRequest(params=params, filters=filters, operator=operator, time_zone=zone,
                            execute=_named(execute),
                            price_book=price_book, tables=tables, since=since, until=until)
    out = report.build(request)
    return {"report": name, "source": out.source,
            "range": {"since": since.isoformat() if since else None, "until": until.isoformat() if until else None},
            "time_zone": zone, "columns": out.columns, "rows": [[_exact(v) for v in row] for row in out.rows], "next_cursor": out.next_cursor,
            "truncated": out.truncated, "notes": out.notes}
