"""In-process budgets fed by the spans' costs: remaining, exceeded, threshold callbacks.

    budget = spanledger.BudgetTracker(10, window="daily", per="user", on_threshold=alert)
    spanledger.configure(span_processors=[budget])      # or spanledger.add_span_processor(budget)
    budget.remaining("user-42"), budget.exceeded("user-42")

A tracker is a SpanProcessor: every ended span carrying ``spanledger.cost.total_usd``
that matches ``match`` is added to the budget of its ``per`` key (service,
agent, user, project, session, model or any attribute name; None = one budget).
Windows are calendar days in UTC (``"daily"``) or tumbling windows of any
``timedelta`` aligned to the Unix epoch; a span is counted in the window its end
time falls in (late spans of a closed window are ignored).  Each threshold
(fraction of the limit, default 0.8 and 1.0) fires its callback once per key per
window, outside the tracker's lock; a failing callback is logged, never raised.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Literal

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from spanledger import semconv as sc
from spanledger._safe import internal_error, invalid_input, log_once

__all__ = ["BudgetTracker", "BudgetAlert"]

_SCOPES: Mapping[str, tuple[str, ...]] = {
    "service": ("service.name",),
    "agent": (sc.GEN_AI_AGENT_NAME, sc.GEN_AI_AGENT_ID),
    "user": (sc.USER_ID,),
    "project": (sc.PROJECT_ID,),
    "session": (sc.SESSION_ID,),
    "model": (sc.GEN_AI_RESPONSE_MODEL, sc.GEN_AI_REQUEST_MODEL),
}
_DAY = timedelta(days=1)
_MAX_KEYS = 100_000


@dataclass(frozen=True)
class BudgetAlert:
    """Passed to ``on_threshold`` when spending crosses ``threshold`` x ``limit_usd``."""

    budget: str
    key: str | None
    threshold: float
    spent_usd: Decimal
    limit_usd: Decimal
    window_start: datetime
    window_end: datetime

    @property
    def exceeded(self) -> bool:
        return self.spent_usd >= self.limit_usd


@dataclass
class _Window:
    index: int
    spent: Decimal = Decimal(0)
    fired: set[float] = field(default_factory=set)


def _span_value(span: ReadableSpan, names: tuple[str, ...]) -> str | None:
    attributes = span.attributes or {}
    for name in names:
        value = attributes.get(name)
        if value is None and name == "service.name" and span.resource is not None:
            value = span.resource.attributes.get(name)
        if value is not None:
            return str(value)
    return None


class BudgetTracker(SpanProcessor):
    """A spending limit over a window, optionally one per scope key; thread-safe."""

    def __init__(
        self,
        limit_usd: Decimal | str | float | int,
        *,
        name: str = "budget",
        window: Literal["daily"] | timedelta = "daily",
        per: str | None = None,
        match: Mapping[str, str] | None = None,
        thresholds: Iterable[float] = (0.8, 1.0),
        on_threshold: Callable[[BudgetAlert], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        try:
            self.limit_usd = limit_usd if isinstance(limit_usd, Decimal) else Decimal(str(limit_usd))
        except InvalidOperation:
            raise ValueError(f"BudgetTracker limit_usd must be a number of USD, got {limit_usd!r}") from None
        if not self.limit_usd.is_finite() or self.limit_usd <= 0:
            raise ValueError(f"BudgetTracker limit_usd must be positive, got {limit_usd!r}")
        if window == "daily":
            window = _DAY
        if not isinstance(window, timedelta) or window <= timedelta(0):
            raise ValueError(f"BudgetTracker window must be 'daily' or a positive timedelta, got {window!r}")
        self.name = name
        self.window = window
        self._window_s = window.total_seconds()
        self._per = _SCOPES.get(per, (per,)) if per else None
        self._match = {_SCOPES.get(key, (key,)): str(value) for key, value in (match or {}).items()}
        self.thresholds = tuple(sorted(float(t) for t in thresholds))
        self.on_threshold = on_threshold
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str | None, _Window] = {}

    # -- feeding ---------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        try:
            raw = (span.attributes or {}).get(sc.COST_TOTAL_USD)
            if raw is None:
                return
            for names, expected in self._match.items():
                if _span_value(span, names) != expected:
                    return
            key = _span_value(span, self._per) if self._per else None
            at = span.end_time / 1e9 if span.end_time else None
            self.track(Decimal(str(raw)), key=key, at=at)
        except Exception:  # noqa: BLE001
            internal_error("BudgetTracker.on_end")

    def track(self, cost_usd: Decimal | str | float | int, *, key: str | None = None, at: float | None = None) -> None:
        """Add a cost by hand (spans do this automatically); ``at`` is a Unix time, default now."""
        try:
            cost = cost_usd if isinstance(cost_usd, Decimal) else Decimal(str(cost_usd))
        except InvalidOperation:
            invalid_input("budget", "BudgetTracker.track ignored a non-numeric cost %r", cost_usd)
            return
        if not cost.is_finite() or cost < 0:
            invalid_input("budget", "BudgetTracker.track ignored an invalid cost %r", cost_usd)
            return
        index = self._index(self._clock() if at is None else at)
        alerts: list[BudgetAlert] = []
        with self._lock:
            state = self._state(key, index)
            if state is None:
                return  # a late span of a window already closed
            before, state.spent = state.spent, state.spent + cost
            for threshold in self.thresholds:
                line = self.limit_usd * Decimal(str(threshold))
                if threshold not in state.fired and before < line <= state.spent:
                    state.fired.add(threshold)
                    alerts.append(self._alert(key, threshold, state))
        for alert in alerts:
            self._fire(alert)

    # -- reading -----------------------------------------------------------------
    def spent(self, key: str | None = None) -> Decimal:
        """USD spent by ``key`` in the current window."""
        with self._lock:
            state = self._windows.get(key)
            return state.spent if state is not None and state.index == self._index(self._clock()) else Decimal(0)

    def remaining(self, key: str | None = None) -> Decimal:
        """USD left in the current window (0 once exceeded)."""
        return max(self.limit_usd - self.spent(key), Decimal(0))

    def exceeded(self, key: str | None = None) -> bool:
        return self.spent(key) >= self.limit_usd

    def window_bounds(self, at: float | None = None) -> tuple[datetime, datetime]:
        """The current (or ``at``'s) window as UTC datetimes."""
        start = self._index(self._clock() if at is None else at) * self._window_s
        return datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(start + self._window_s, UTC)

    # -- internals ---------------------------------------------------------------
    def _index(self, at: float) -> int:
        return int(at // self._window_s)

    def _state(self, key: str | None, index: int) -> _Window | None:
        state = self._windows.get(key)
        if state is None or state.index < index:
            if len(self._windows) >= _MAX_KEYS:  # forget keys whose window is over
                self._windows = {k: w for k, w in self._windows.items() if w.index >= index}
            state = self._windows[key] = _Window(index)
        return state if state.index == index else None

    def _alert(self, key: str | None, threshold: float, state: _Window) -> BudgetAlert:
        start = datetime.fromtimestamp(state.index * self._window_s, UTC)
        return BudgetAlert(self.name, key, threshold, state.spent, self.limit_usd, start, start + self.window)

    def _fire(self, alert: BudgetAlert) -> None:
        if self.on_threshold is None:
            return
        try:
            self.on_threshold(alert)
        except Exception:  # noqa: BLE001 - the user's callback must not break span processing
            log_once("budget.callback:" + self.name, "spanledger: budget %r callback raised", self.name, exc_info=True)

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def __repr__(self) -> str:
        return f"BudgetTracker(name={self.name!r}, limit_usd={self.limit_usd}, window={self.window})"
