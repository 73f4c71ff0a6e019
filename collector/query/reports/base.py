"""What every report shares: parameters and their checks, time zones, the tier choice, cursors.

A report is a named, documented query with typed parameters.  It never reads
the store itself: it is handed an ``execute(sql, parameters)`` that runs one
SELECT for the caller (``run_query`` with the caller's tenant on the HTTP API;
the collector's ``/v1/sql`` or the opened store on the command line), so the
same report runs everywhere and tenancy and limits stay where run_query puts
them.  Every value a caller sends is bound by the engine (``{name:Type}``).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ...errors import ReportError
from ..filters import FIELDS, ROLLUP_COLUMNS, Condition, FilterError, build_condition, parse_time

# execute(sql, parameters) -> (column names, rows)
Execute = Callable[[str, dict[str, Any]], tuple[list[str], list[list[Any]]]]

MAX_LIST_LIMIT = 1000
MAX_GROUP_ROWS = 10_000
MAX_CURSOR_CHARS = 2000
FILTER_PARAMS = frozenset(FIELDS) | {"since", "until", "where"}
# columns of spanledger_usage_hourly a report can group by (the rollup's key minus tenant and cost source)
ROLLUP_GROUP_COLUMNS = frozenset({"ServiceName", "Provider", "Model", "AgentName", "ProjectId", "UserId",
                                  "Environment"})


@dataclass(frozen=True)
class Param:
    """One report parameter as the API lists it and checks it."""

    name: str
    type: str  # string | int | enum | list | cursor
    doc: str
    choices: tuple[str, ...] = ()
    default: Any = None
    maximum: int = 0
    required: bool = False

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "description": self.doc}
        if self.choices:
            out["choices"] = list(self.choices)
        if self.default is not None:
            out["default"] = self.default
        if self.maximum:
            out["maximum"] = self.maximum
        if self.required:
            out["required"] = True
        return out

    def parse(self, values: Sequence[str]) -> Any:
        if self.type != "list" and len(values) > 1:
            raise ReportError(f"{self.name}: give it once")
        text = values[0] if values else None
        if text is None or text == "":
            if self.required:
                raise ReportError(f"{self.name}: required ({self.doc})")
            return self.default
        if len(text) > (MAX_CURSOR_CHARS if self.type == "cursor" else 200):
            raise ReportError(f"{self.name}: the value is too long")
        if self.type == "int":
            if not is_digits(text, 9):
                raise ReportError(f"{self.name}: {text!r} is not a whole number")
            number = int(text)
            if number < 1 or (self.maximum and number > self.maximum):
                raise ReportError(f"{self.name}: give a number from 1 to {self.maximum}")
            return number
        if self.type == "enum":
            if text not in self.choices:
                raise ReportError(f"{self.name}: {text!r} is not one of {', '.join(self.choices)}")
            return text
        if self.type == "list":
            items = [item.strip() for value in values for item in value.split(",") if item.strip()]
            unknown = [item for item in items if item not in self.choices]
            if unknown:
                raise ReportError(f"{self.name}: {unknown[0]!r} is not one of {', '.join(self.choices)}")
            if len(set(items)) != len(items):
                raise ReportError(f"{self.name}: a key is given twice")
            return tuple(items) or self.default
        return text


def is_digits(text: str, most: int = 19) -> bool:
    """ASCII digits only (str.isdigit also takes '５' and '²'), at most ``most`` of them."""
    return bool(re.fullmatch(f"[0-9]{{1,{most}}}", text))


def limit_param(default: int, maximum: int = MAX_LIST_LIMIT) -> Param:
    return Param("limit", "int", f"rows per page (1 to {maximum})", default=default, maximum=maximum)


CURSOR = Param("cursor", "cursor", "next_cursor of the previous page (leave out for the first page)")
ID = Param("id", "string", "the id to show", required=True)
SOURCE = Param("source", "enum", "auto: the cheapest tier that can answer exactly; rollup: refuse if it cannot; "
               "raw: always raw spans", choices=("auto", "rollup", "raw"), default="auto")
TIME_ZONE = Param("time_zone", "string", "IANA zone for day and month buckets (default: the deployment's)")


@dataclass(frozen=True)
class Tables:
    database: str = "spanledger"
    traces: str = "otel_traces"

    @property
    def spans(self) -> str:
        return f"{self.database}.{self.traces}"

    @property
    def usage_hourly(self) -> str:
        return f"{self.database}.spanledger_usage_hourly"


@dataclass
class Output:
    """What a report's builder returns; run_report wraps it with range, zone and source."""

    columns: list[str]
    rows: list[list[Any]]
    source: str
    next_cursor: str | None = None
    truncated: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class ReportRequest:
    """A checked request: the report's own parameters, the filters, and how to run SQL for this caller."""

    params: dict[str, Any]
    filters: dict[str, list[str]]
    operator: bool
    time_zone: str
    execute: Execute
    price_book: Any
    tables: Tables
    since: dt.datetime | None
    until: dt.datetime | None

    def raw_condition(self, prefix: str = "f") -> Condition:
        return build_condition(self.filters, operator=self.operator, prefix=prefix)

    def rollup_condition(self, prefix: str = "f") -> Condition:
        return build_condition(self.filters, operator=self.operator, prefix=prefix, allowed_columns=ROLLUP_COLUMNS,
                               time_column="Hour", time_type="DateTime")

    def choose_tier(self, columns: set[str]) -> tuple[bool, Condition, str]:
        """(use the hourly rollup?, the condition for that tier, why raw spans were read or '').

        The rollup answers exactly only when it has every column the report groups
        by and filters on, the range starts and ends on whole hours, and the zone's
        offset is whole hours across the range; otherwise raw spans (source=auto)
        or a refusal naming the reason (source=rollup)."""
        choice = self.params.get("source", "auto")
        reason = ""
        condition = None
        if choice == "raw":
            reason = "source=raw was asked for"
        elif not columns <= ROLLUP_GROUP_COLUMNS:
            reason = "the hourly rollup has no " + ", ".join(sorted(columns - ROLLUP_GROUP_COLUMNS)) + " column"
        elif not _whole_hours(self.since) or not _whole_hours(self.until):
            reason = "since/until are not whole hours (the rollup counts per hour)"
        elif not _whole_hour_zone(self.time_zone, self.since, self.until):
            reason = f"{self.time_zone} is not a whole number of hours from UTC"
        else:
            try:
                condition = self.rollup_condition()
            except FilterError as exc:
                reason = str(exc)
        if condition is not None:
            return True, condition, ""
        if choice == "rollup":
            raise ReportError(f"source=rollup cannot answer this: {reason}; leave source out to read raw spans")
        return False, self.raw_condition(), reason


def _whole_hours(moment: dt.datetime | None) -> bool:
    return moment is None or (moment.minute == 0 and moment.second == 0 and moment.microsecond == 0)


def _whole_hour_zone(zone: str, since: dt.datetime | None, until: dt.datetime | None) -> bool:
    tz = zoneinfo.ZoneInfo(zone)
    start = since or dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
    end = until or dt.datetime.now(dt.timezone.utc)
    probes = [start, end] + [dt.datetime(y, m, 1, tzinfo=dt.timezone.utc)
                             for y in range(start.year, min(end.year, start.year + 50) + 1) for m in (1, 4, 7, 10)]
    return all((p.astimezone(tz).utcoffset() or dt.timedelta()).total_seconds() % 3600 == 0 for p in probes)


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def check_time_zone(zone: str, where: str) -> str:
    """An IANA zone name (Europe/Paris, UTC), or ReportError saying what to give."""
    if not isinstance(zone, str) or zone not in _known_zones():
        raise ReportError(f"{where}: {str(zone)[:100]!r} is not an IANA time zone; give e.g. UTC, Europe/Paris, "
                          "America/New_York")
    return zone


# -- bucketing by the zone (a bound parameter, so a zone is never SQL text) -------------------
BUCKETS = ("hour", "day", "month", "none")


def bucket_expression(bucket: str, column: str) -> str | None:
    """The bucket label of ``column`` in zone ``{tz:String}``: text that sorts in time order."""
    if bucket == "hour":
        return f"formatDateTime(toStartOfHour({column}, {{tz:String}}), '%Y-%m-%d %H:00', {{tz:String}})"
    if bucket == "day":
        return f"toString(toDate({column}, {{tz:String}}))"
    if bucket == "month":
        return f"formatDateTime(toStartOfMonth({column}, {{tz:String}}), '%Y-%m')"
    return None


# -- cursors: opaque to clients, checked on the way back in ------------------------------------
def encode_cursor(kind: str, values: Sequence[Any]) -> str:
    raw = json.dumps([kind, *[str(v) for v in values]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str | None, kind: str, parts: int, numeric_first: bool = False) -> list[str] | None:
    if not text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value = json.loads(raw)
    except (ValueError, TypeError):
        value = None
    if (not isinstance(value, list) or len(value) != parts + 1 or value[0] != kind
            or not all(isinstance(v, str) and len(v) <= 500 for v in value[1:])):
        raise ReportError("cursor: not a cursor of this report and ordering; pass next_cursor from the previous "
                          "page unchanged, with the same parameters")
    if numeric_first and not is_digits(value[1]):
        raise ReportError("cursor: damaged; pass next_cursor from the previous page unchanged")
    return value[1:]


def without_column(names: list[str], rows: list[list[Any]], column: str) -> tuple[list[str], list[list[Any]]]:
    """Drop a helper column (a quantiles array, a cursor key) from an answer."""
    i = names.index(column)
    return names[:i] + names[i + 1:], [row[:i] + row[i + 1:] for row in rows]


def page(rows: list[list[Any]], limit: int, cursor_of: Callable[[list[Any]], str]) -> tuple[list[list[Any]], str | None]:
    """Cut a LIMIT n+1 answer to n rows and say where the next page starts."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, cursor_of(rows[-1])


def default_since(now: dt.datetime, days: int) -> dt.datetime:
    start = now - dt.timedelta(days=days)
    return start.replace(minute=0, second=0, microsecond=0)


def split_params(raw: Mapping[str, Sequence[str]], own: Mapping[str, Param], takes_filters: bool) -> None:
    unknown = [name for name in raw if name not in own and not (takes_filters and name in FILTER_PARAMS)]
    if unknown:
        known = sorted(own) + (sorted(FILTER_PARAMS) if takes_filters else [])
        raise ReportError(f"unknown parameter {unknown[0][:100]!r}; this report takes: {', '.join(known)}")


def resolve_range(raw: Mapping[str, Sequence[str]], default_days: int | None,
                  now: dt.datetime) -> tuple[dt.datetime | None, dt.datetime | None, dict[str, list[str]]]:
    """since/until as the report will use them, and the filters with a default since filled in."""
    filters = {name: list(values) for name, values in raw.items() if name in FILTER_PARAMS}
    since = until = None
    for name in ("since", "until"):
        values = [v for v in filters.get(name, []) if v != ""]
        if len(values) > 1:
            raise ReportError(f"{name}: give it once")
        if values:
            moment = parse_time(values[0], name)
            if not dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) <= moment <= dt.datetime(2262, 1, 1, tzinfo=dt.timezone.utc):
                raise ReportError(f"{name}: {values[0]!r} is outside 1970..2262")
            filters[name] = [moment.isoformat()]
            since, until = (moment, until) if name == "since" else (since, moment)
    if since is None and default_days:
        since = default_since(now, default_days)
        filters["since"] = [since.isoformat()]
    if since and until and until <= since:
        raise ReportError("until must be after since")
    return since, until, filters
