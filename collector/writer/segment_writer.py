"""From a sealed WAL segment to rows in ClickHouse.

    receiver --> sink (admission, duplicate check) --> WAL (fsync) --> ack
                                                        |
                 SegmentWriter thread:  sealed segment --> Store.load_segment --> .done

The writer retries a failing store with exponential backoff and jitter; the
WAL keeps accepting until it is full, then the receivers answer UNAVAILABLE.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import random
import threading
from dataclasses import dataclass

from ..ingest.admission import AdmissionControl
from ..stats import IngestStats
from ..store import Store, StoreUnavailable
from ..wal import Segment, WriteAheadLog, scan

log = logging.getLogger(__name__)


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
                 gate: SharedExclusiveLock | None = None, batch_ids=None, on_stored=None) -> None:
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
        # () -> int: a number written on the rows of each insert (IngestBatch), one per segment
        # (kept across its retries, so a load whose answer was lost is still found by it)
        self.batch_ids = batch_ids
        self.on_stored = on_stored or (lambda batch: None)  # (batch) -> None, e.g. the live feed
        self._batches: dict[int, int] = {}

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
            batch = self._batches.pop(segment.seq, 0)
            if batch:  # after pricing caught up, so the feed rarely finds this segment's spans still parked
                try:
                    self.on_stored(batch)
                except Exception:  # the feed failing must not stop storage
                    log.exception("after-store notification failed for batch %d", batch)

    def _load(self, store: Store, segment: Segment) -> None:
        reserved = self.admission.reserve(segment.size * self.ENGINE_MEMORY_PER_SEGMENT_BYTE) if self.admission else 0
        try:
            with self.gate.shared():
                if self.batch_ids is None:
                    store.load_segment(segment.path, segment.dedup_token)
                else:
                    batch = self._batches.get(segment.seq) or self._batches.setdefault(segment.seq, self.batch_ids())
                    store.load_segment(segment.path, segment.dedup_token, ingest_batch=batch)
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
            self._batches.pop(segment.seq, None)
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
