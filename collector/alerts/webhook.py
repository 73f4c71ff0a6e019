"""Webhook delivery for budget alerts: signed, retried with backoff and jitter, counted.

Each POST carries the JSON alert and three headers:

    X-Spanledger-Event-Id:  the crossing's id (the same on every retry and after a restart)
    X-Spanledger-Timestamp: Unix seconds when this attempt was signed
    X-Spanledger-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>

A receiver recomputes the HMAC over the timestamp and the raw body, compares
in constant time, and refuses timestamps more than a few minutes old (that
stops replays of a captured request).  Any answer but 2xx is retried, with
exponential backoff and full jitter, up to ``max_attempts``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass

import httpx

from ..writer.segment_writer import Backoff

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Spanledger-Signature"
TIMESTAMP_HEADER = "X-Spanledger-Timestamp"
EVENT_ID_HEADER = "X-Spanledger-Event-Id"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, headers, body: bytes, *, now: float | None = None, tolerance_s: int = 300) -> bool:
    """What a receiver does (used by the tests and shown in docs/budgets.md)."""
    try:
        timestamp = int(headers[TIMESTAMP_HEADER])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), headers.get(SIGNATURE_HEADER, ""))


@dataclass(frozen=True)
class WebhookSettings:
    timeout_s: float = 5.0
    max_attempts: int = 8
    backoff: Backoff = Backoff(initial_s=0.5, max_s=60.0)


@dataclass(frozen=True)
class Delivery:
    key: str
    url: str
    secret: str
    payload: dict


class WebhookSender:
    """One thread delivering alerts in order; ``on_done(key, delivered)`` reports each outcome."""

    def __init__(self, settings: WebhookSettings, counters: dict, on_done) -> None:
        self.settings = settings
        self.counters = counters
        self.on_done = on_done
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spanledger-webhooks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._queue.put(None)
        self._thread.join(10)

    def send(self, delivery: Delivery) -> None:
        self._queue.put(delivery)

    def _run(self) -> None:
        with httpx.Client(timeout=self.settings.timeout_s, follow_redirects=False) as client:
            while not self._stop.is_set():
                delivery = self._queue.get()
                if delivery is None:
                    return
                self._deliver(client, delivery)

    def _deliver(self, client: httpx.Client, delivery: Delivery) -> None:
        body = json.dumps(delivery.payload, sort_keys=True).encode()
        for attempt in range(max(1, self.settings.max_attempts)):
            if attempt:
                self.counters["budget_webhook_retries"] += 1
                if self._stop.wait(self.settings.backoff.delay(attempt - 1)):
                    return  # shutting down: still undelivered, so it is sent again at the next start
            timestamp = int(time.time())
            headers = {"Content-Type": "application/json", EVENT_ID_HEADER: delivery.payload["id"],
                       TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(delivery.secret, timestamp, body)}
            try:
                response = client.post(delivery.url, content=body, headers=headers)
                if 200 <= response.status_code < 300:
                    self.counters["budget_webhooks_delivered"] += 1
                    self.on_done(delivery.key, True)
                    return
                reason = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                reason = type(exc).__name__
            log.warning("budget alert webhook %s: attempt %d failed (%s)", delivery.payload["id"], attempt + 1, reason)
        self.counters["budget_webhook_failures"] += 1
        log.error("budget alert webhook %s: giving up after %d attempts", delivery.payload["id"],
                  self.settings.max_attempts)
        self.on_done(delivery.key, False)
