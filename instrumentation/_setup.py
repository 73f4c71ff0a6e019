"""``configure()`` / ``shutdown()`` / ``force_flush()`` / ``stats()``.

One call builds the pipeline: TracerProvider -> association processor ->
(budgets, your processors) -> counting BatchSpanProcessor -> OTLP/gRPC exporter.
It is idempotent: a second call with the same settings is a no-op, a call with
different settings is refused with a warning (call ``shutdown()`` first).
Spans are flushed at interpreter exit, waiting at most
``shutdown_timeout_millis`` so a dead collector cannot hang the exit.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator

from spanledger._config import Settings, resolve_settings
from spanledger._export import SPANS_DROPPED, SPANS_EXPORTED, SPANS_FAILED, CountingBatchSpanProcessor
from spanledger._ids import ScopedTraceIdGenerator
from spanledger._runtime import RUNTIME, TRACER_NAME, VERSION, api_tracer
from spanledger._safe import COUNTERS, INTERNAL_ERRORS, INVALID_INPUTS, internal_error
from spanledger.context import AssociationSpanProcessor
from spanledger.pricing import PriceBook, default_price_book
from spanledger.privacy import ContentPolicy, Redactor

logger = logging.getLogger("spanledger")

_lock = threading.RLock()
_configured: tuple[Settings, tuple[Any, ...]] | None = None
_batch: CountingBatchSpanProcessor | None = None
_atexit_registered = False


@dataclass(frozen=True)
class Stats:
    """What happened to the spans of this process since start (monotonic counters)."""

    spans_exported: int
    spans_failed: int
    spans_dropped: int
    spans_queued: int
    internal_errors: int
    invalid_inputs: int


def stats() -> Stats:
    """Counters for dashboards and health checks: drops and failures are never silent."""
    batch = _batch
    return Stats(
        spans_exported=COUNTERS.get(SPANS_EXPORTED),
        spans_failed=COUNTERS.get(SPANS_FAILED),
        spans_dropped=COUNTERS.get(SPANS_DROPPED),
        spans_queued=batch.queued() if batch is not None else 0,
        internal_errors=COUNTERS.get(INTERNAL_ERRORS),
        invalid_inputs=COUNTERS.get(INVALID_INPUTS),
    )


def _otlp_exporter(settings: Settings) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(
        endpoint=settings.endpoint,
        insecure=settings.insecure,
        headers=dict(settings.headers) or None,
        timeout=settings.timeout,
    )


def _price_book(value: PriceBook | str | os.PathLike[str] | None) -> PriceBook:
    if value is None or isinstance(value, PriceBook):
        return value or default_price_book()
    try:
        return PriceBook.from_file(value)
    except ValueError as exc:
        logger.error("spanledger: %s; using the default price book", exc)
        return default_price_book()


def configure(
    *,
    service_name: str | None = None,
    endpoint: str | None = None,
    headers: Mapping[str, str] | None = None,
    insecure: bool | None = None,
    timeout: float | None = None,
    resource_attributes: Mapping[str, Any] | None = None,
    capture_content: bool | None = None,
    max_content_length: int | None = None,
    redact: Redactor | None = None,
    price_book: PriceBook | str | os.PathLike[str] | None = None,
    exporter: SpanExporter | None = None,
    span_processors: Iterable[SpanProcessor] = (),
    max_queue_size: int | None = None,
    max_export_batch_size: int | None = None,
    schedule_delay_millis: int | None = None,
    shutdown_timeout_millis: int | None = None,
    set_global_provider: bool = True,
    id_generator: IdGenerator | None = None,
) -> Settings | None:
    """Set up export of spanledger spans (see docs/instrumentation.md for every option).

    ``exporter`` replaces the OTLP/gRPC exporter (e.g. a console or in-memory
    one); ``span_processors`` (budgets, your own) run before the exporter.
    Returns the resolved settings, or None if setup itself failed (logged;
    the helpers then stay harmless no-ops).
    """
    global _configured, _batch, _atexit_registered
    try:
        with _lock:
            settings = resolve_settings(
                {
                    "service_name": service_name, "endpoint": endpoint, "headers": headers, "insecure": insecure,
                    "timeout": timeout, "resource_attributes": resource_attributes,
                    "capture_content": capture_content, "max_content_length": max_content_length,
                    "max_queue_size": max_queue_size, "max_export_batch_size": max_export_batch_size,
                    "schedule_delay_millis": schedule_delay_millis, "shutdown_timeout_millis": shutdown_timeout_millis,
                }  # fmt: skip
            )
            processors = tuple(span_processors)
            identity = (redact, price_book, exporter, processors, id_generator)
            if _configured is not None:
                if _configured != (settings, identity):
                    logger.warning("spanledger is already configured; call spanledger.shutdown() before reconfiguring")
                return _configured[0]
            if settings.disabled:
                logger.info("spanledger: OTEL_SDK_DISABLED is set; spans are not recorded")
                return settings

            attributes = dict(settings.resource_attributes)
            if settings.service_name:
                attributes[SERVICE_NAME] = settings.service_name
            provider = TracerProvider(
                resource=Resource.create(attributes),
                id_generator=ScopedTraceIdGenerator(id_generator),
                shutdown_on_exit=False,
            )
            provider.add_span_processor(AssociationSpanProcessor())
            for processor in processors:
                provider.add_span_processor(processor)
            batch = CountingBatchSpanProcessor(
                exporter if exporter is not None else _otlp_exporter(settings),
                shutdown_timeout_millis=settings.shutdown_timeout_millis,
                max_queue_size=settings.max_queue_size,
                max_export_batch_size=min(settings.max_export_batch_size, settings.max_queue_size),
                schedule_delay_millis=settings.schedule_delay_millis,
            )
            provider.add_span_processor(batch)
            if set_global_provider:
                if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
                    trace.set_tracer_provider(provider)
                else:
                    logger.info("spanledger: a global TracerProvider exists; spanledger exports its own spans")

            RUNTIME.content = ContentPolicy(settings.capture_content, settings.max_content_length, redact)
            RUNTIME.price_book = _price_book(price_book)
            RUNTIME.provider = provider
            RUNTIME.tracer = provider.get_tracer(TRACER_NAME, VERSION)
            _batch = batch
            _configured = (settings, identity)
            if not _atexit_registered:
                atexit.register(shutdown)
                _atexit_registered = True
            return settings
    except Exception:  # noqa: BLE001
        internal_error("configure")
        return None


def add_span_processor(processor: SpanProcessor) -> bool:
    """Add a processor (e.g. a BudgetTracker) to spanledger's provider; False if none is set up."""
    provider = RUNTIME.provider
    if provider is None:
        logger.warning("spanledger.add_span_processor(): call spanledger.configure() first")
        return False
    provider.add_span_processor(processor)
    return True


def force_flush(timeout_millis: int = 30_000) -> bool:
    """Export everything queued now; True when done in time."""
    provider = RUNTIME.provider
    if provider is None:
        return True
    try:
        return provider.force_flush(timeout_millis)
    except Exception:  # noqa: BLE001
        internal_error("force_flush")
        return False


def shutdown() -> None:
    """Flush (bounded wait) and stop exporting; helpers become no-ops; configure() may run again."""
    global _configured, _batch
    with _lock:
        provider = RUNTIME.provider if _configured is not None else None
        _configured = None
        _batch = None
        if provider is None:
            return
        RUNTIME.provider = None
        RUNTIME.tracer = api_tracer()
        try:
            provider.shutdown()
        except Exception:  # noqa: BLE001
            internal_error("shutdown")
