"""The export pipeline's bookkeeping: what was dropped, what failed to leave.

Batching stays the OTel SDK's ``BatchSpanProcessor`` (a bounded deque drained by
a background thread: the caller only appends).  We add what production needs
and the SDK does not expose: a count of spans dropped because the queue was
full, a count of spans the exporter failed to deliver (or raised on), and a
shutdown whose wait is bounded even when the collector is down.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from spanledger._safe import COUNTERS, log_once

SPANS_ENDED = "spans_ended"
SPANS_EXPORTED = "spans_exported"
SPANS_FAILED = "spans_failed"


def spans_dropped(batch: CountingBatchSpanProcessor | None) -> int:
    """Spans that ended but were neither delivered, failed, queued nor being exported.

    Derived rather than counted: the SDK's queue drops the oldest span when a
    new one arrives while it is full, and its worker pops concurrently, so a
    check-then-count at ``on_end`` over- or under-counts under load.  This sum
    is exact whenever the pipeline is still (after a flush or shutdown)."""
    queued = batch.queued() if batch is not None else 0
    exporting = batch.exporting() if batch is not None else 0
    ended, exported, failed = COUNTERS.get(SPANS_ENDED), COUNTERS.get(SPANS_EXPORTED), COUNTERS.get(SPANS_FAILED)
    return max(0, ended - exported - failed - queued - exporting)


class CountingSpanExporter(SpanExporter):
    """Wraps the real exporter: counts delivered and failed spans; an exception is a failure."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.in_flight = 0  # spans handed to the inner exporter and not yet counted

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.in_flight = len(spans)  # one export at a time: the SDK's worker thread
        try:
            result = self.inner.export(spans)
        except Exception:  # noqa: BLE001 - a broken exporter must not kill the export thread
            COUNTERS.add(SPANS_FAILED, len(spans))
            self.in_flight = 0
            log_once("export.raised", "spanledger: the span exporter raised; spans lost", exc_info=True)
            return SpanExportResult.FAILURE
        self._count(result, len(spans))
        self.in_flight = 0
        return result

    @staticmethod
    def _count(result: SpanExportResult, n: int) -> None:
        if result is SpanExportResult.SUCCESS:
            COUNTERS.add(SPANS_EXPORTED, n)
        else:
            COUNTERS.add(SPANS_FAILED, n)
            log_once("export.failed", "spanledger: export failed (is the collector reachable?); spans lost")

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        try:
            self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)  # type: ignore[call-arg]
        except TypeError:
            self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


class CountingBatchSpanProcessor(BatchSpanProcessor):
    """``BatchSpanProcessor`` that counts drops and shuts down within a deadline."""

    def __init__(self, exporter: SpanExporter, *, shutdown_timeout_millis: int = 5000, **kwargs: Any) -> None:
        self._counting_exporter = CountingSpanExporter(exporter)
        super().__init__(self._counting_exporter, **kwargs)
        self.shutdown_timeout_millis = shutdown_timeout_millis
        batch = getattr(self, "_batch_processor", None)
        # SDK internals (opentelemetry-sdk 1.45); without them we still work, uncounted.
        self._queue = getattr(batch, "_queue", None)
        self._max_queue_size: int = getattr(batch, "_max_queue_size", 0)

    def on_end(self, span: ReadableSpan) -> None:
        COUNTERS.add(SPANS_ENDED)
        queue = self._queue
        if queue is not None and len(queue) >= self._max_queue_size:
            log_once("queue.full", "spanledger: export queue full (%d spans); dropping spans", self._max_queue_size)
        super().on_end(span)

    def queued(self) -> int:
        return len(self._queue) if self._queue is not None else 0

    def exporting(self) -> int:
        return self._counting_exporter.in_flight

    def shutdown(self) -> None:
        self._batch_processor.shutdown(timeout_millis=self.shutdown_timeout_millis)
