"""The export pipeline's bookkeeping: what was dropped, what failed to leave.

Batching stays the OTel SDK's ``BatchSpanProcessor`` (a bounded deque drained by
a background thread: the caller only appends).  We add what production needs
and the SDK does not expose: a count of spans dropped because the queue was
full, a count of spans the exporter failed to deliver (or raised on), and a
shutdown whose wait is bounded even when the collector is down.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from spanledger._safe import COUNTERS, log_once

SPANS_DROPPED = "spans_dropped"
SPANS_EXPORTED = "spans_exported"
SPANS_FAILED = "spans_failed"


class DropCountingQueue(collections.deque):  # type: ignore[type-arg]
    """The SDK's bounded queue, counting the spans it pushes out when full.

    The SDK checks "is the queue full?" and then appends, while its worker
    pops concurrently, so counting at ``on_end`` miscounts under load.  Here
    the check and the append happen under one lock that ``pop`` shares, so
    every span the queue discards is counted exactly once."""

    def __init__(self, maxlen: int) -> None:
        super().__init__([], maxlen)
        self._lock = threading.Lock()

    def appendleft(self, item: Any) -> None:
        with self._lock:
            if len(self) == self.maxlen:
                COUNTERS.add(SPANS_DROPPED)
                log_once("queue.full", "spanledger: export queue full (%d spans); dropping spans", self.maxlen)
            super().appendleft(item)

    def pop(self) -> Any:
        with self._lock:
            return super().pop()


class CountingSpanExporter(SpanExporter):
    """Wraps the real exporter: counts delivered and failed spans; an exception is a failure."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception:  # noqa: BLE001 - a broken exporter must not kill the export thread
            COUNTERS.add(SPANS_FAILED, len(spans))
            log_once("export.raised", "spanledger: the span exporter raised; spans lost", exc_info=True)
            return SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            COUNTERS.add(SPANS_EXPORTED, len(spans))
        else:
            COUNTERS.add(SPANS_FAILED, len(spans))
            log_once("export.failed", "spanledger: export failed (is the collector reachable?); spans lost")
        return result

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
        super().__init__(CountingSpanExporter(exporter), **kwargs)
        self.shutdown_timeout_millis = shutdown_timeout_millis
        batch = getattr(self, "_batch_processor", None)
        # SDK internals (opentelemetry-sdk 1.45); without them we still work, uncounted.
        self._queue = None
        if batch is not None and isinstance(getattr(batch, "_queue", None), collections.deque):
            self._queue = batch._queue = DropCountingQueue(batch._queue.maxlen)

    def queued(self) -> int:
        return len(self._queue) if self._queue is not None else 0

    def shutdown(self) -> None:
        self._batch_processor.shutdown(timeout_millis=self.shutdown_timeout_millis)
