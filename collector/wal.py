"""The write-ahead log: an accepted request is on disk before it is acknowledged.

A segment file is a stream of length-delimited ``WalRecord`` messages
(schema/otlp_wal.proto): each record is the client's ExportTraceServiceRequest
bytes followed by two fields of our own, the tenant and a CRC-32.  That makes a
sealed segment *directly* readable by ClickHouse (``FORMAT Protobuf``), so the
collector never decodes spans in Python to store them.

Appends are group-committed: callers queue their records, one flusher thread
writes everything queued with a single ``write`` + ``fdatasync`` and wakes them,
so throughput does not pay one fsync per request.

Segment life cycle::

    NNNNNNNNNNNN.open  --seal-->  NNNNNNNNNNNN.wal  --stored-->  NNNNNNNNNNNN.done  --expire--> deleted

``.done`` segments are kept for a while so that, after a restart, a client's
retry of a request that was stored but whose answer was lost is still
recognised as a duplicate (see ``RecentRequests``).
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

_TENANT_TAG = bytes([0xCA, 0x3E])  # field 1001, wire type 2 (length-delimited)
_CHECKSUM_TAG = bytes([0xD5, 0x3E])  # field 1002, wire type 5 (fixed32)
_TRAILER_LEN = len(_CHECKSUM_TAG) + 4
_TENANT_FIELD = 1001

FILE_MODE = 0o600  # spans are private: WAL files, quarantine, instance id
DIR_MODE = 0o700
INSTANCE_ID_FILE = "instance_id"


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make it 0700 whatever the umask."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)
    return path


def write_private(path: Path, data: bytes, fsync: bool = False) -> None:
    """Write ``path`` whole with mode 0600 (whatever the umask), via a temporary file and a rename."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb", closefd=False) as f:
            _write_all(f, data)
            f.flush()
            if fsync:
                os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def instance_id(directory: Path) -> str:
    """This collector's id, created once in ``directory`` (0600) and kept: it makes dedup tokens
    unique across collectors that share one ClickHouse server."""
    path = directory / INSTANCE_ID_FILE
    try:
        value = path.read_text().strip()
        if value:
            os.chmod(path, FILE_MODE)
            return value
    except FileNotFoundError:
        pass
    value = secrets.token_hex(8)
    write_private(path, value.encode(), fsync=True)
    return value


class WalFull(Exception):
    """The log holds its configured maximum of unstored bytes; the client should retry later."""


class WalWriteError(Exception):
    """The disk refused a write (full, read-only, I/O error); nothing of the batch was acknowledged."""


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read_varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Decode a protobuf varint at ``pos``; returns (value, position after it)."""
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def encode_record(request: bytes, tenant: str, request_crc: int | None = None) -> bytes:
    """One WAL record, length prefix included.  ``request_crc`` saves re-hashing the request."""
    crc = zlib.crc32(request) if request_crc is None else request_crc
    tenant_bytes = tenant.encode()
    # always written, even empty: the tenant ClickHouse reads is the last field 1001, so it must be ours
    tenant_field = _TENANT_TAG + _varint(len(tenant_bytes)) + tenant_bytes
    crc = zlib.crc32(tenant_field, crc)
    body_len = len(request) + len(tenant_field) + _TRAILER_LEN
    return b"".join((_varint(body_len), request, tenant_field, _CHECKSUM_TAG, crc.to_bytes(4, "little")))


def request_fingerprint(request: bytes, tenant: str, crc: int | None = None) -> tuple[int, int, int, str]:
    """What identifies a request for duplicate detection: CRC-32, Adler-32 and length
    (~64 bits over requests that are nearly always kilobytes long), under the tenant.
    ``crc`` saves re-hashing when the CRC-32 of ``request`` is already known."""
    return (zlib.crc32(request) if crc is None else crc, zlib.adler32(request), len(request), tenant)


@dataclass(frozen=True)
class Record:
    request: bytes
    tenant: str


@dataclass
class ScanResult:
    records: list[Record] = field(default_factory=list)
    corrupt: int = 0  # records skipped because their checksum or framing was wrong
    torn_tail: bool = False  # the last record was cut short (a crash mid-write; never acknowledged)
    valid_bytes: int = 0


def scan(data: bytes) -> ScanResult:
    """Parse a segment, skipping damaged records and resynchronising after them."""
    result = ScanResult()
    pos, end = 0, len(data)
    while pos < end:
        record, next_pos = _parse_at(data, pos)
        if record is not None:
            result.records.append(record)
            pos = next_pos
            result.valid_bytes = pos
            continue
        if next_pos == -1:  # ran past the end: a torn final write
            result.torn_tail = True
            break
        result.corrupt += 1
        pos = _resync(data, pos + 1)
        if pos < 0:
            break
    return result


def _parse_at(data: bytes, pos: int) -> tuple[Record | None, int]:
    try:
        length, body_start = read_varint(data, pos)
    except ValueError:
        return None, -1
    body_end = body_start + length
    if length < _TRAILER_LEN:
        return None, 0
    if body_end > len(data):
        return None, -1
    body = data[body_start:body_end]
    if body[-_TRAILER_LEN:-4] != _CHECKSUM_TAG:
        return None, 0
    if zlib.crc32(body[:-_TRAILER_LEN]) != int.from_bytes(body[-4:], "little"):
        return None, 0
    payload = body[:-_TRAILER_LEN]
    request, tenant = _split_tenant(payload)
    return Record(request, tenant), body_end


def _split_tenant(payload: bytes) -> tuple[bytes, str]:
    """The request and the tenant of a record body: the tenant is the field 1001 that ends it,
    found by walking the top-level fields (never by searching bytes, which a client chooses)."""
    pos = 0
    try:
        while pos < len(payload):
            tag, after_tag = read_varint(payload, pos)
            if tag & 7 != 2:
                break
            length, start = read_varint(payload, after_tag)
            if tag >> 3 == _TENANT_FIELD and start + length == len(payload):
                return bytes(payload[:pos]), payload[start:].decode()
            pos = start + length
    except (ValueError, UnicodeDecodeError):
        pass
    # not a protobuf request (tests, or damage the CRC did not catch): the shortest tenant field that ends it
    for length in range(min(len(payload), 1 << 10)):
        prefix = _TENANT_TAG + _varint(length)
        start = len(payload) - length - len(prefix)
        if start < 0:
            break
        if payload.startswith(prefix, start):
            try:
                return bytes(payload[:start]), payload[start + len(prefix):].decode()
            except UnicodeDecodeError:
                break
    return bytes(payload), ""


def _resync(data: bytes, pos: int, max_attempts: int = 1 << 20) -> int:
    """The next offset at which a whole valid record starts, or -1."""
    attempts = 0
    while pos < len(data) and attempts < max_attempts:
        record, _ = _parse_at(data, pos)
        if record is not None:
            return pos
        pos += 1
        attempts += 1
    return -1


def _write_all(file, data: bytes) -> None:
    """An unbuffered write may be short (a size limit, a nearly full disk): finish it or raise."""
    view = memoryview(data)
    while view:
        written = file.write(view)
        if not written:
            raise OSError("the write-ahead log file accepted no more bytes")
        view = view[written:]


@dataclass
class Segment:
    """A sealed segment waiting to be stored."""

    seq: int
    path: Path
    size: int
    spans: int
    requests: int
    content_crc: int = 0  # CRC-32 of the segment's bytes
    instance: str = ""  # the collector's instance id (see ``instance_id``)

    @property
    def dedup_token(self) -> str:
        # Deterministic per segment: a replay after a crash between "stored" and
        # "marked .done" re-sends the same token and ClickHouse drops it.  Unique
        # otherwise: the instance id separates collectors on one server, the
        # content hash separates a segment from one that reused its number
        # after a restart (nothing of the old one retained).
        return f"spanledger-wal-{self.instance}-{self.seq}-{self.size}-{self.content_crc:08x}"


@dataclass
class _Pending:
    data: bytes
    spans: int
    seq: int = 0


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
        self._file_opened_at = 0.0
        # fingerprints of every request found on disk at start (stored or not), so that a
        # client's retry after a restart is still recognised; only the fingerprints are kept
        self.recovered_fingerprints: list[tuple[int, int, int, str]] = []

        self._recover()
        self._flusher = threading.Thread(target=self._flush_loop, name="spanledger-wal-flusher", daemon=True)
        self._flusher.start()

    # -- appending ------------------------------------------------------------
    def append(self, record: bytes, spans: int) -> None:
        """Queue one encoded record and return once it is on disk (fsynced)."""
        with self._lock:
            if self._closing:
                raise WalWriteError("the collector is shutting down")
            if self._unstored_bytes + len(record) > self.max_bytes:
                raise WalFull(f"write-ahead log holds {self._unstored_bytes} unstored bytes (max_bytes={self.max_bytes})")
            pending = _Pending(record, spans, self._next_seq)
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
            _write_all(file, data)
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
                                    self._file_crc, self.instance))
        self._sealed_ready.notify_all()

    def _fsync_dir(self) -> None:
        if self.fsync:
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

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
        target = self.quarantine_dir() / segment.path.name
        write_private(target.with_suffix(".reason"), reason.encode())
        os.replace(segment.path, target)
        with self._lock:
            self._claimed.pop(segment.seq, None)
            self._unstored_bytes -= segment.size
        return target

    def quarantine_records(self, segment: Segment, records: list[Record], reason: str) -> Path:
        """Keep ``records`` (what the store refused of ``segment``) in quarantine, with the reason."""
        target = self.quarantine_dir() / segment.path.name
        write_private(target, b"".join(encode_record(r.request, r.tenant) for r in records), fsync=self.fsync)
        write_private(target.with_suffix(".reason"), reason.encode(), fsync=self.fsync)
        return target

    def quarantine_dir(self) -> Path:
        return private_dir(self.directory / "quarantine")

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
        done = sorted(self.directory.glob("*.done"))
        total = sum(p.stat().st_size for p in done)
        while done and total > self.retain_done_bytes:
            oldest = done.pop(0)
            total -= oldest.stat().st_size
            oldest.unlink(missing_ok=True)

    # -- start-up and shutdown ------------------------------------------------------
    def _recover(self) -> None:
        """Seal what a crash left open, verify every unstored segment, queue them in order."""
        for path in sorted(self.directory.glob("*.tmp")):
            path.unlink()
        paths = sorted(self.directory.glob("*.open")) + sorted(self.directory.glob("*.wal"))
        paths.sort(key=lambda p: int(p.stem))
        for path in paths:
            seq = int(path.stem)
            os.chmod(path, FILE_MODE)  # a file written by an older version may be 0644
            data = path.read_bytes()
            result = scan(data)
            self.corrupt_records += result.corrupt
            self.torn_tails += int(result.torn_tail)
            if result.corrupt or result.torn_tail:
                log.warning(
                    "write-ahead log segment %s: %d corrupt record(s) skipped, torn tail: %s; %d record(s) recovered",
                    path.name, result.corrupt, result.torn_tail, len(result.records),
                )
                data = b"".join(encode_record(r.request, r.tenant) for r in result.records)
                write_private(path, data, fsync=self.fsync)
            self.recovered_fingerprints.extend(request_fingerprint(r.request, r.tenant) for r in result.records)
            sealed = path.with_suffix(".wal")
            if not result.records:
                path.unlink()
                continue
            if path != sealed:
                os.rename(path, sealed)
            self._sealed.append(Segment(seq, sealed, len(data), -1, len(result.records), zlib.crc32(data), self.instance))
            self._unstored_bytes += len(data)
            self._segment_seq = max(self._segment_seq, seq)
        for path in sorted(self.directory.glob("*.done"), key=lambda p: int(p.stem)):
            self._segment_seq = max(self._segment_seq, int(path.stem))
            self.recovered_fingerprints.extend(
                request_fingerprint(r.request, r.tenant) for r in scan(path.read_bytes()).records)
        self._fsync_dir()

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
