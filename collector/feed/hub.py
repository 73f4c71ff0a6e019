"""How new spans reach subscribers: one shared query per round of stored segments.

Finding new rows.  Each segment writer numbers its INSERT (``new_batch``,
strictly increasing per collector) and the pipeline writes that number on
every row (``IngestBatch``, schema/040_ingest_batch.sql).  When a segment is
stored the writer calls ``segment_stored(batch)``; the hub's worker thread
then runs ONE query for every batch stored since its last round, with every
subscriber filter evaluated in it (as bits of 64-bit masks, one bit per
filter), so a hundred subscribers cost one query, not a hundred.  Spans that arrive late (an old
Timestamp) are found all the same: the batch, not the time, selects them.
Every span is priced in the pass that stores it, so a stored batch is
complete: its events carry their cost.

Order and ids.  Events get ids as they are published, so the feed is in
storage order and ids increase per collector, across restarts too (the first
id is the start time in microseconds).  The last ``replay_buffer`` events
are kept with the filter groups they matched: a reconnect with
``Last-Event-ID`` replays exactly what its filter matched after that id, and
when that cannot be done without a gap (evicted, unknown id, or a filter no
one was following meanwhile) the subscriber gets a ``reset`` event instead.
A filter group outlives its last subscriber by ``replay_linger`` so a client
that reconnects is resumed exactly.

Tenancy.  A tenant subscriber's condition carries ``TenantId = <tenant from
its token>`` and rows are routed only to groups of the row's tenant.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..errors import SpanledgerError
from ..query import run_query
from ..query.filters import FIELDS, Condition, FilterError, build_condition
from ..store import StoreUnavailable
from .rows import COST_UNITS_SQL, activity_json_sql
from .subscription import FeedEvent, Subscription, round_totals

log = logging.getLogger(__name__)

ROOM_KINDS = ("project", "agent", "type")  # room=project:p-7, as the seed systems' socket rooms
FILTER_PARAMS = frozenset(FIELDS) | {"since", "until", "where", "room"}
MAX_FILTER_SQL_CHARS = 100_000  # all distinct filters together, so the shared query stays well under max_query_size
MAX_EVENT_ID_DIGITS = 19


class FeedError(SpanledgerError):
    """A subscription the hub will not open; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class FeedSettings:
    """extensions.spanledger_api.feed in otel-config.yaml."""

    max_subscribers: int = 1000
    max_subscribers_per_token: int = 100
    subscriber_buffer: int = 10_000
    replay_buffer: int = 100_000
    replay_linger_s: float = 300.0
    totals_interval_s: float = 5.0
    send_timeout_s: float = 10.0

    @classmethod
    def from_config(cls, config) -> FeedSettings:
        feed = config.get("extensions.spanledger_api.feed")
        return cls(max_subscribers=feed["max_subscribers"], max_subscribers_per_token=feed["max_subscribers_per_token"],
                   subscriber_buffer=max(1, feed["subscriber_buffer"]), replay_buffer=max(1, feed["replay_buffer"]),
                   replay_linger_s=feed["replay_linger"], totals_interval_s=max(0.1, feed["totals_interval"]),
                   send_timeout_s=max(0.1, feed["send_timeout"]))


class _Group:
    """Subscribers with the same tenant and the same filter share one condition in the query."""

    def __init__(self, group_id: int, key: tuple, tenant: str | None, condition: Condition,
                 simple: dict[str, list[str]]) -> None:
        self.id = group_id
        self.key = key
        self.tenant = tenant
        self.condition = condition
        self.simple = simple  # field -> values, to route budget alerts of a scope
        self.subs: set[Subscription] = set()
        self.evaluated_from: int | None = None  # every event after this id was matched against this group
        self.idle_since: float | None = None


def parse_last_event_id(value: str | None) -> int | None:
    """The Last-Event-ID a client sent, as an int; FeedError if it is not one of ours."""
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    if not re.fullmatch(f"[0-9]{{1,{MAX_EVENT_ID_DIGITS}}}", text):  # ASCII digits only (str.isdigit takes '١٢٣')
        raise FeedError("Last-Event-ID must be the id of an event this feed sent (a whole number of at most "
                        f"{MAX_EVENT_ID_DIGITS} digits); leave it out to start from now")
    return int(text)


def filter_params(raw: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """The filter parameters of a request (names checked), values as lists, empty ones left out."""
    out: dict[str, list[str]] = {}
    for name, values in raw.items():
        if name not in FILTER_PARAMS:
            raise FeedError(f"unknown parameter {name!r}: the feed takes the listing filters "
                            f"({', '.join(sorted(FILTER_PARAMS))}) and last_event_id")
        kept = [v for v in values if v != ""]
        if kept:
            out[name] = kept
    return out


def compile_filter(params: dict[str, list[str]], tenant: str | None, prefix: str) -> Condition:
    """The SQL condition of a subscription: the listing filters, its rooms, and its tenant from the token."""
    condition = build_condition({k: v for k, v in params.items() if k != "room"}, operator=tenant is None,
                                prefix=prefix, time_column="Timestamp")
    rooms: dict[str, list[str]] = {}
    for room in params.get("room", []):
        kind, sep, value = room.partition(":")
        if not sep or kind not in ROOM_KINDS or not value:
            raise FilterError(f"room: {room!r} is not a room; write room=project:<id>, room=agent:<name> or "
                              "room=type:<activity type>")
        rooms.setdefault(kind, []).append(value)
    if rooms:
        condition = condition.and_(build_condition(rooms, operator=tenant is None, prefix=prefix + "r",
                                                   time_column=None))
    if tenant is not None:
        name = f"{prefix}tenant"
        condition = Condition(f"TenantId = {{{name}:String}}", {name: tenant}).and_(condition)
    return condition


def _mask_columns(conditions: list[str]) -> list[str]:
    """Which of ``conditions`` a row matches, as UInt64 bit masks (64 conditions each): a number per
    row is far cheaper to bring into Python than an array, and a round has few distinct masks."""
    columns = []
    for start in range(0, len(conditions), 64):
        bits = [f"if(({c}), {1 << i}, 0)" for i, c in enumerate(conditions[start:start + 64])]
        columns.append("toUInt64(" + " + ".join(bits) + ")")
    return columns


def _groups_of(groups: list[_Group], masks: list[int], tenant: str) -> frozenset[int]:
    """The groups a row goes to: those whose bit is set and that may see the row's tenant."""
    out = []
    for index, group in enumerate(groups):
        if masks[index // 64] >> (index % 64) & 1 and (group.tenant is None or group.tenant == tenant):
            out.append(group.id)
    return frozenset(out)


class FeedHub:
    """Finds the rows of each stored segment once and routes them to every matching subscriber."""

    def __init__(self, collector, settings: FeedSettings = FeedSettings()) -> None:
        self.collector = collector
        self.settings = settings
        self._lock = threading.Condition()
        self._pending: list[tuple[int, float]] = []  # (batch, stored at), in storage order
        self._groups: dict[tuple, _Group] = {}
        self._group_ids = 0
        self._subs_by_token: dict[str, int] = {}
        self._subscribers = 0
        self._filter_chars = 0
        self._buffer: deque[FeedEvent] = deque()
        self._last_id = time.time_ns() // 1000  # ids stay increasing across restarts
        self._evicted_upto = self._last_id
        self._batch_lock = threading.Lock()
        self._last_batch = 0
        self._round_active = False
        self._stop = False
        self._thread: threading.Thread | None = None
        self.counters = {"feed_events": 0, "feed_rounds": 0, "feed_subscribers_dropped": 0, "feed_query_failures": 0}
        self.last_error = ""
        self.timings = {"feed_query_s": 0.0, "feed_publish_s": 0.0}  # where the worker's time goes

    # -- the writers' side ------------------------------------------------------------------
    def new_batch(self) -> int:
        """A number for one INSERT: strictly increasing, Unix microseconds when the clock allows."""
        with self._batch_lock:
            self._last_batch = max(self._last_batch + 1, time.time_ns() // 1000)
            return self._last_batch

    def segment_stored(self, batch: int) -> None:
        with self._lock:
            self._pending.append((batch, time.monotonic()))
            self._lock.notify()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="spanledger-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stop = True
            self._lock.notify_all()
            subs = [s for g in self._groups.values() for s in g.subs]
        for sub in subs:
            sub.close("the collector is shutting down; reconnect with Last-Event-ID when it is back")
        if self._thread:
            self._thread.join(10)

    # -- subscribers ------------------------------------------------------------------------------
    def subscribe(self, *, tenant: str | None, token_key: str, params: dict[str, list[str]],
                  last_event_id: int | None, loop: asyncio.AbstractEventLoop) -> Subscription:
        """Open a subscription (raises FeedError / FilterError); replay and reset are decided here."""
        key = (tenant, tuple(sorted((k, tuple(v)) for k, v in params.items())))
        with self._lock:
            if self._stop:
                raise FeedError("the collector is shutting down", 503)
            if self._subscribers >= self.settings.max_subscribers:
                raise FeedError(f"the feed has its maximum of {self.settings.max_subscribers} subscribers; "
                                "retry later or raise extensions.spanledger_api.feed.max_subscribers", 429)
            if self._subs_by_token.get(token_key, 0) >= self.settings.max_subscribers_per_token:
                raise FeedError(f"this token already has {self.settings.max_subscribers_per_token} feed subscriptions "
                                "open; close some (or raise extensions.spanledger_api.feed.max_subscribers_per_token)",
                                429)
            group = self._groups.get(key)
            if group is None:
                self._group_ids += 1
                condition = compile_filter(params, tenant, f"g{self._group_ids}_")
                if self._filter_chars + len(condition.sql) > MAX_FILTER_SQL_CHARS:
                    raise FeedError("the feed is following as many distinct filters as it can; use a filter "
                                    "another subscriber already uses, or a simpler one", 429)
                simple = {k: list(v) for k, v in params.items() if k in FIELDS}
                group = _Group(self._group_ids, key, tenant, condition, simple)
                group.evaluated_from = None if self._round_active else self._last_id
                self._groups[key] = group
                self._filter_chars += len(condition.sql)
            sub = Subscription(group.id, token_key, tenant, self.settings.subscriber_buffer, loop)
            sub.position = self._last_id
            if last_event_id is not None:
                self._plan_resume(sub, group, last_event_id)
            group.subs.add(sub)
            group.idle_since = None
            self._subscribers += 1
            self._subs_by_token[token_key] = self._subs_by_token.get(token_key, 0) + 1
        return sub

    def _plan_resume(self, sub: Subscription, group: _Group, last: int) -> None:
        if last > self._last_id:
            sub.reset_reason = "Last-Event-ID is not an event of this collector; re-list, then follow from now"
        elif last < self._evicted_upto:
            sub.reset_reason = ("events after Last-Event-ID are no longer in the replay buffer; re-list with "
                                "GET /v1/activities, then follow from now")
        elif group.evaluated_from is None or group.evaluated_from > last:
            sub.reset_reason = ("no subscriber followed this filter since Last-Event-ID (or the collector restarted); "
                                "re-list with GET /v1/activities, then follow from now")
        else:
            sub.replay = [e for e in self._buffer if e.id > last and group.id in e.groups]

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            for group in self._groups.values():
                if sub in group.subs:
                    group.subs.discard(sub)
                    if not group.subs:
                        group.idle_since = time.monotonic()
                    self._subscribers -= 1
                    left = self._subs_by_token.get(sub.token_key, 1) - 1
                    if left:
                        self._subs_by_token[sub.token_key] = left
                    else:
                        self._subs_by_token.pop(sub.token_key, None)
                    break
        sub.close()

    def subscriber_count(self) -> int:
        return self._subscribers

    # -- publishing ---------------------------------------------------------------------------------
    def publish(self, kind: str, payload: dict, visible: Callable[[str | None, dict[str, list[str]]], bool],
                tenant: str | None) -> int:
        """Publish a non-span event (a budget alert) to every group ``visible(group tenant, group filters)``
        accepts; tenant groups only see events of their own ``tenant``.  Returns its id."""
        data = json.dumps(payload, default=str)
        with self._lock:
            groups = frozenset(g.id for g in self._groups.values()
                               if (g.tenant is None or g.tenant == tenant) and visible(g.tenant, g.simple))
            event = self._append(kind, data, groups, time.monotonic())
            self._dispatch([event])
            return event.id

    def _append(self, kind: str, data: str, groups: frozenset[int], stored_at: float, **numbers) -> FeedEvent:
        self._last_id += 1
        event = FeedEvent(self._last_id, kind, data, groups, stored_at=stored_at, **numbers)
        self._buffer.append(event)
        while len(self._buffer) > self.settings.replay_buffer:
            self._evicted_upto = self._buffer.popleft().id
        self.counters["feed_events"] += 1
        return event

    def _dispatch(self, events: list[FeedEvent]) -> None:
        """Hand a round of events to every subscriber of the groups they matched: one list per group,
        built once, so the cost grows with events x groups, not events x subscribers."""
        by_group: dict[int, list[FeedEvent]] = {}
        for event in events:
            for group_id in event.groups:
                by_group.setdefault(group_id, []).append(event)
        for group in self._groups.values():
            queued = by_group.get(group.id)
            if not queued or not group.subs:
                continue
            totals = round_totals(queued)
            for sub in group.subs:  # ``queued`` is in id order
                outcome = sub.push(queued, totals)
                if outcome is False:
                    self.counters["feed_subscribers_dropped"] += 1
                    log.info("live feed: dropped a subscriber that fell %d events behind", sub.max_queued)
                if outcome is not None:
                    sub.wake()

    def stored_at(self, event_id: int) -> float | None:
        """When the segment of a buffered event was stored (time.monotonic()); for bench/bench_feed.py."""
        with self._lock:
            for event in reversed(self._buffer):
                if event.id == event_id:
                    return event.stored_at
        return None

    # -- the worker -------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._pending and not self._stop:
                    self._lock.wait(0.5)
                if self._stop:
                    return
                pending, self._pending = self._pending, []
                self._expire_groups()
                if not pending:
                    continue
                snapshot = [g for g in self._groups.values()]
                for group in snapshot:
                    if group.evaluated_from is None:
                        group.evaluated_from = self._last_id
                self._round_active = True
            try:
                self._round(pending, snapshot)
            except Exception as exc:  # the store failing: keep the batches and try again shortly
                self.counters["feed_query_failures"] += 1
                self.last_error = str(exc)[:500]
                log.warning("live feed: reading stored batches failed (%s); retrying", exc)
                with self._lock:
                    self._pending[:0] = pending
                    self._round_active = False
                time.sleep(0.5)
            finally:
                with self._lock:
                    self._round_active = False

    def _expire_groups(self) -> None:
        now = time.monotonic()
        for key, group in list(self._groups.items()):
            if not group.subs and group.idle_since is not None and now - group.idle_since > self.settings.replay_linger_s:
                del self._groups[key]
                self._filter_chars -= len(group.condition.sql)

    def _round(self, pending: list[tuple[int, float]], groups: list[_Group]) -> None:
        self.counters["feed_rounds"] += 1
        if not groups:
            return  # no one follows: nothing to find (and nothing a reconnect could resume)
        ready = pending
        began = time.perf_counter()
        rows = self._read(ready, groups)
        read_done = time.perf_counter()
        self.timings["feed_query_s"] += read_done - began
        stored = dict(ready)
        hits: dict[tuple, frozenset[int]] = {}  # (tenant, masks) -> groups: a round has few distinct ones
        with self._lock:
            events = []
            for batch, tenant, input_tokens, output_tokens, cost_units_, data, *masks in rows:
                key = (tenant, *masks)
                groups_hit = hits.get(key)
                if groups_hit is None:
                    groups_hit = hits[key] = _groups_of(groups, masks, tenant)
                if not groups_hit:
                    continue
                events.append(self._append("activity", data, groups_hit, stored[batch], cost_units=cost_units_,
                                           input_tokens=input_tokens, output_tokens=output_tokens))
            self._dispatch(events)
        self.timings["feed_publish_s"] += time.perf_counter() - read_done

    def _options(self):
        store = self.collector.store()
        if store is None:
            raise StoreUnavailable("the store is not reachable yet")
        return store.options

    def _read(self, ready: list[tuple[int, float]], groups: list[_Group]) -> list[tuple]:
        """The rows of ``ready`` batches that match any group, each with which groups it matches."""
        options = self._options()
        parameters: dict[str, object] = {"batches": [b for b, _ in ready]}
        for group in groups:
            parameters.update(group.condition.parameters)
        masks = _mask_columns([g.condition.sql for g in groups])
        sql = (f"SELECT IngestBatch, TenantId, InputTokens, OutputTokens, {COST_UNITS_SQL}, {activity_json_sql()}, "
               + ", ".join(f"{expr} AS feed_mask{i}" for i, expr in enumerate(masks)) +
               f" FROM {options.database}.{options.traces_table} "
               "WHERE IngestBatch IN {batches:Array(UInt64)} AND ("
               + " OR ".join(f"feed_mask{i} != 0" for i in range(len(masks))) + ") "
               "ORDER BY indexOf({batches:Array(UInt64)}, IngestBatch), Timestamp, SpanId")
        return run_query(self.collector, sql, parameters, tenant=None).result_rows

    def stats(self) -> dict:
        return {**self.counters, **{k: round(v, 3) for k, v in self.timings.items()}, "feed_subscribers": self._subscribers, "feed_filter_groups": len(self._groups),
                "feed_buffered_events": len(self._buffer), "feed_last_error": self.last_error}
