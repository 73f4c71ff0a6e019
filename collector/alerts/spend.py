"""What a budget has spent in a window: the hourly rollup for whole hours, raw spans for the edges.

``spanledger_usage_hourly`` answers a month in a few thousand rows, but its
hours are whole: a rolling window (now - N h .. now) or a zone whose midnight
is not on a whole UTC hour starts or ends inside an hour.  Those partial hours
are read from the spans themselves, so the sum is exact to the nanosecond:

    [start, first whole hour)  raw spans
    [first whole hour, last whole hour)  rollup
    [last whole hour, end)  raw spans

A span counts in the window of its own Timestamp, also when it arrives late.
Every value is bound by the engine; the budget's scope compiles with the
listing filters (collector/query/filters.py).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from ..query import run_query
from ..query.filters import ROLLUP_COLUMNS, build_condition
from .budgets import Budget, Window

HOUR_NS = 3600 * 10**9


def _ns(moment: dt.datetime) -> int:
    return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000


def spend_sql(collector, budget: Budget) -> tuple[str, dict]:
    """The query (and scope parameters) for one budget; times are bound per evaluation."""
    store = collector.store()
    db, traces = store.options.database, store.options.traces_table
    scope = build_condition({k: v for k, v in budget.scope}, operator=True, prefix="b",
                            allowed_columns=ROLLUP_COLUMNS, time_column=None)
    sql = (
        "SELECT toString("
        f"(SELECT sum(TotalCost) FROM {db}.spanledger_usage_hourly "
        f" WHERE Hour >= toDateTime(intDiv({{h0:Int64}}, 1000000000)) AND Hour < toDateTime(intDiv({{h1:Int64}}, 1000000000)) AND ({scope.sql}))"
        " + "
        f"(SELECT sum(toDecimal128(TotalCost, 12)) FROM {db}.{traces} "
        " WHERE Timestamp >= fromUnixTimestamp64Nano({start:Int64}) AND Timestamp < fromUnixTimestamp64Nano({end:Int64})"
        "   AND NOT (Timestamp >= fromUnixTimestamp64Nano({h0:Int64}) AND Timestamp < fromUnixTimestamp64Nano({h1:Int64}))"
        f"  AND ({scope.sql})))"
    )
    return sql, scope.parameters


def hour_bounds(start_ns: int, end_ns: int) -> tuple[int, int]:
    """The whole hours inside [start, end): (first, last) with first == last when there are none."""
    first = -(-start_ns // HOUR_NS) * HOUR_NS
    last = end_ns // HOUR_NS * HOUR_NS
    return (first, last) if last > first else (start_ns, start_ns)


def spent(collector, budget: Budget, window: Window, *, tenant: str | None) -> Decimal:
    """USD spent in ``window`` by the spans in ``budget``'s scope (``tenant`` as for run_query)."""
    sql, parameters = spend_sql(collector, budget)
    start, end = _ns(window.start), _ns(window.end)
    h0, h1 = hour_bounds(start, end)
    result = run_query(collector, sql, {**parameters, "start": start, "end": end, "h0": h0, "h1": h1}, tenant=tenant)
    return Decimal(result.result_rows[0][0])


def decimal_text(value: Decimal) -> str:
    """An exact amount without exponent or trailing zeros: Decimal('12.500000') -> '12.5'."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def status(collector, budget: Budget, window: Window, now: dt.datetime, zone: str, *, tenant: str | None,
           fired: list[Decimal]) -> dict:
    """One budget as GET /v1/budgets shows it.

    ``projected_usd`` is a linear projection: what was spent so far, divided by
    the part of the window that has elapsed, times the whole window.  A rolling
    window is always whole (it ends now), so its projection is what it has spent."""
    amount = spent(collector, budget, window, tenant=tenant)
    if window.key == "rolling":
        projected = amount
    else:
        # in UTC: the same zone on both sides would subtract wall clocks and miss a DST hour
        start, end = window.start.astimezone(dt.timezone.utc), window.end.astimezone(dt.timezone.utc)
        elapsed = max((now - start).total_seconds(), 1.0)
        total = (end - start).total_seconds()
        projected = amount * Decimal(total) / Decimal(elapsed) if elapsed < total else amount
    percent = amount * 100 / budget.limit_usd
    return {
        "name": budget.name, "scope": budget.scope_dict, "limit_usd": decimal_text(budget.limit_usd),
        "spent_usd": decimal_text(amount), "remaining_usd": decimal_text(max(budget.limit_usd - amount, Decimal(0))),
        "percent": float(round(percent, 4)), "window": window.as_json(zone),
        "projected_usd": decimal_text(projected.quantize(Decimal("1e-12"))),
        "projected_percent": float(round(projected * 100 / budget.limit_usd, 4)),
        "thresholds": [float(t) for t in budget.thresholds], "fired": [float(t) for t in fired],
    }
