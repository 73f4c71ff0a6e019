"""Budgets fed by span costs: windows, scopes, thresholds fired once per crossing, thread safety."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

import spanledger
from spanledger.budget import BudgetAlert, BudgetTracker


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def spend(model_cost_tokens: int, user: str | None = None) -> None:
    """One gpt-4o call: 1M input tokens cost exactly $2.50."""
    with spanledger.associate(user_id=user):
        with spanledger.llm_call("gpt-4o", provider="openai") as call:
            call.set_usage(input_tokens=model_cost_tokens, output_tokens=0)


def test_spans_count_in_the_window_they_ended_in(captured_spans) -> None:
    clock = FakeClock(now=3.0)  # the fixture's spans end at 1970-01-01T00:00:0Ns
    budget = BudgetTracker("10", clock=clock)
    captured_spans.add_processor(budget)
    spend(1_000_000)  # $2.50
    assert budget.spent() == Decimal("2.5") and budget.remaining() == Decimal("7.5")
    clock.now = 1_700_000_000.0  # years later: that day's spending is history
    assert budget.spent() == Decimal(0)


def test_thresholds_fire_once_per_window(captured_spans) -> None:
    clock = FakeClock()
    alerts: list[BudgetAlert] = []
    budget = BudgetTracker(10, window="daily", on_threshold=alerts.append, clock=clock)
    for _ in range(3):
        budget.track("2.5")  # 7.50 < 8.00
    assert alerts == [] and budget.remaining() == Decimal("2.5") and not budget.exceeded()
    budget.track("1")  # 8.50: crosses 80%
    budget.track("0.5")  # 9.00
    budget.track(Decimal("1.5"))  # 10.50: crosses 100%
    budget.track("3")  # still over: nothing new
    assert [(a.threshold, a.spent_usd) for a in alerts] == [(0.8, Decimal("8.5")), (1.0, Decimal("10.5"))]
    assert budget.exceeded() and budget.remaining() == Decimal(0) and alerts[1].exceeded
    start, end = budget.window_bounds()
    assert (alerts[0].window_start, alerts[0].window_end) == (start, end) and end - start == timedelta(days=1)
    assert start.hour == 0 and start.minute == 0  # calendar day, UTC
    clock.now += 86_400  # the next day: a fresh budget, thresholds re-armed
    assert budget.spent() == Decimal(0) and not budget.exceeded()
    budget.track("9")
    assert [a.threshold for a in alerts] == [0.8, 1.0, 0.8]


def test_per_user_budgets_fed_by_spans(captured_spans) -> None:
    alerts: list[BudgetAlert] = []
    budget = BudgetTracker("5", per="user", window=timedelta(hours=1), on_threshold=alerts.append)
    captured_spans.add_processor(budget)
    budget._clock = lambda: 3.0  # the fixture's spans end at 1970-01-01T00:00:0Ns; stay in that hour
    spend(1_000_000, user="alice")  # $2.50
    spend(1_000_000, user="alice")  # $5.00: 80% and 100% at once
    spend(400_000, user="bob")  # $1.00
    assert budget.spent("alice") == Decimal("5.0") and budget.exceeded("alice")
    assert budget.remaining("bob") == Decimal("4.0")
    assert [(a.key, a.threshold) for a in alerts] == [("alice", 0.8), ("alice", 1.0)]


def test_match_filters_and_agent_scope(captured_spans) -> None:
    budget = BudgetTracker(1, per="agent", match={"project": "p-1"}, clock=lambda: 3.0)
    captured_spans.add_processor(budget)
    with spanledger.associate(project_id="p-1"):
        with spanledger.agent_run("planner"):
            spend(100_000)  # $0.25 counted for planner
    with spanledger.associate(project_id="p-2"):
        with spanledger.agent_run("planner"):
            spend(100_000)  # other project: ignored
    spend(100_000)  # no project: ignored
    assert budget.spent("planner") == Decimal("0.25")


def test_threads_do_not_lose_money(captured_spans) -> None:
    from concurrent.futures import ThreadPoolExecutor

    budget = BudgetTracker(1_000, clock=lambda: 0.0)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: budget.track("0.01"), range(2_000)))
    assert budget.spent() == Decimal("20.00")


def test_callback_errors_and_bad_input_are_contained() -> None:
    def explode(alert: BudgetAlert) -> None:
        raise RuntimeError("pager down")

    budget = BudgetTracker(1, on_threshold=explode, clock=lambda: 0.0)
    budget.track("2")  # the callback raises; tracking goes on
    budget.track("not money")
    budget.track(-1)
    assert budget.spent() == Decimal(2)
    with pytest.raises(ValueError, match="positive"):
        BudgetTracker(0)
    with pytest.raises(ValueError, match="window"):
        BudgetTracker(1, window="weekly")  # type: ignore[arg-type]


def test_configure_with_budgets() -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    budget = BudgetTracker(100, per="service")
    spanledger.configure(service_name="svc-a", exporter=InMemorySpanExporter(), span_processors=[budget],
                         set_global_provider=False)  # fmt: skip
    try:
        spend(1_000_000)
    finally:
        spanledger.shutdown()
    assert budget.spent("svc-a") == Decimal("2.5")
