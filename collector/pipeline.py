"""From an acknowledged request to rows in ClickHouse.

    receiver --accept()--> [admission] --> [duplicate check] --> WAL (fsync) --> ack
                                                                  |
                             SegmentWriter thread:  sealed segment --> Store.load_segment --> .done

* Admission control bounds the memory held by requests in flight; above the
  ceiling the client is told UNAVAILABLE with a retry delay.
* A request whose exact bytes were already made durable (a client retrying
  after a lost answer) is acknowledged again without being stored twice.
* The writer retries a failing store with exponential backoff and jitter; the
  WAL keeps accepting until it is full, then the receiver answers UNAVAILABLE.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import random
import threading
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field

from .receiver import Overloaded
from .store import Store, StoreUnavailable
from .validation import Checked
from .wal import Segment, WalFull, WalWriteError, WriteAheadLog, encode_record, request_fingerprint, scan

log = logging.getLogger(__name__)


@dataclass
class IngestStats:
    """Counters exposed at /v1/stats; written from several threads (int += under the GIL is enough)."""

    requests_accepted: int = 0
    spans_accepted: int = 0
    spans_rejected: int = 0
    duplicate_requests: int = 0
    refused_memory: int = 0
    refused_wal_full: int = 0
    refused_disk: int = 0
    segments_stored: int = 0
    store_failures: int = 0
    segments_quarantined: int = 0
    spans_repriced: int = 0
    last_store_error: str = ""
    started_at: float = field(default_factory=time.time)


class AdmissionControl:
    """Keeps the process under its memory ceiling, like the Collector's memory_limiter.

    A request is refused (UNAVAILABLE + RetryInfo) when the process's resident
    memory, sampled at most every ``sample_interval_s``, plus what requests in
    flight will take (a parsed request costs a few times its wire size) would
    pass ``limit_bytes``.  The in-flight part covers the gap between samples.
    """

    OVERHEAD = 4

    def __init__(self, limit_bytes: int, sample_interval_s: float = 0.1) -> None:
        self.limit_bytes = limit_bytes
        self.sample_interval_s = sample_interval_s
        self._in_flight = 0
        self._rss = 0
        self._sampled_at = 0.0
        self._lock = threading.Lock()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def _resident(self) -> int:
        now = time.monotonic()
        if now - self._sampled_at >= self.sample_interval_s:
            try:
                with open("/proc/self/statm", "rb") as f:
                    self._rss = int(f.read().split()[1]) * self._page
            except OSError:  # not Linux: in-flight accounting alone
                self._rss = 0
            self._sampled_at = now
        return self._rss

    def admit(self, size: int) -> int:
        cost = size * self.OVERHEAD
        with self._lock:
            projected = self._resident() + self._in_flight + cost
            if projected > self.limit_bytes:
                raise Overloaded(
                    f"collector memory limit reached ({projected >> 20} MiB with this request, "
                    f"limit {self.limit_bytes >> 20} MiB): retry later", retry_after_s=1.0)
            self._in_flight += cost
        return cost

    def release(self, cost: int) -> None:
        with self._lock:
            self._in_flight -= cost

    def reserve(self, cost: int) -> int:
        """Count memory the store is about to use (a segment insert) without refusing it."""
        with self._lock:
            self._in_flight += cost
        return cost


class RecentRequests:
    """Fingerprints (``wal.request_fingerprint``) of recently stored requests, to acknowledge
    a client's retry without storing it twice."""

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[tuple, bool] = OrderedDict()
        self._lock = threading.Lock()

    def seen(self, key: tuple) -> bool:
        with self._lock:
            return key in self._seen

    def add(self, key: tuple) -> None:
        with self._lock:
            self._seen[key] = True
            if len(self._seen) > self.capacity:
                self._seen.popitem(last=False)


class WalSink:
    """The receiver's sink: admission, duplicate check, durable append."""

    def __init__(self, wal: WriteAheadLog, admission: AdmissionControl, stats: IngestStats) -> None:
        self.wal = wal
        self.admission = admission
        self.stats = stats
        self.recent = RecentRequests()
        self._in_progress: dict[tuple, threading.Event] = {}
        self._lock = threading.Lock()
        for key in wal.recovered_fingerprints:  # after a restart, requests already in the log are still recognised
            self.recent.add(key)
        wal.recovered_fingerprints.clear()

    def admit(self, size: int) -> int:
        try:
            return self.admission.admit(size)
        except Overloaded:
            self.stats.refused_memory += 1
            raise

    def release(self, reservation: int) -> None:
        self.admission.release(reservation)

    def accept(self, checked: Checked, original: bytes, tenant: str) -> None:
        crc = zlib.crc32(checked.payload)
        key = request_fingerprint(original, tenant, crc if checked.payload is original else None)
        while True:
            with self._lock:
                if self.recent.seen(key):
                    self.stats.duplicate_requests += 1
                    return
                waiting = self._in_progress.get(key)
                if waiting is None:
                    done = self._in_progress[key] = threading.Event()
                    break
            waiting.wait()  # the same request is being written by another call: its outcome decides
        try:
            self.wal.append(encode_record(checked.payload, tenant, crc), checked.accepted)
            self.recent.add(key)
            self.stats.requests_accepted += 1
            self.stats.spans_accepted += checked.accepted
        except WalFull as exc:
            self.stats.refused_wal_full += 1
            raise Overloaded(f"{exc}: storage is behind; retry later", retry_after_s=2.0) from exc
        except WalWriteError as exc:
            self.stats.refused_disk += 1
            raise Overloaded(f"cannot write the write-ahead log ({exc}); retry later", retry_after_s=5.0) from exc
        finally:
            with self._lock:
                self._in_progress.pop(key, None)
            done.set()


class SharedExclusiveLock:
    """Many holders in shared mode, or one in exclusive mode.

    Segment writers load side by side (shared); moving parked spans and
    emptying the parking table (exclusive) must not interleave with a load
    that may be parking more spans at that moment."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False

    @contextlib.contextmanager
    def shared(self):
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self):
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._exclusive = True  # new shared holders wait from here on
            while self._shared:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()


@dataclass(frozen=True)
class Backoff:
    initial_s: float = 0.2
    max_s: float = 30.0
    multiplier: float = 2.0

    def delay(self, attempt: int) -> float:
        """Exponential with full jitter, so many collectors do not retry in step."""
        return random.uniform(0, min(self.max_s, self.initial_s * self.multiplier ** attempt))


class SegmentWriter(threading.Thread):
    """Moves sealed WAL segments into the store until stopped and drained.

    Several writers may run side by side: ClickHouse runs one INSERT (with its
    views) on one thread, so a second writer is what uses the second core.
    Segments are independent (each carries its own dedup token), so the order
    in which they land does not matter."""

    QUARANTINE_AFTER = 5  # a segment the engine cannot parse this many times is set aside
    _numbers = itertools.count(1)

    # The embedded engine's working memory while it decodes and flattens a
    # segment, as a multiple of the segment's size (measured: 4-8x).
    ENGINE_MEMORY_PER_SEGMENT_BYTE = 8

    def __init__(self, wal: WriteAheadLog, store_provider, stats: IngestStats, backoff: Backoff = Backoff(),
                 after_store=None, admission: AdmissionControl | None = None,
                 gate: SharedExclusiveLock | None = None) -> None:
        super().__init__(name=f"spanledger-segment-writer-{next(self._numbers)}", daemon=True)
        self.wal = wal
        self.store_provider = store_provider  # () -> Store | None (None while storage is unreachable)
        self.stats = stats
        self.backoff = backoff
        self.after_store = after_store or (lambda store: None)
        self.admission = admission
        self.gate = gate or SharedExclusiveLock()
        self._stop_when_drained = threading.Event()
        self._abandon = threading.Event()
        self._parse_failures: dict[int, int] = {}

    def run(self) -> None:
        attempt = 0
        while not self._abandon.is_set():
            segment = self.wal.next_sealed(timeout=0.2)
            if segment is None:
                if self._stop_when_drained.is_set() and self.wal.pending_segments() == 0:
                    return
                continue
            store: Store | None = self.store_provider()
            try:
                if store is None:
                    raise StoreUnavailable("storage is not reachable yet")
                self._load(store, segment)
            except StoreUnavailable as exc:
                self.stats.store_failures += 1
                self.stats.last_store_error = str(exc)[:500]
                if self._is_parse_error(exc):
                    self._handle_unparsable(segment)
                    self.wal.unclaim(segment)
                    continue
                self.wal.unclaim(segment)
                delay = self.backoff.delay(attempt)
                attempt += 1
                log.warning("storing segment %s failed (attempt %d), retrying in %.1fs: %s",
                            segment.path.name, attempt, delay, exc)
                self._abandon.wait(delay)
                continue
            attempt = 0
            self.wal.mark_stored(segment)
            self.stats.segments_stored += 1
            try:
                self.after_store(store)
            except Exception:  # pricing catch-up failing must not stop storage
                log.exception("post-store step failed; it will be retried after the next segment")

    def _load(self, store: Store, segment: Segment) -> None:
        reserved = self.admission.reserve(segment.size * self.ENGINE_MEMORY_PER_SEGMENT_BYTE) if self.admission else 0
        try:
            with self.gate.shared():
                store.load_segment(segment.path, segment.dedup_token)
        finally:
            if reserved:
                self.admission.release(reserved)

    # ClickHouse error codes that mean "these bytes are not what the format says",
    # as opposed to the store being down.  Matched as "(CODE" so that an outage
    # whose message quotes the INSERT text (… FORMAT Protobuf) is never taken for one:
    # that would set a healthy segment aside after a few fast retries.
    PARSE_ERROR_CODES = ("(ATTEMPT_TO_READ_AFTER_EOF)", "(UNKNOWN_PROTOBUF_FORMAT)", "(CANNOT_PARSE_",
                         "(CANNOT_READ_ALL_DATA)", "(INCORRECT_DATA)")

    @classmethod
    def _is_parse_error(cls, exc: Exception) -> bool:
        text = str(exc)
        return any(code in text for code in cls.PARSE_ERROR_CODES)

    def _handle_unparsable(self, segment: Segment) -> None:
        failures = self._parse_failures.get(segment.seq, 0) + 1
        self._parse_failures[segment.seq] = failures
        if failures == 1:
            # re-verify every record's checksum and rewrite without damaged ones
            result = scan(segment.path.read_bytes())
            if result.corrupt or result.torn_tail:
                self.wal.corrupt_records += result.corrupt
                self.wal.replace_segment(segment, result.records)
            return
        if failures >= self.QUARANTINE_AFTER:
            target = self.wal.quarantine(segment)
            self.stats.segments_quarantined += 1
            log.error("segment %s could not be parsed by the store %d times; moved to %s for inspection",
                      segment.path.name, failures, target)

    def request_stop(self) -> None:
        """Finish what is sealed, then stop (see ``stop``)."""
        self._stop_when_drained.set()

    def stop(self, drain_timeout_s: float) -> bool:
        """Store what is sealed, then stop; False if that took longer than ``drain_timeout_s``."""
        self._stop_when_drained.set()
        self.join(drain_timeout_s)
        if self.is_alive():
            self._abandon.set()
            self.join(5)
            return False
        return True
