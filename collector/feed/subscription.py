"""One subscriber of the live feed: a bounded queue filled by the hub's thread, drained by its connection.

The hub never waits for a subscriber: ``push`` appends a round of events or,
when the queue still holds ``max_queued`` from before, marks the subscription
dropped and empties it, so a client that stops
reading costs a bounded amount of memory and slows no one.  The connection
(an asyncio task) is woken once per round of events, not once per event.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import threading

from .rows import units_to_text


class FeedEvent:
    """One event, rendered once for every subscriber: ``sse`` bytes and ``ws`` text."""

    __slots__ = ("id", "kind", "data", "sse", "_ws", "cost_units", "input_tokens", "output_tokens", "groups",
                 "stored_at")

    def __init__(self, event_id: int, kind: str, data_json: str, groups: frozenset[int], *, cost_units: int = 0,
                 input_tokens: int = 0, output_tokens: int = 0, stored_at: float = 0.0) -> None:
        self.id = event_id
        self.kind = kind
        self.data = data_json
        self.sse = f"id: {event_id}\nevent: {kind}\ndata: {data_json}\n\n".encode()
        self._ws: str | None = None
        self.cost_units = cost_units
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.groups = groups
        self.stored_at = stored_at  # time.monotonic() when its segment was stored (for bench/bench_feed.py)

    @property
    def ws(self) -> str:
        """The WebSocket message, made on first use (most subscribers read SSE)."""
        if self._ws is None:
            self._ws = f'{{"event":"{self.kind}","id":{self.id},"data":{self.data}}}'
        return self._ws


class Closed(Exception):
    """The subscription ended: dropped by the hub, or closed by its client or the collector."""


class Subscription:
    """A subscriber's queue, its running totals and why it ended."""

    def __init__(self, group_id: int, token_key: str, tenant: str | None, max_queued: int,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.group_id = group_id
        self.token_key = token_key
        self.tenant = tenant
        self.max_queued = max_queued
        self._loop = loop
        self._queue: collections.deque[FeedEvent] = collections.deque()
        self._lock = threading.Lock()
        self._wake = asyncio.Event()
        self._wake_pending = False
        self.replay: list[FeedEvent] = []
        self.reset_reason = ""  # set when Last-Event-ID could not be resumed without a gap
        self.position = 0  # the hub's last event id when this subscription joined (live events come after it)
        self.end_kind = ""  # "dropped" (fell behind or stalled) or "closed" (the collector stops)
        self.end_reason = ""
        self.closed = False
        self.started = dt.datetime.now(dt.timezone.utc)
        self.activities = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost_units = 0
        self._pending_totals = (0, 0, 0, 0)  # of the queued events: counted once they are handed to the connection

    # -- the hub's side (its worker thread) -----------------------------------------------
    def push(self, events: list[FeedEvent], totals: tuple[int, int, int, int] | None = None) -> bool | None:
        """Queue one round of events: True; False when the subscription is dropped now because it still
        held ``max_queued`` events from earlier rounds; None when it had already ended.

        The bound is checked per round, not per event: a round (one segment's rows) is handed over whole,
        so a subscriber that keeps up is never dropped for the size of one segment."""
        with self._lock:
            if self.closed:
                return None
            if len(self._queue) >= self.max_queued:
                self._queue.clear()
                self.end_kind = "dropped"
                self.end_reason = (f"this subscriber fell more than {self.max_queued} events behind; reconnect "
                                   "with Last-Event-ID to resume, or re-list with GET /v1/activities")
                self.closed = True
                return False
            self._queue.extend(events)
            if totals is None:
                totals = round_totals(events)
            self._pending_totals = tuple(a + b for a, b in zip(self._pending_totals, totals))
            return True

    def wake(self) -> None:
        """Wake the connection (once per round, from any thread)."""
        with self._lock:
            if self._wake_pending:
                return
            self._wake_pending = True
        try:
            self._loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:  # the connection's loop has closed
            self.closed = True

    def close(self, reason: str = "", kind: str = "closed") -> None:
        with self._lock:
            self.closed = True
            if reason and not self.end_kind:
                self.end_kind, self.end_reason = kind, reason
        self.wake()

    # -- the connection's side (asyncio) -----------------------------------------------------
    async def next_events(self, timeout: float) -> list[FeedEvent]:
        """Queued events (possibly none after ``timeout``); raises Closed once the subscription ended."""
        if not self._queue and not self.closed:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        with self._lock:
            self._wake.clear()
            self._wake_pending = False
            events = list(self._queue)
            self._queue.clear()
            closed = self.closed
            pending, self._pending_totals = self._pending_totals, (0, 0, 0, 0)
        self._add_totals(pending)
        if closed and not events:
            raise Closed(self.end_reason)
        return events

    def count(self, events: list[FeedEvent]) -> None:
        """Add replayed activities to the running totals (live ones are counted as they are handed over)."""
        self._add_totals(round_totals(events))

    def _add_totals(self, totals: tuple[int, int, int, int]) -> None:
        activities, input_tokens, output_tokens, cost = totals
        self.activities += activities
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.cost_units += cost

    def totals_json(self) -> str:
        return json.dumps({"activities": self.activities, "input_tokens": self.input_tokens,
                           "output_tokens": self.output_tokens, "cost_usd": units_to_text(self.cost_units),
                           "since": self.started.isoformat().replace("+00:00", "Z")})


def round_totals(events: list[FeedEvent]) -> tuple[int, int, int, int]:
    """(activities, input tokens, output tokens, cost units) of ``events``: summed once per round and group,
    not once per subscriber."""
    activities = [e for e in events if e.kind == "activity"]
    return (len(activities), sum(e.input_tokens for e in activities), sum(e.output_tokens for e in activities),
            sum(e.cost_units for e in activities))
