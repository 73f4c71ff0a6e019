"""Trace ids chosen by the caller (``trace_scope``) without inventing fake parents.

The seeds generate a trace id first and stamp it on every activity of a flow.
In OTel a trace id is picked when a root span starts, by the provider's
IdGenerator; ours returns the id of the enclosing :func:`trace_scope` when
there is one, so root spans in the scope join that trace as true roots.
"""

from __future__ import annotations

from contextvars import ContextVar

from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator

FORCED_TRACE_ID: ContextVar[int | None] = ContextVar("spanledger_forced_trace_id", default=None)


class ScopedTraceIdGenerator(IdGenerator):
    """Delegates to ``inner`` except for the trace id of roots inside a trace_scope."""

    def __init__(self, inner: IdGenerator | None = None) -> None:
        self.inner = inner or RandomIdGenerator()

    def generate_span_id(self) -> int:
        return self.inner.generate_span_id()

    def generate_trace_id(self) -> int:
        forced = FORCED_TRACE_ID.get()
        return forced if forced is not None else self.inner.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        return self.inner.is_trace_id_random()
