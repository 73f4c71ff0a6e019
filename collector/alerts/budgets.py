"""The budgets of extensions.spanledger_budgets.budgets, checked once at start-up, and their windows.

A budget limits the cost (USD) of the spans in its scope over a window:

* ``day``, ``week`` (from Monday) or ``month``: calendar windows starting at
  midnight in ``extensions.spanledger_api.time_zone``;
* ``<N>h``: the trailing N hours, a rolling window.

Scope keys are the listing filter names (tenant, project, user, agent, model,
service), so a budget's scope compiles with the same filter code as every
read endpoint, bound by the engine.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..config import ConfigError

BUDGETS_KEY = "extensions.spanledger_budgets.budgets"
SCOPE_FIELDS = ("tenant", "project", "user", "agent", "model", "service")
CALENDAR_WINDOWS = ("day", "week", "month")
DEFAULT_THRESHOLDS = (Decimal(80), Decimal(100))
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
_ROLLING = re.compile(r"^(\d{1,4})h$")
_KNOWN_KEYS = {"name", "scope", "limit_usd", "window", "thresholds", "webhook_url", "webhook_secret"}


@dataclass(frozen=True)
class Budget:
    name: str
    scope: tuple[tuple[str, str], ...]  # (field, value), sorted
    limit_usd: Decimal
    window: str  # day, week, month, or e.g. 6h
    thresholds: tuple[Decimal, ...]
    webhook_url: str = ""
    webhook_secret: str = ""

    @property
    def scope_dict(self) -> dict[str, str]:
        return dict(self.scope)

    @property
    def tenant(self) -> str | None:
        """The tenant this budget belongs to; None for a budget over every tenant (operators only)."""
        return self.scope_dict.get("tenant")

    @property
    def rolling_hours(self) -> int | None:
        match = _ROLLING.match(self.window)
        return int(match.group(1)) if match else None


@dataclass(frozen=True)
class Window:
    kind: str
    start: dt.datetime  # aware, in the deployment's zone
    end: dt.datetime
    key: str  # what "once per window" counts by: the start for calendar windows, "rolling" otherwise

    def as_json(self, zone: str) -> dict:
        return {"kind": self.kind, "start": self.start.isoformat(), "end": self.end.isoformat(), "time_zone": zone}


def time_zone(config) -> ZoneInfo:
    name = config.get("extensions.spanledger_api.time_zone")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"extensions.spanledger_api.time_zone: {name!r} is not a known IANA time zone "
                          "(write e.g. UTC, Europe/Paris, America/New_York)") from None


def window_at(budget: Budget, now: dt.datetime, zone: ZoneInfo) -> Window:
    """The window of ``budget`` that contains ``now``."""
    local = now.astimezone(zone)
    hours = budget.rolling_hours
    if hours is not None:
        return Window(budget.window, local - dt.timedelta(hours=hours), local, "rolling")
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if budget.window == "day":
        start, end = midnight.date(), midnight.date() + dt.timedelta(days=1)
    elif budget.window == "week":
        start = midnight.date() - dt.timedelta(days=midnight.weekday())
        end = start + dt.timedelta(days=7)
    else:
        start = midnight.date().replace(day=1)
        end = (start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1))
    # midnight by the wall clock of the zone (a DST change makes some days 23 or 25 hours long)
    begin = dt.datetime.combine(start, dt.time(), zone)
    finish = dt.datetime.combine(end, dt.time(), zone)
    return Window(budget.window, begin, finish, begin.isoformat())


def parse_budgets(config) -> list[Budget]:
    """Every configured budget, or ConfigError naming the key path of what is wrong."""
    items = config.get(BUDGETS_KEY)
    budgets, names = [], set()
    for i, item in enumerate(items):
        where = f"{BUDGETS_KEY}[{i}]"
        unknown = set(item) - _KNOWN_KEYS
        if unknown:
            raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown key (known here: {', '.join(sorted(_KNOWN_KEYS))})")
        name = item.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"{where}.name: give each budget a name of 1-100 letters, digits or _ . : - (got {name!r})")
        if name in names:
            raise ConfigError(f"{where}.name: {name!r} is used by another budget; names must be unique")
        names.add(name)
        budgets.append(Budget(name=name, scope=_scope(item.get("scope"), where), limit_usd=_limit(item, where),
                              window=_window(item.get("window", "day"), where),
                              thresholds=_thresholds(item.get("thresholds"), where),
                              webhook_url=_text(item, "webhook_url", where),
                              webhook_secret=_text(item, "webhook_secret", where)))
    return budgets


def _scope(raw, where: str) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}.scope: expected a mapping like {{tenant: acme, project: p-7}}, got {raw!r}")
    out = []
    for key, value in raw.items():
        if key not in SCOPE_FIELDS:
            raise ConfigError(f"{where}.scope.{key}: not a budget scope (use {', '.join(SCOPE_FIELDS)})")
        if not isinstance(value, (str, int)) or isinstance(value, bool) or str(value) == "" or len(str(value)) > 1000:
            raise ConfigError(f"{where}.scope.{key}: expected a non-empty value, got {value!r}")
        out.append((key, str(value)))
    return tuple(sorted(out))


def _limit(item: dict, where: str) -> Decimal:
    raw = item.get("limit_usd")
    try:
        if isinstance(raw, bool) or raw is None:
            raise InvalidOperation
        limit = Decimal(str(raw))
    except InvalidOperation:
        raise ConfigError(f"{where}.limit_usd: expected an amount in USD like \"25.00\", got {raw!r}") from None
    if not limit.is_finite() or limit <= 0 or limit > Decimal("1e15"):
        raise ConfigError(f"{where}.limit_usd: must be a positive amount below 1e15, got {raw!r}")
    return limit


def _window(raw, where: str) -> str:
    text = str(raw).strip().lower()
    match = _ROLLING.match(text)
    if text in CALENDAR_WINDOWS or (match and 1 <= int(match.group(1)) <= 24 * 366):
        return text
    raise ConfigError(f"{where}.window: {raw!r} is not a window; use day, week, month, or rolling hours like 6h")


def _thresholds(raw, where: str) -> tuple[Decimal, ...]:
    if raw is None:
        return DEFAULT_THRESHOLDS
    if not isinstance(raw, list) or not raw or len(raw) > 20:
        raise ConfigError(f"{where}.thresholds: expected a list of 1-20 percentages like [80, 100], got {raw!r}")
    out = set()
    for j, value in enumerate(raw):
        text = str(value).strip().rstrip("%")
        try:
            if isinstance(value, bool):
                raise InvalidOperation
            percent = Decimal(text)
        except InvalidOperation:
            raise ConfigError(f"{where}.thresholds[{j}]: {value!r} is not a percentage") from None
        if not percent.is_finite() or percent <= 0 or percent > 1000:
            raise ConfigError(f"{where}.thresholds[{j}]: must be above 0 and at most 1000 (percent), got {value!r}")
        out.add(percent)
    return tuple(sorted(out))


def _text(item: dict, key: str, where: str) -> str:
    value = item.get(key, "")
    if not isinstance(value, str):
        raise ConfigError(f"{where}.{key}: expected text, got {value!r}")
    return value
