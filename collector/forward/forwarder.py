"""One destination's forwarding loop: its own cursor over the sealed WAL segments.

    WAL sealed segments:  ... 41.done 42.done 43.wal 44.wal (45.open)
                                  ^ this destination's cursor (segment 42, record 17)

The loop reads the segment at its cursor (``.wal`` while unstored, ``.done``
after), sends its records in order, and moves the cursor only after the
destination answered.  The records are the clients' own request bytes (the
WAL's tenant and checksum fields are not part of them); consecutive records of
one tenant are sent as one request (protobuf messages concatenate into one),
in batches that a restart rebuilds identically.

A destination that is down is retried with exponential backoff and full
jitter, never blocking storage or other destinations.  The WAL keeps stored
segments while a cursor still needs them (a retention hold), but at most
``sending_queue.queue_size`` segments per destination: a cursor that falls
further behind skips ahead, and what it skipped is counted as dropped.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ..wal import WriteAheadLog, scan
from .cursor import Cursor
from .transport import SendFailed, transport_for

log = logging.getLogger(__name__)

MAX_BATCH_BYTES = 3 << 20  # under the 4 MiB receive limit most OTLP receivers (ours included) keep by default


@dataclass
class ForwardStats:
    """Per-destination counters (in /v1/stats under ``forwarding`` and at /metrics)."""

    requests_sent: int = 0
    spans_sent: int = 0
    spans_rejected_by_destination: int = 0  # its partial_success
    spans_dropped: int = 0  # a permanent error, or fell past the backlog bound
    segments_dropped: int = 0
    send_failures: int = 0  # attempts that will be retried
    last_error: str = ""


def _span_count(request: bytes) -> int:
    message = ExportTraceServiceRequest.FromString(request)
    return sum(len(ss.spans) for rs in message.resource_spans for ss in rs.scope_spans)


class Forwarder(threading.Thread):
    """Forwards every sealed WAL segment to one destination, from a persisted cursor."""

    def __init__(self, name: str, config: dict, wal: WriteAheadLog, cursor_dir: Path, transport=None) -> None:
        super().__init__(name=f"spanledger-forward-{name}", daemon=True)
        self.destination = name
        self.wal = wal
        self.transport = transport or transport_for(name, config)
        self.queue_size = max(1, config["sending_queue"]["queue_size"])
        self.initial_backoff_s = config["retry_on_failure"]["initial_interval"]
        self.max_backoff_s = config["retry_on_failure"]["max_interval"]
        self.tenants = frozenset(str(t) for t in config["tenants"])
        self.stats = ForwardStats()
        self.cursor = Cursor.load(cursor_dir, name)
        if self.cursor.next_seq == 0:  # a new destination gets what is sealed from now on
            self.cursor.next_seq = wal.last_sealed_seq + 1
            self.cursor.save(durable=True)
        wal.reserve_seq(self.cursor.next_seq - 1)  # seqs are never reused under a cursor
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._drain_until: float | None = None
        wal.seal_listeners.append(lambda seq: self._wake.set())
        wal.retention_holds.append(self.hold)

    # -- what the WAL and /metrics ask --------------------------------------------------
    def _floor(self) -> int:
        """The oldest segment this destination may still get (the backlog bound)."""
        return self.wal.last_sealed_seq - self.queue_size + 1

    def hold(self) -> int:
        return max(self.cursor.next_seq, self._floor())

    @property
    def segments_behind(self) -> int:
        return max(0, self.wal.last_sealed_seq - self.cursor.next_seq + 1)

    # -- lifecycle ----------------------------------------------------------------------
    def request_stop(self, drain_s: float) -> None:
        """Deliver what is sealed for up to ``drain_s`` more seconds, then stop (the cursor keeps the rest)."""
        self._drain_until = time.monotonic() + drain_s
        self._wake.set()

    def stop(self, timeout_s: float) -> None:
        if self._drain_until is None:
            self.request_stop(0)
        self.join(timeout_s)
        self._halt.set()
        self._wake.set()
        self.join(1)
        self.cursor.save(durable=True)
        self.transport.close()

    def _should_stop(self) -> bool:
        if self._halt.is_set():
            return True
        return self._drain_until is not None and (time.monotonic() >= self._drain_until or self.segments_behind == 0)

    def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        if not self._should_stop():
            self._wake.wait(seconds)

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> None:
        while not self._should_stop():
            self._skip_past_backlog_bound()
            if self.cursor.next_seq > self.wal.last_sealed_seq:
                self._sleep(1.0)
                continue
            path = self.wal.segment_path(self.cursor.next_seq)
            try:
                data = path.read_bytes() if path is not None else None
            except FileNotFoundError:  # renamed .wal -> .done between the look-up and the read
                continue
            if data is not None and not self._send_segment(data):
                continue  # stopping, or the segment fell past the bound mid-way
            self.cursor.next_seq += 1
            self.cursor.next_record = 0
            self.cursor.save(durable=True)

    def _skip_past_backlog_bound(self) -> None:
        floor = self._floor()
        if self.cursor.next_seq >= floor:
            return
        skipped = floor - self.cursor.next_seq
        spans = 0
        for seq in range(self.cursor.next_seq, floor):
            path = self.wal.segment_path(seq)
            if path is not None:
                try:
                    records = scan(path.read_bytes()).records
                    spans += sum(_span_count(r.request) for r in records[self._skip_records(seq):])
                except OSError:
                    pass
        self.stats.segments_dropped += skipped
        self.stats.spans_dropped += spans
        log.error("forwarding to %s: %d segment(s) (%d span(s)) fell past sending_queue.queue_size=%d and are "
                  "not forwarded; raise queue_size or fix the destination (%s)",
                  self.destination, skipped, spans, self.queue_size, self.stats.last_error)
        self.cursor.next_seq, self.cursor.next_record = floor, 0
        self.cursor.save(durable=True)

    def _skip_records(self, seq: int) -> int:
        return self.cursor.next_record if seq == self.cursor.next_seq else 0

    def _batches(self, data: bytes):
        """(index after the batch, tenant, request bytes, span count), from the cursor's record on."""
        records = scan(data).records
        i = self.cursor.next_record
        while i < len(records):
            tenant = records[i].tenant
            parts, size = [], 0
            while i < len(records) and records[i].tenant == tenant and (not parts or size + len(records[i].request)
                                                                           <= MAX_BATCH_BYTES):
                parts.append(records[i].request)
                size += len(records[i].request)
                i += 1
            if self.tenants and tenant not in self.tenants:
                yield i, tenant, b"", 0
                continue
            yield i, tenant, b"".join(parts), sum(_span_count(p) for p in parts)

    def _send_segment(self, data: bytes) -> bool:
        seq = self.cursor.next_seq
        for after, _tenant, request, spans in self._batches(data):
            if request and not self._deliver(seq, request, spans):
                return False
            self.cursor.next_record = after
            self.cursor.save()
        return True

    def _deliver(self, seq: int, request: bytes, spans: int) -> bool:
        """Send until delivered (True), permanently refused (True, counted), or stopping / past the bound (False)."""
        attempt = 0
        while True:
            try:
                delivered = self.transport.send(request)
            except SendFailed as exc:
                self.stats.last_error = str(exc)
                if not exc.retryable:
                    self.stats.spans_dropped += spans
                    log.error("forwarding to %s: %d span(s) refused for good (%s); dropped", self.destination, spans, exc)
                    return True
                self.stats.send_failures += 1
                delay = random.uniform(0, min(self.max_backoff_s, self.initial_backoff_s * 2 ** attempt))
                delay = max(delay, exc.retry_after_s or 0)
                attempt += 1
                if attempt == 1 or attempt % 20 == 0:
                    log.warning("forwarding to %s failed (%s); retrying in %.1fs", self.destination, exc, delay)
                self._sleep(delay)
                if self._should_stop() or seq < self._floor():
                    return False
                continue
            self.stats.requests_sent += 1
            self.stats.spans_sent += spans
            self.stats.spans_rejected_by_destination += delivered.rejected_spans
            return True


def forwarders_from_config(config, wal: WriteAheadLog, data_dir: Path) -> list[Forwarder]:
    """One Forwarder per otlp/ and otlphttp/ exporter in the traces pipeline."""
    from ..config import ConfigError

    forwarders = []
    for name, exporter in config.forward_exporters().items():
        try:
            forwarders.append(Forwarder(name, exporter, wal, data_dir / "forward"))
        except (ValueError, OSError) as exc:
            raise ConfigError(f"exporters.{name}: {exc}") from exc
    return forwarders
