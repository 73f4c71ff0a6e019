"""Test your own instrumentation: spans captured in memory, deterministic ids and times.

Registered as a pytest plugin (``pytest11`` entry point), it adds the
``captured_spans`` fixture:

    def test_my_agent(captured_spans):
        run_my_agent()
        assert captured_spans.attributes("chat gpt-4o")["gen_ai.usage.input_tokens"] == 12
        assert captured_spans.as_dicts() == [...]      # whole spans, stable across runs

Inside the fixture trace ids and span ids count 1, 2, 3...; every clock read
by the SDK or spanledger returns the next whole second (1 s, 2 s, ...), so
exported spans compare equal run after run.  Spans are exported synchronously.
Content capture is off (as in production) unless you call
:meth:`CapturedSpans.set_content_policy`.  The plugin needs only the agent-side
dependencies and does nothing for tests that do not use the fixture.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator

from spanledger import _clock
from spanledger._ids import ScopedTraceIdGenerator
from spanledger._runtime import RUNTIME, TRACER_NAME, VERSION
from spanledger.context import AssociationSpanProcessor
from spanledger.pricing import PriceBook
from spanledger.privacy import ContentPolicy, Redactor

__all__ = ["CapturedSpans", "IncrementalIdGenerator", "capture_spans", "captured_spans"]

TEST_SERVICE_NAME = "spanledger-test"


class IncrementalIdGenerator(IdGenerator):
    """Trace ids and span ids 1, 2, 3... (each its own sequence)."""

    def __init__(self) -> None:
        self._trace_ids = itertools.count(1)
        self._span_ids = itertools.count(1)

    def generate_span_id(self) -> int:
        return next(self._span_ids)

    def generate_trace_id(self) -> int:
        return next(self._trace_ids)


class _SecondsClock:
    """Each call returns the next whole second, in nanoseconds."""

    def __init__(self) -> None:
        self._ticks = itertools.count(1)

    def __call__(self) -> int:
        return next(self._ticks) * 1_000_000_000


class CapturedSpans:
    """The spans finished so far, with helpers to look them up."""

    def __init__(self, provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
        self.provider = provider
        self.exporter = exporter

    def spans(self) -> list[ReadableSpan]:
        """Finished spans in the order they ended."""
        return list(self.exporter.get_finished_spans())

    def names(self) -> list[str]:
        return [span.name for span in self.spans()]

    def by_name(self, name: str) -> ReadableSpan:
        """The one finished span called ``name`` (fails the test if there are 0 or several)."""
        found = [span for span in self.spans() if span.name == name]
        assert len(found) == 1, f"expected one span named {name!r}, found {len(found)} among {self.names()}"
        return found[0]

    def attributes(self, name: str) -> dict[str, Any]:
        return dict(self.by_name(name).attributes or {})

    def clear(self) -> None:
        self.exporter.clear()

    def add_processor(self, processor: SpanProcessor) -> None:
        """E.g. a BudgetTracker, fed by the captured spans."""
        self.provider.add_span_processor(processor)

    def set_content_policy(self, capture: bool = True, max_length: int = 4096, redact: Redactor | None = None) -> None:
        RUNTIME.content = ContentPolicy(capture, max_length, redact)

    def use_price_book(self, book: PriceBook) -> None:
        RUNTIME.price_book = book

    def as_dicts(self) -> list[dict[str, Any]]:
        """Whole spans as plain dicts (ids as ints, times in ns) for equality assertions."""
        return [span_to_dict(span) for span in self.spans()]


def span_to_dict(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.get_span_context()
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": ctx.trace_id if ctx else None,
        "span_id": ctx.span_id if ctx else None,
        "parent_span_id": span.parent.span_id if span.parent else None,
        "start_time": span.start_time,
        "end_time": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
        "events": [
            {"name": event.name, "timestamp": event.timestamp, "attributes": dict(event.attributes or {})}
            for event in span.events
        ],
    }


@contextmanager
def capture_spans(*, deterministic: bool = True) -> Iterator[CapturedSpans]:
    """Route spanledger's spans to memory for the duration of the block (usable outside pytest)."""
    import opentelemetry.sdk.trace as sdk_trace

    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": TEST_SERVICE_NAME}),
        id_generator=ScopedTraceIdGenerator(IncrementalIdGenerator() if deterministic else None),
        shutdown_on_exit=False,
    )
    provider.add_span_processor(AssociationSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    saved = (RUNTIME.tracer, RUNTIME.provider, RUNTIME.content, RUNTIME._price_book)
    saved_clocks = (sdk_trace.time_ns, _clock.time_ns)
    if deterministic:
        clock = _SecondsClock()
        sdk_trace.time_ns = clock  # type: ignore[assignment]
        _clock.time_ns = clock
    RUNTIME.tracer = provider.get_tracer(TRACER_NAME, VERSION)
    RUNTIME.provider = provider
    RUNTIME.content = ContentPolicy()
    try:
        yield CapturedSpans(provider, exporter)
    finally:
        RUNTIME.tracer, RUNTIME.provider, RUNTIME.content, RUNTIME._price_book = saved
        sdk_trace.time_ns, _clock.time_ns = saved_clocks  # type: ignore[assignment]
        provider.shutdown()


@pytest.fixture
def captured_spans() -> Iterator[CapturedSpans]:
    """spanledger's spans of this test, in memory, with deterministic ids and timestamps."""
    with capture_spans() as captured:
        yield captured
