"""The budget loop: every few seconds, each budget's spend in its window; each threshold fires once.

A crossing is recorded in the fired log first (so it can never fire twice,
also across a restart), then announced three ways: a log line, a feed event
``alert`` to the subscribers who may see that budget, and a signed webhook.
Reads go through run_query as the operator (tenant=None), the budget's scope
bound as filters.  A rolling window has no end to count "once" by: its
threshold re-arms when spend falls back below it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
from decimal import Decimal
from urllib.parse import urlsplit

from ..config import ConfigError
from ..writer.segment_writer import Backoff
from .budgets import Budget, parse_budgets, time_zone, window_at
from .fired import FiredLog, crossing_key
from .spend import decimal_text, spent, status
from .webhook import Delivery, WebhookSender, WebhookSettings

log = logging.getLogger(__name__)

FIRED_FILE = "alerts/budget_alerts.json"


class BudgetEvaluator:
    def __init__(self, collector, config) -> None:
        self.collector = collector
        self.budgets: list[Budget] = parse_budgets(config)
        self.zone = time_zone(config)
        self.zone_name = config.get("extensions.spanledger_api.time_zone")
        ext = config.get("extensions.spanledger_budgets")
        self.interval_s = max(0.2, ext["evaluation_interval"])
        hook = ext["webhook"]
        self.default_url, self.default_secret = hook["url"], hook["secret"]
        for i, budget in enumerate(self.budgets):
            self._check_webhook(budget, i)
        self.counters = {"budget_evaluations": 0, "budget_evaluation_failures": 0, "budget_alerts_fired": 0,
                         "budget_webhooks_delivered": 0, "budget_webhook_retries": 0, "budget_webhook_failures": 0}
        self.fired = FiredLog(collector.data_dir / FIRED_FILE)
        settings = WebhookSettings(timeout_s=hook["timeout"], max_attempts=max(1, hook["max_attempts"]),
                                   backoff=Backoff(initial_s=hook["initial_backoff"], max_s=hook["max_backoff"]))
        self.sender = WebhookSender(settings, self.counters, self._delivered)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _check_webhook(self, budget: Budget, index: int) -> None:
        url, secret = self.webhook_for(budget)
        where = f"extensions.spanledger_budgets.budgets[{index}]" if budget.webhook_url else \
            "extensions.spanledger_budgets.webhook"
        if url and urlsplit(url).scheme not in ("http", "https"):
            raise ConfigError(f"{where}: the webhook url must start with https:// (or http://), got a {urlsplit(url).scheme!r} url")
        if url and len(secret) < 16:
            raise ConfigError(f"{where}: a webhook needs a secret of at least 16 characters to sign its requests "
                              "(webhook_secret / webhook.secret)")

    def webhook_for(self, budget: Budget) -> tuple[str, str]:
        return (budget.webhook_url or self.default_url, budget.webhook_secret or self.default_secret)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        if not self.budgets:
            return
        self.sender.start()
        by_name = {b.name: b for b in self.budgets}
        for key, payload in self.fired.undelivered():  # fired before a restart, never delivered
            budget = by_name.get(payload.get("budget"))
            if budget is not None:
                self._send_webhook(budget, key, payload)
        self._thread = threading.Thread(target=self._run, name="spanledger-budgets", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)
            self.sender.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.collector.store() is not None:
                self.evaluate_once()
            self._stop.wait(self.interval_s)

    # -- evaluation ---------------------------------------------------------------------------------
    def evaluate_once(self, now: dt.datetime | None = None) -> None:
        now = now or dt.datetime.now(dt.timezone.utc)
        self.fired.prune(now)
        for budget in self.budgets:
            window = window_at(budget, now, self.zone)
            try:
                amount = spent(self.collector, budget, window, tenant=None)
            except Exception as exc:  # the store failing: try again at the next round
                self.counters["budget_evaluation_failures"] += 1
                log.warning("budget %s: evaluation failed (%s); retrying in %.0fs", budget.name, exc, self.interval_s)
                continue
            self.counters["budget_evaluations"] += 1
            percent = amount * 100 / budget.limit_usd
            for threshold in budget.thresholds:
                key = crossing_key(budget.name, window.key, str(threshold))
                if percent >= threshold:
                    if not self.fired.has(key):
                        self._fire(budget, window, threshold, amount, percent, key, now)
                elif window.key == "rolling":
                    self.fired.forget(key)

    def _fire(self, budget: Budget, window, threshold: Decimal, amount: Decimal, percent: Decimal, key: str,
              now: dt.datetime) -> None:
        event_id = hashlib.sha256(f"{key}|{now.isoformat() if window.key == 'rolling' else ''}".encode()).hexdigest()[:32]
        payload = {"id": event_id, "type": "budget.threshold_crossed", "budget": budget.name,
                   "scope": budget.scope_dict, "threshold_percent": float(threshold),
                   "limit_usd": decimal_text(budget.limit_usd), "spent_usd": decimal_text(amount),
                   "percent": float(round(percent, 4)), "window": window.as_json(self.zone_name),
                   "crossed_at": now.isoformat()}
        if not self.fired.record(key, payload):
            return
        self.counters["budget_alerts_fired"] += 1
        log.warning("budget %s crossed %s%% of %s USD in its %s window from %s: spent %s USD",
                    budget.name, threshold, payload["limit_usd"], budget.window, window.start.isoformat(),
                    payload["spent_usd"])
        feed = getattr(self.collector, "feed", None)
        if feed is not None:
            scope = budget.scope_dict
            feed.publish("alert", payload, lambda _tenant, filters: _scope_visible(scope, filters), budget.tenant)
        self._send_webhook(budget, key, payload)

    def _send_webhook(self, budget: Budget, key: str, payload: dict) -> None:
        url, secret = self.webhook_for(budget)
        if url:
            self.sender.send(Delivery(key, url, secret, payload))
        else:
            self.fired.mark(key, delivered=True)  # nothing to deliver to

    def _delivered(self, key: str, delivered: bool) -> None:
        self.fired.mark(key, delivered=delivered, failed=not delivered)

    # -- reading ------------------------------------------------------------------------------------
    def visible(self, tenant: str | None) -> list[Budget]:
        """Operators see every budget; a tenant only the budgets scoped to it."""
        return [b for b in self.budgets if tenant is None or b.tenant == tenant]

    def statuses(self, tenant: str | None, now: dt.datetime | None = None) -> list[dict]:
        now = now or dt.datetime.now(dt.timezone.utc)
        out = []
        for budget in self.visible(tenant):
            window = window_at(budget, now, self.zone)
            fired = [Decimal(t) for t in self.fired.fired_thresholds(budget.name, window.key)]
            out.append(status(self.collector, budget, window, now, self.zone_name, tenant=tenant, fired=sorted(fired)))
        return out


def _scope_visible(scope: dict[str, str], filters: dict[str, list[str]]) -> bool:
    """A subscriber filtering on a scope field sees the alert only if the budget's value is among its values."""
    return all(scope[field] in filters[field] for field in scope if field in filters)
