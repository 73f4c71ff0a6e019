"""Carry a trace (and the associated ids) across queues, processes and services.

* :func:`new_trace_id` — a fresh W3C trace id (32 hex digits), like the seeds'
  ``generateTraceId()``; :func:`trace_scope` makes root spans join it.
* :func:`inject` — writes ``traceparent`` (+ ``tracestate``, + ``baggage`` with
  the :func:`spanledger.associate` ids) into a dict you put on a message, in
  HTTP headers or in a child's environment (``uppercase=True``: ``TRACEPARENT``).
* :func:`extract` / :func:`continue_trace` — the receiving side: spans started
  under ``continue_trace(carrier)`` are children of the sender's span and
  inherit its associations.

Only the ``spanledger.*``/``gen_ai.*`` association ids travel in ``baggage``;
the process-wide OTel propagators are not touched.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, MutableMapping
from types import TracebackType
from typing import Any

from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from spanledger._ids import FORCED_TRACE_ID
from spanledger._safe import internal_error, invalid_input
from spanledger.context import AttachedContext, current_associations, with_associations

__all__ = ["new_trace_id", "trace_scope", "inject", "extract", "continue_trace"]

_TRACE_CONTEXT = TraceContextTextMapPropagator()
_BAGGAGE = W3CBaggagePropagator()
_ASSOCIATED_PREFIXES = ("spanledger.", "gen_ai.")
_rng = random.SystemRandom()


def new_trace_id() -> str:
    """A new random, valid W3C trace id as 32 lowercase hex digits."""
    while True:
        value = _rng.getrandbits(128)
        if value:
            return f"{value:032x}"


def _parse_trace_id(trace_id: str | int) -> int | None:
    if isinstance(trace_id, int):
        value = trace_id
    else:
        try:
            value = int(str(trace_id).strip().replace("-", ""), 16)  # accepts UUID spellings too
        except ValueError:
            return None
    return value if 0 < value < 2**128 else None


class trace_scope:  # noqa: N801 - used like a function
    """Root spans started inside join ``trace_id`` (spans with a parent keep the parent's trace).

    With spanledger's own provider the roots stay true roots.  With a foreign
    TracerProvider the scope falls back to a remote parent of that trace id
    (the spans then point at a parent span id that is never exported).
    """

    __slots__ = ("_trace_id", "_tokens")

    def __init__(self, trace_id: str | int) -> None:
        self._trace_id = _parse_trace_id(trace_id)
        if self._trace_id is None:
            invalid_input("trace_scope", "trace_scope() ignored an invalid trace id %r", trace_id)
        self._tokens: list[Any] = []

    @property
    def trace_id(self) -> str | None:
        return None if self._trace_id is None else f"{self._trace_id:032x}"

    def __enter__(self) -> trace_scope:
        if self._trace_id is None:
            return self
        try:
            from spanledger._runtime import RUNTIME

            if RUNTIME.provider is not None:
                self._tokens.append(FORCED_TRACE_ID.set(self._trace_id))
            else:
                parent = trace.SpanContext(
                    self._trace_id, _rng.getrandbits(64) or 1, is_remote=True, trace_flags=trace.TraceFlags(1)
                )
                ctx = trace.set_span_in_context(trace.NonRecordingSpan(parent))
                self._tokens.append(otel_context.attach(ctx))
        except Exception:  # noqa: BLE001
            internal_error("trace_scope.enter")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        while self._tokens:
            token = self._tokens.pop()
            try:
                if hasattr(token, "var"):
                    FORCED_TRACE_ID.reset(token)
                else:
                    otel_context.detach(token)
            except Exception:  # noqa: BLE001
                internal_error("trace_scope.exit")


def inject(
    carrier: MutableMapping[str, str] | None = None, *, context: Context | None = None, uppercase: bool = False
) -> MutableMapping[str, str]:
    """Write the current trace context and associations into ``carrier`` (a new dict if None)."""
    out: MutableMapping[str, str] = {} if carrier is None else carrier
    try:
        headers: dict[str, str] = {}
        _TRACE_CONTEXT.inject(headers, context=context)
        associations = current_associations(context)
        if associations:
            bag_ctx: Context | None = context
            for key, value in associations.items():
                bag_ctx = baggage.set_baggage(key, str(value), bag_ctx)
            _BAGGAGE.inject(headers, context=bag_ctx)
        for key, value in headers.items():
            out[key.upper() if uppercase else key] = value
    except Exception:  # noqa: BLE001
        internal_error("inject")
    return out


class _AnyCaseGetter(Getter[Mapping[str, Any]]):
    """Reads ``traceparent`` or ``TRACEPARENT`` (environment variables are upper case)."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None:
            value = carrier.get(key.upper())
        if value is None:
            return None
        return list(value) if isinstance(value, (list, tuple)) else [str(value)]

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return list(carrier.keys())


_GETTER = _AnyCaseGetter()


def extract(carrier: Mapping[str, Any] | None) -> Context:
    """The context a sender injected: remote parent span plus its associations."""
    try:
        if not carrier:
            return otel_context.get_current()
        ctx = _TRACE_CONTEXT.extract(carrier, getter=_GETTER)
        bag = baggage.get_all(_BAGGAGE.extract(carrier, getter=_GETTER))
        associated = {key: str(value) for key, value in bag.items() if key.startswith(_ASSOCIATED_PREFIXES)}
        return with_associations(associated, ctx) if associated else ctx
    except Exception:  # noqa: BLE001
        internal_error("extract")
        return otel_context.get_current()


class continue_trace(AttachedContext):  # noqa: N801 - used like a function
    """``with continue_trace(message.headers):`` — spans inside continue the sender's trace."""

    __slots__ = ("_carrier",)

    def __init__(self, carrier: Mapping[str, Any] | None) -> None:
        self._carrier = carrier
        self._token = None

    def _context(self) -> Context:
        return extract(self._carrier)
