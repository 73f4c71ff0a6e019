"""Budgets at the collector: windows, exact spend, crossings fired once (also across a restart), signed
webhooks with retries, the feed's alert event and GET /v1/budgets — with real parts throughout."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import stat
import time
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import pytest
from webhook_support import SECRET, WebhookReceiver

from feed_support import collector_factory  # noqa: F401 - the fixture
from feed_support import ACME, GLOBEX, OPERATOR, TENANT_CONFIG, SpanSender, SseReader, feed_app, feed_server, headers

from spanledger.collector.alerts.budgets import Budget, parse_budgets, window_at
from spanledger.collector.alerts.evaluator import FIRED_FILE
from spanledger.collector.alerts.spend import hour_bounds, spent
from spanledger.collector.alerts.webhook import sign, verify
from spanledger.collector.config import ConfigError, load_config

pytestmark = pytest.mark.timeout(120)


def budget_config(url: str, budgets: str, max_attempts: int = 8) -> str:
    return TENANT_CONFIG + f"""
  spanledger_api:
    time_zone: Europe/Paris
  spanledger_budgets:
    evaluation_interval: 100ms
    webhook: {{url: "{url}", secret: "{SECRET}", max_attempts: {max_attempts}, initial_backoff: 20ms, max_backoff: 100ms}}
    budgets:
{budgets}
"""


ACME_DAILY = """      - name: acme-daily
        scope: {tenant: acme}
        limit_usd: "1.00"
        window: day
"""
GLOBEX_MONTH = """      - name: globex-monthly
        scope: {tenant: globex, agent: planner}
        limit_usd: 100
        window: month
        thresholds: [50]
"""


def _wait(predicate, timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _spend(collector, token: str, cost: str, n: int = 1, agent: str = "planner") -> None:
    sender = SpanSender(collector, token=token)
    for _ in range(n):
        sender.llm_call(agent=agent, cost=cost)
    sender.flush()
    sender.close()


# -- configuration ---------------------------------------------------------------------------------
@pytest.mark.parametrize("budget, message", [
    ("{name: a, limit_usd: -1}", "budgets[0].limit_usd: must be a positive amount"),
    ("{name: a, limit_usd: 1, window: fortnight}", "budgets[0].window: 'fortnight' is not a window"),
    ("{name: a, limit_usd: 1, scope: {team: x}}", "budgets[0].scope.team: not a budget scope"),
    ("{name: a, limit_usd: 1, thresholds: [0]}", "budgets[0].thresholds[0]: must be above 0"),
    ("{name: a, limit_usd: 1, colour: red}", "budgets[0].colour: unknown key"),
    ("{limit_usd: 1}", "budgets[0].name: give each budget a name"),
    ("{name: a, limit_usd: 1, webhook_url: 'file:///etc/passwd', webhook_secret: 0123456789abcdef0}",
     "the webhook url must start with https://"),
    ("{name: a, limit_usd: 1, webhook_url: 'https://example.invalid/h'}", "needs a secret of at least 16"),
])
def test_a_bad_budget_stops_start_up_with_the_key_path(budget, message, tmp_path):
    from spanledger.collector.app import Collector, Overrides

    config = load_config(text=f"extensions:\n  spanledger_budgets:\n    budgets:\n      - {budget}\n")
    with pytest.raises(ConfigError, match="extensions.spanledger_budgets"):
        Collector(config, Overrides(data_dir=str(tmp_path)))
    with pytest.raises(ConfigError) as error:
        Collector(config, Overrides(data_dir=str(tmp_path)))
    assert message in str(error.value)


def test_windows_start_at_midnight_in_the_deployment_zone_including_dst():
    zone = ZoneInfo("Europe/Paris")
    budgets = parse_budgets(load_config(text="extensions:\n  spanledger_budgets:\n    budgets:\n"
                                             "      - {name: d, limit_usd: 1, window: day}\n"
                                             "      - {name: w, limit_usd: 1, window: week}\n"
                                             "      - {name: m, limit_usd: 1, window: month}\n"
                                             "      - {name: r, limit_usd: 1, window: 6h}\n"))
    day, week, month, rolling = budgets
    now = dt.datetime(2026, 3, 29, 12, 0, tzinfo=dt.timezone.utc)  # the day Paris moves to summer time
    w = window_at(day, now, zone)
    assert w.start.isoformat() == "2026-03-29T00:00:00+01:00" and w.end.isoformat() == "2026-03-30T00:00:00+02:00"
    assert w.end.astimezone(dt.timezone.utc) - w.start.astimezone(dt.timezone.utc) == dt.timedelta(hours=23)
    assert window_at(week, now, zone).start.isoformat() == "2026-03-23T00:00:00+01:00"  # a Monday
    m = window_at(month, dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.timezone.utc), zone)  # already January in Paris
    assert m.start.isoformat() == "2027-01-01T00:00:00+01:00" and m.end.isoformat() == "2027-02-01T00:00:00+01:00"
    r = window_at(rolling, now, zone)
    assert r.key == "rolling" and r.end - r.start == dt.timedelta(hours=6)
    assert hour_bounds(10, 20) == (10, 10)  # no whole hour inside: all raw
    hour = 3600 * 10**9
    assert hour_bounds(hour + 5, 4 * hour + 7) == (2 * hour, 4 * hour)


def test_spend_is_exact_over_rollup_hours_and_raw_edges(collector_factory):
    collector = collector_factory(TENANT_CONFIG)
    now_ns = time.time_ns()
    hour = 3600 * 10**9
    sender = SpanSender(collector, token=ACME)
    # spread over the last five hours, including the partial first and current hours
    costs = {}
    for i, offset in enumerate([0, hour // 3, hour + 7, 2 * hour + hour // 2, 4 * hour + 11, int(4.9 * hour)]):
        cost = f"0.{i + 1:03d}000000{i}"
        sender.llm_call(agent="planner", cost=cost, start_ns=now_ns - offset)
        costs[offset] = Decimal(cost)
    sender.llm_call(agent="planner", cost="5", start_ns=now_ns - 6 * hour)  # outside the window
    sender.flush()
    sender.close()
    from collector_support import wait_stored

    wait_stored(collector, 7)
    budget = Budget("r", (("tenant", "acme"),), Decimal(1), "5h", (Decimal(80),))
    window = window_at(budget, dt.datetime.fromtimestamp(now_ns / 1e9 + 1, dt.timezone.utc), ZoneInfo("UTC"))
    assert spent(collector, budget, window, tenant=None) == sum(costs.values())
    assert spent(collector, budget, window, tenant="acme") == sum(costs.values())
    assert spent(collector, budget, window, tenant="globex") == 0  # the tenant's confined handle sees nothing


# -- crossings, webhooks, the feed, restarts ------------------------------------------------------------
def test_each_crossing_is_delivered_once_signed_and_not_again_after_a_restart(collector_factory, tmp_path):
    receiver = WebhookReceiver()
    data_dir = tmp_path / "data"
    try:
        collector = collector_factory(budget_config(receiver.url, ACME_DAILY + GLOBEX_MONTH), data_dir=data_dir)
        _spend(collector, ACME, "0.45")
        _spend(collector, GLOBEX, "0.45")  # another tenant's spend never counts for acme
        time.sleep(0.5)
        assert receiver.delivered == []
        _spend(collector, ACME, "0.40")  # 85%: crosses 80
        _wait(lambda: len(receiver.delivered) == 1, what="the 80% alert")
        _spend(collector, ACME, "0.20")  # 105%: crosses 100
        _wait(lambda: len(receiver.delivered) == 2, what="the 100% alert")
        time.sleep(0.5)  # evaluations keep running: nothing fires twice
        collector.stop(timeout_s=10)
        fired_file = data_dir / FIRED_FILE
        assert stat.S_IMODE(os.stat(fired_file).st_mode) == 0o600

        again = collector_factory(budget_config(receiver.url, ACME_DAILY + GLOBEX_MONTH), data_dir=data_dir)
        _spend(again, ACME, "0.01")
        _wait(lambda: again.stats_snapshot()["budget_evaluations"] > 10, what="evaluations after the restart")
        assert [(d["budget"], d["threshold_percent"]) for d in receiver.delivered] == [("acme-daily", 80.0),
                                                                                        ("acme-daily", 100.0)]
        assert all(a["verified"] for a in receiver.attempts) and len(receiver.attempts) == 2
        first = receiver.delivered[0]
        assert first["scope"] == {"tenant": "acme"} and first["limit_usd"] == "1"
        assert Decimal(first["spent_usd"]) == Decimal("0.85")
        assert first["window"]["time_zone"] == "Europe/Paris" and first["window"]["kind"] == "day"
        assert again.stats_snapshot()["budget_webhook_failures"] == 0
    finally:
        receiver.close()


def test_a_failing_webhook_is_retried_and_counted(collector_factory):
    receiver = WebhookReceiver(fail_first=3)
    try:
        collector = collector_factory(budget_config(receiver.url, ACME_DAILY))
        _spend(collector, ACME, "2")  # crosses 80% and 100% at once: two alerts
        _wait(lambda: len(receiver.delivered) == 2, what="delivery after the failures")
        stats = collector.stats_snapshot()
        assert len(receiver.attempts) == 5 and stats["budget_webhook_retries"] == 3
        assert stats["budget_webhooks_delivered"] == 2 and stats["budget_webhook_failures"] == 0
        first_ids = {a["headers"]["X-Spanledger-Event-Id"] for a in receiver.attempts[:4]}
        assert len(first_ids) == 1  # one crossing keeps its id through its retries
        assert receiver.attempts[4]["headers"]["X-Spanledger-Event-Id"] not in first_ids
    finally:
        receiver.close()


def test_a_webhook_that_keeps_failing_is_given_up_and_counted(collector_factory):
    broken = WebhookReceiver(always_fail=True)
    try:
        other = collector_factory(budget_config(broken.url, ACME_DAILY, max_attempts=3))
        _spend(other, ACME, "2")
        _wait(lambda: other.stats_snapshot()["budget_webhook_failures"] == 2, what="both deliveries given up")
        assert len(broken.attempts) == 6 and other.stats_snapshot()["budget_webhook_retries"] == 4
    finally:
        broken.close()


def test_an_undelivered_crossing_is_delivered_once_after_a_restart(collector_factory, tmp_path):
    data_dir = tmp_path / "data"
    down = WebhookReceiver(always_fail=True)
    collector = collector_factory(budget_config(down.url, ACME_DAILY, max_attempts=1000), data_dir=data_dir)
    _spend(collector, ACME, "2")
    _wait(lambda: len(down.attempts) >= 2, what="failed attempts")
    collector.stop(timeout_s=10)  # stops mid-retry: the crossing stays undelivered
    down.close()
    up = WebhookReceiver()
    try:
        again = collector_factory(budget_config(up.url, ACME_DAILY), data_dir=data_dir)
        _wait(lambda: len(up.delivered) == 2, what="both crossings after the restart")
        time.sleep(0.5)
        assert sorted(d["threshold_percent"] for d in up.delivered) == [80.0, 100.0]
        assert again.stats_snapshot()["budget_alerts_fired"] == 0  # re-sent, not fired again
    finally:
        up.close()


def test_signatures_bind_the_body_and_the_timestamp():
    body = b'{"a": 1}'
    now = int(time.time())
    good = {"X-Spanledger-Timestamp": str(now), "X-Spanledger-Signature": sign(SECRET, now, body)}
    assert verify(SECRET, good, body)
    assert not verify(SECRET, good, body + b" ")
    assert not verify("another-secret-0123456", good, body)
    old = now - 3600
    assert not verify(SECRET, {"X-Spanledger-Timestamp": str(old), "X-Spanledger-Signature": sign(SECRET, old, body)},
                      body)


def test_budgets_endpoint_and_alert_events_respect_the_tenant(collector_factory):
    receiver = WebhookReceiver()
    collector = collector_factory(budget_config(receiver.url, ACME_DAILY + GLOBEX_MONTH))
    server = feed_server(feed_app(collector))
    url = server.url

    async def scenario():
        async with httpx.AsyncClient(timeout=30) as client:
            readers = {}
            for name, token in (("acme", ACME), ("globex", GLOBEX), ("operator", OPERATOR)):
                response = await client.send(client.build_request("GET", f"{url}/v1/feed", headers=headers(token)),
                                             stream=True)
                readers[name] = SseReader(response)
                asyncio.create_task(readers[name].run())
            while collector.feed.subscriber_count() < 3:
                await asyncio.sleep(0.02)
            await asyncio.to_thread(_spend, collector, ACME, "0.9")
            await asyncio.to_thread(_spend, collector, GLOBEX, "60")
            deadline = time.monotonic() + 30
            while len(readers["operator"].of("alert")) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            listing = {name: (await client.get(f"{url}/v1/budgets", headers=headers(token))).json()
                       for name, token in (("acme", ACME), ("globex", GLOBEX), ("operator", OPERATOR))}
            unauthorized = await client.get(f"{url}/v1/budgets")
            for reader in readers.values():
                await reader.response.aclose()
            return readers, listing, unauthorized

    try:
        readers, listing, unauthorized = asyncio.run(scenario())
    finally:
        server.stop()
        receiver.close()
    assert [e.data["budget"] for e in readers["acme"].of("alert")] == ["acme-daily"]
    assert [e.data["budget"] for e in readers["globex"].of("alert")] == ["globex-monthly"]
    assert sorted(e.data["budget"] for e in readers["operator"].of("alert")) == ["acme-daily", "globex-monthly"]
    assert [b["name"] for b in listing["acme"]["budgets"]] == ["acme-daily"]
    assert [b["name"] for b in listing["globex"]["budgets"]] == ["globex-monthly"]
    assert sorted(b["name"] for b in listing["operator"]["budgets"]) == ["acme-daily", "globex-monthly"]
    acme = listing["acme"]["budgets"][0]
    assert acme["spent_usd"] == "0.9" and acme["remaining_usd"] == "0.1" and acme["percent"] == 90.0
    assert acme["fired"] == [80.0] and acme["window"]["time_zone"] == "Europe/Paris"
    start = dt.datetime.fromisoformat(acme["window"]["start"])
    assert start.utcoffset() in (dt.timedelta(hours=1), dt.timedelta(hours=2)) and (start.hour, start.minute) == (0, 0)
    assert Decimal(acme["projected_usd"]) >= Decimal(acme["spent_usd"])
    assert unauthorized.status_code == 401 and "bearer token" in unauthorized.json()["error"]


def test_a_rolling_window_fires_once_while_over_and_re_arms_when_spend_falls_back(collector_factory):
    config = TENANT_CONFIG + """
  spanledger_budgets:
    evaluation_interval: 1h
    budgets:
      - {name: planner-2h, scope: {agent: planner}, limit_usd: 1, window: 2h, thresholds: [50]}
"""
    collector = collector_factory(config)
    sender = SpanSender(collector, token=ACME)
    sender.llm_call(agent="planner", cost="0.6")
    sender.llm_call(agent="coder", cost="5")  # outside the scope
    sender.flush()
    sender.close()
    from collector_support import wait_stored

    wait_stored(collector, 2)
    evaluator = collector.budgets
    now = dt.datetime.now(dt.timezone.utc)
    evaluator.evaluate_once(now)
    evaluator.evaluate_once(now + dt.timedelta(minutes=30))  # still over: nothing new
    assert evaluator.counters["budget_alerts_fired"] == 1
    evaluator.evaluate_once(now + dt.timedelta(hours=3))  # the span has left the window: re-armed
    assert evaluator.counters["budget_alerts_fired"] == 1
    evaluator.evaluate_once(now)  # over again (as if spend came back): fires again
    assert evaluator.counters["budget_alerts_fired"] == 2
    status = evaluator.statuses(None, now)[0]
    assert status["spent_usd"] == "0.6" and status["projected_usd"] == "0.6" and status["window"]["kind"] == "2h"
