"""The running log: group-committed appends, sealing, and the hand-over of sealed segments.

Appends are group-committed: callers queue their records, one flusher thread
writes everything queued with a single ``write`` + ``fdatasync`` and wakes them,
so throughput does not pay one fsync per request.  Writers claim sealed segments
(``next_sealed``), then mark them stored, give them back or quarantine them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .files import FILE_MODE, fsync_dir, instance_id, private_dir, write_all, write_private
from .record_format import Record, encode_record, scan
from .recovery import recover
from .segment import Segment, WalFull, WalWriteError

log = logging.getLogger("spanledger.collector.wal")


@dataclass
class _Pending:
    data: bytes
    spans: int
    seq: int = 0
    pairs: frozenset = frozenset()


class WriteAheadLog:
    """Durable, bounded, group-committed log of accepted requests."""

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int = 2 << 30,
        segment_max_bytes: int = 32 << 20,
        segment_max_spans: int = 50_000,
        segment_max_age_s: float = 1.0,
        retain_done_bytes: int = 64 << 20,
        fsync: bool = True,
        instance: str | None = None,
    ) -> None:
        self.directory = private_dir(Path(directory))
        self.instance = instance or instance_id(self.directory)
        self.max_bytes = max_bytes
        self.segment_max_bytes = segment_max_bytes
        self.segment_max_spans = segment_max_spans
        self.segment_max_age_s = segment_max_age_s
        self.retain_done_bytes = retain_done_bytes
        self.fsync = fsync
        self.corrupt_records = 0
        self.torn_tails = 0

        self._lock = threading.Lock()
        self._wake_flusher = threading.Condition(self._lock)
        self._durable = threading.Condition(self._lock)
        self._queue: list[_Pending] = []
        self._next_seq = 1
        self._durable_seq = 0
        self._failed: dict[int, Exception] = {}
        self._unstored_bytes = 0
        self._sealed: deque[Segment] = deque()
        self._claimed: dict[int, Segment] = {}  # being stored by a writer
        self._sealed_ready = threading.Condition(self._lock)
        self._closing = False

        self._segment_seq = 0
        self._file = None
        self._file_size = 0
        self._file_spans = 0
        self._file_requests = 0
        self._file_crc = 0
        self._file_pairs: set = set()
        self._file_opened_at = 0.0
        # fingerprints of every request found on disk at start (stored or not), so that a
        # client's retry after a restart is still recognised; only the fingerprints are kept
        self.recovered_fingerprints: list[tuple[int, int, int, str]] = []
        # Retention holds (forwarding): each returns the lowest segment seq its reader still needs, or
        # None; a stored (.done) segment at or after the lowest hold is kept whatever retain_done_bytes says.
        self.retention_holds: list = []
        self.seal_listeners: list = []  # called with the seq of each newly sealed segment (keep them cheap)
        self.last_sealed_seq = 0

        self._recover()
        self._flusher = threading.Thread(target=self._flush_loop, name="spanledger-wal-flusher", daemon=True)
        self._flusher.start()

    # -- appending ------------------------------------------------------------
    def append(self, record: bytes, spans: int, pairs: frozenset = frozenset()) -> None:
        """Queue one encoded record and return once it is on disk (fsynced); ``pairs`` go with its segment."""
        with self._lock:
            if self._closing:
                raise WalWriteError("the collector is shutting down")
            if self._unstored_bytes + len(record) > self.max_bytes:
                raise WalFull(f"write-ahead log holds {self._unstored_bytes} unstored bytes (max_bytes={self.max_bytes})")
            pending = _Pending(record, spans, self._next_seq, pairs)
            self._next_seq += 1
            self._unstored_bytes += len(record)
            self._queue.append(pending)
            self._wake_flusher.notify()
            while self._durable_seq < pending.seq:
                self._durable.wait()
            error = self._failed.pop(pending.seq, None)
            if error is not None:
                self._unstored_bytes -= len(record)
                raise WalWriteError(str(error)) from error

    @property
    def unstored_bytes(self) -> int:
        return self._unstored_bytes

    def _flush_loop(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closing:
                    timeout = self._seal_timeout()
                    if not self._wake_flusher.wait(timeout) and self._file is not None:
                        if time.monotonic() - self._file_opened_at >= self.segment_max_age_s:
                            self._seal_locked()
                if not self._queue and self._closing:
                    if self._file is not None:
                        self._seal_locked()
                    self._sealed_ready.notify_all()
                    return
                batch, self._queue = self._queue, []
            self._write_batch(batch)

    def _seal_timeout(self) -> float | None:
        if self._file is None:
            return None
        return max(0.0, self.segment_max_age_s - (time.monotonic() - self._file_opened_at))

    def _write_batch(self, batch: list[_Pending]) -> None:
        data = b"".join(p.data for p in batch)
        error: Exception | None = None
        with self._lock:
            if self._file is None:
                self._open_segment_locked()
            file, start = self._file, self._file_size
        try:
            write_all(file, data)
            if self.fsync:
                os.fdatasync(file.fileno())
        except OSError as exc:
            error = exc
            log.error("write-ahead log write failed (%s); answering UNAVAILABLE", exc)
            try:  # leave no half-written record behind
                file.truncate(start)
                file.seek(start)
            except OSError:
                pass
        with self._lock:
            if error is None:
                self._file_size += len(data)
                self._file_crc = zlib.crc32(data, self._file_crc)
                self._file_spans += sum(p.spans for p in batch)
                self._file_requests += len(batch)
                self._file_pairs.update(*(p.pairs for p in batch))
            else:
                for p in batch:
                    self._failed[p.seq] = error
            self._durable_seq = batch[-1].seq
            self._durable.notify_all()
            if self._file is not None and (
                self._file_size >= self.segment_max_bytes
                or self._file_spans >= self.segment_max_spans
                or time.monotonic() - self._file_opened_at >= self.segment_max_age_s
            ):
                self._seal_locked()

    def _open_segment_locked(self) -> None:
        self._segment_seq += 1
        path = self.directory / f"{self._segment_seq:012d}.open"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
        os.fchmod(fd, FILE_MODE)
        self._file = open(fd, "ab", buffering=0)  # noqa: SIM115 - lives until sealed
        self._file_size = self._file_spans = self._file_requests = self._file_crc = 0
        self._file_pairs = set()
        self._file_opened_at = time.monotonic()

    def _seal_locked(self) -> None:
        file = self._file
        self._file = None
        if file is None:
            return
        file.close()
        open_path = self.directory / f"{self._segment_seq:012d}.open"
        if self._file_size == 0:
            open_path.unlink(missing_ok=True)
            return
        sealed = open_path.with_suffix(".wal")
        os.rename(open_path, sealed)
        self._fsync_dir()
        self._sealed.append(Segment(self._segment_seq, sealed, self._file_size, self._file_spans, self._file_requests,
                                    self._file_crc, self.instance, frozenset(self._file_pairs)))
        self.last_sealed_seq = self._segment_seq
        self._sealed_ready.notify_all()
        for listener in self.seal_listeners:
            listener(self._segment_seq)

    def _fsync_dir(self) -> None:
        fsync_dir(self.directory, self.fsync)

    # -- consuming --------------------------------------------------------------
    def next_sealed(self, timeout: float | None = None) -> Segment | None:
        """Claim the oldest sealed segment nobody is storing; ``mark_stored`` or ``unclaim`` it after."""
        with self._lock:
            if not self._sealed:
                self._sealed_ready.wait(timeout)
            if not self._sealed:
                return None
            segment = self._sealed.popleft()
            self._claimed[segment.seq] = segment
            return segment

    def unclaim(self, segment: Segment) -> None:
        """Storing failed: put the segment back first in line."""
        with self._lock:
            claimed = self._claimed.pop(segment.seq, None)
            if claimed is not None:
                self._sealed.appendleft(claimed)
                self._sealed_ready.notify()

    def mark_stored(self, segment: Segment) -> None:
        """The segment is in the store: keep it a while as ``.done`` for duplicate detection."""
        done = segment.path.with_suffix(".done")
        os.rename(segment.path, done)
        with self._lock:
            self._claimed.pop(segment.seq, None)
            self._unstored_bytes -= segment.size
        self._expire_done()

    def quarantine(self, segment: Segment, reason: str) -> Path:
        """Set aside a whole segment the store refuses, with its reason beside it (``.reason``)."""
        target = self._quarantine_target(segment)
        write_private(target.with_suffix(".reason"), reason.encode())
        os.replace(segment.path, target)
        with self._lock:
            self._claimed.pop(segment.seq, None)
            self._unstored_bytes -= segment.size
        return target

    def quarantine_records(self, segment: Segment, records: list[Record], reason: str) -> Path:
        """Keep ``records`` (what the store refused of ``segment``) in quarantine, with the reason."""
        target = self._quarantine_target(segment)
        write_private(target, b"".join(encode_record(r.request, r.tenant) for r in records), fsync=self.fsync)
        write_private(target.with_suffix(".reason"), reason.encode(), fsync=self.fsync)
        return target

    def quarantine_dir(self) -> Path:
        return private_dir(self.directory / "quarantine")

    def _quarantine_target(self, segment: Segment) -> Path:
        """``NNN.wal`` in quarantine, or ``NNN-2.wal``... when a segment of that number is there already
        (numbers restart when no stored segment is retained): nothing set aside is overwritten."""
        directory = self.quarantine_dir()
        target, n = directory / segment.path.name, 1
        while target.exists():
            n += 1
            target = directory / f"{segment.seq:012d}-{n}.wal"
        return target

    def replace_segment(self, segment: Segment, records: list[Record]) -> Segment:
        """Rewrite a sealed segment with only ``records`` (used after corruption is found)."""
        data = b"".join(encode_record(r.request, r.tenant) for r in records)
        write_private(segment.path, data, fsync=self.fsync)
        self._fsync_dir()
        with self._lock:
            self._unstored_bytes -= segment.size - len(data)
            fixed = Segment(segment.seq, segment.path, len(data), segment.spans, len(records),
                            zlib.crc32(data), self.instance)
            if segment.seq in self._claimed:
                self._claimed[segment.seq] = fixed
        return fixed

    def unclaimed_segments(self) -> int:
        """Segments nobody is storing yet (sealed and waiting, or still open)."""
        with self._lock:
            return len(self._sealed) + (1 if self._file is not None else 0)

    def pending_segments(self) -> int:
        with self._lock:
            return len(self._sealed) + len(self._claimed) + (1 if self._file is not None else 0)

    def _expire_done(self) -> None:
        # several segment writers call this at once: a file another one just removed counts as gone
        sizes = [(p, _size_or_none(p)) for p in sorted(self.directory.glob("*.done"))]
        done = [(p, size) for p, size in sizes if size is not None]
        total = sum(size for _, size in done)
        held = [h for h in (hold() for hold in self.retention_holds) if h is not None]
        lowest_held = min(held) if held else None
        while done and total > self.retain_done_bytes:
            if lowest_held is not None and int(done[0][0].stem) >= lowest_held:
                break  # a forwarding destination has not read this one yet
            oldest, size = done.pop(0)
            total -= size
            oldest.unlink(missing_ok=True)

    # -- start-up and shutdown ------------------------------------------------------
    def _recover(self) -> None:
        """Take over what the directory holds (see ``recovery.recover``)."""
        found = recover(self.directory, self.instance, self.fsync)
        self._sealed.extend(found.sealed)
        self._unstored_bytes += found.unstored_bytes
        self._segment_seq = max(self._segment_seq, found.last_seq)
        self.corrupt_records += found.corrupt_records
        self.torn_tails += found.torn_tails
        self.recovered_fingerprints.extend(found.fingerprints)
        self.last_sealed_seq = self._segment_seq

    # -- reading for forwarding (each reader keeps its own cursor) ---------------------------
    def segment_path(self, seq: int) -> Path | None:
        """Where sealed segment ``seq`` is now (.wal, .done, or quarantined), or None if it is gone."""
        name = f"{seq:012d}"
        for path in (self.directory / f"{name}.wal", self.directory / f"{name}.done",
                     self.directory / "quarantine" / f"{name}.wal"):
            if path.exists():
                return path
        return None

    def reserve_seq(self, seq: int) -> None:
        """Never number a new segment ``seq`` or below (a forwarding cursor has passed it)."""
        with self._lock:
            self._segment_seq = max(self._segment_seq, seq)

    def iter_unstored_records(self) -> Iterator[Record]:
        """Records of sealed segments not yet stored, read from disk."""
        with self._lock:
            segments = list(self._sealed) + list(self._claimed.values())
        for segment in segments:
            yield from scan(segment.path.read_bytes()).records

    def close(self, timeout: float = 10.0) -> None:
        """Stop accepting, write and seal what is queued."""
        with self._lock:
            self._closing = True
            self._wake_flusher.notify_all()
        self._flusher.join(timeout)


def _size_or_none(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None
