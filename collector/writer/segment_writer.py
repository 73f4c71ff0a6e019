"""From a sealed WAL segment to rows in ClickHouse.

    receiver --> sink (admission, duplicate check) --> WAL (fsync) --> ack
                                                        |
                 SegmentWriter thread:  sealed segment --> Store.load_segment --> .done

The writer classifies a failing store by the engine's error code
(collector/errors.py): a transient failure (the store is down, busy, being
migrated) is retried with exponential backoff and jitter while the WAL keeps
accepting until it is full (then the receivers answer UNAVAILABLE); a
permanent one (the segment's data) is split until what the store refuses is
isolated (splitting.py), the rest is stored and the refused spans go to
``wal/quarantine/`` with a ``.reason`` file.  A code in neither list is
retried ``ESCALATE_AFTER`` times, then treated as permanent, so no segment
blocks the others forever.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import random
import threading
from dataclasses import dataclass

from ..errors import StoreError, StoreUnavailable
from ..ingest.admission import AdmissionControl
from ..stats import IngestStats
from ..store import Store
from ..wal import Segment, WriteAheadLog, scan, write_private
from .splitting import split_and_store

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

    ESCALATE_AFTER = 5  # failures of one segment with an unclassified engine code before it is split
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
        self._failures: dict[int, int] = {}  # segment seq -> consecutive failures with an unclassified code
        self.in_store_call = False  # inside a store call (shutdown abandons a writer stuck there)

    def run(self) -> None:
        attempt = 0
        while not self._abandon.is_set():
            segment = self.wal.next_sealed(timeout=0.2)
            if segment is None:
                # what another writer has claimed is that writer's to finish (or to leave in the WAL)
                if self._stop_when_drained.is_set() and self.wal.unclaimed_segments() == 0:
                    return
                continue
            if self._abandon.is_set():
                self.wal.unclaim(segment)
                return
            store: Store | None = self.store_provider()
            try:
                if store is None:
                    raise StoreUnavailable("storage is not reachable yet")
                self._store_segment(store, segment)
            except StoreError as exc:
                self.stats.store_failures += 1
                self.stats.last_store_error = str(exc)[:500]
                self.stats.last_store_error_code = exc.code or 0
                self.wal.unclaim(segment)
                delay = self.backoff.delay(attempt)
                attempt += 1
                log.warning("storing segment %s failed (attempt %d, code %s), retrying in %.1fs: %s",
                            segment.path.name, attempt, exc.code, delay, exc)
                self._abandon.wait(delay)
                continue
            attempt = 0
            self.wal.mark_stored(segment)
            self.stats.segments_stored += 1
            try:
                self.after_store(store)
            except Exception:  # pricing catch-up failing must not stop storage
                log.exception("post-store step failed; it will be retried after the next segment")

    def _store_segment(self, store: Store, segment: Segment) -> None:
        """Store ``segment`` whole, or split it if the store refuses its data; raises StoreError to retry later."""
        try:
            self._load(store, segment.path, segment.dedup_token, segment.size)
            self._failures.pop(segment.seq, None)
            return
        except StoreError as exc:
            if exc.transient:
                raise
            failures = self._failures[segment.seq] = self._failures.get(segment.seq, 0) + 1
            escalated = not exc.permanent
            if escalated and failures < self.ESCALATE_AFTER:
                raise
            self.stats.last_store_error = str(exc)[:500]
            self.stats.last_store_error_code = exc.code or 0
            first_error = exc
        self._split(store, segment, first_error, escalated)
        self._failures.pop(segment.seq, None)

    def _split(self, store: Store, segment: Segment, first_error: StoreError, escalated: bool) -> None:
        result = scan(segment.path.read_bytes())
        if result.corrupt or result.torn_tail:  # damage the start-up scan did not see: drop those records first
            self.wal.corrupt_records += result.corrupt
            segment = self.wal.replace_segment(segment, result.records)
        log.warning("the store refuses segment %s (code %s: %s); splitting it to isolate what it refuses",
                    segment.path.name, first_error.code, first_error)
        piece_path = segment.path.with_name(f"{segment.seq:012d}.piece.tmp")

        def load(data: bytes, token: str) -> None:
            write_private(piece_path, data)
            self._load(store, piece_path, token, len(data))

        try:
            outcome = split_and_store(result.records, segment.dedup_token, load, escalated)
        finally:
            piece_path.unlink(missing_ok=True)
        self.stats.segments_split += 1
        if outcome.refused:
            target = self.wal.quarantine_records(segment, outcome.refused,
                                                 outcome.reason_text(segment.path.name, first_error))
            self.stats.spans_quarantined += outcome.refused_spans
            self.stats.segments_quarantined += 1
            log.error("segment %s: %d span(s) the store refuses moved to %s (reason beside it); the rest is stored",
                      segment.path.name, outcome.refused_spans, target)

    def _load(self, store: Store, path, token: str, size: int) -> None:
        reserved = self.admission.reserve(size * self.ENGINE_MEMORY_PER_SEGMENT_BYTE) if self.admission else 0
        try:
            with self.gate.shared():
                self.in_store_call = True
                try:
                    store.load_segment(path, token)
                finally:
                    self.in_store_call = False
        finally:
            if reserved:
                self.admission.release(reserved)

    def request_stop(self) -> None:
        """Finish what is sealed, then stop (see ``stop``)."""
        self._stop_when_drained.set()

    def stop(self, drain_timeout_s: float) -> bool:
        """Store what is sealed, then stop; False if that took longer than ``drain_timeout_s``.

        A writer still inside a store call then is abandoned (it is a daemon thread): its
        segment stays in the WAL, unmarked, and is stored at the next start."""
        self._stop_when_drained.set()
        self.join(max(0.0, drain_timeout_s))
        if self.is_alive():
            self._abandon.set()
            self.join(min(1.0, max(0.0, drain_timeout_s)))
            return False
        return True
