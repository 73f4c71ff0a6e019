"""The span every activity is: start it, use it as ``with``, end it — cheaply.

:class:`Activity` is a hand-written context manager rather than the SDK's
``start_as_current_span`` generator: it sets all attributes in the one
``start_span`` call and makes the span current with a single context attach,
which keeps an activity within ~1.3x the cost of a bare SDK span.

Errors *inside* spanledger are swallowed and counted (``_safe``); the caller's
exception is recorded on the span (status ERROR, ``error.type``, an exception
event) and re-raised unchanged because ``__exit__`` never returns True.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, NamedTuple

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from spanledger import _clock
from spanledger import semconv as sc
from spanledger._jsonish import to_attribute_value
from spanledger._runtime import RUNTIME
from spanledger._safe import internal_error, never_fail, safe_str
from spanledger.context import with_associations

Attributes = dict[str, AttributeValue]


class ActivityRef(NamedTuple):
    """Ids of a recorded activity (hex), e.g. to link a log line or a database row to it."""

    trace_id: str
    span_id: str


def ref_of(span: Span) -> ActivityRef | None:
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return ActivityRef(f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}")


def error_type(exc: BaseException) -> str:
    """``error.type``: the exception's qualified class name (builtins unprefixed)."""
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def mark_error(span: Span, exc: BaseException, *, record: bool = True) -> None:
    """Status ERROR + ``error.type`` (+ the standard exception event)."""
    try:
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        span.set_attribute(sc.ERROR_TYPE, error_type(exc))
        if record:
            span.record_exception(exc)
    except Exception:  # noqa: BLE001
        internal_error("mark_error")


def merge_attributes(base: Attributes, extra: Mapping[str, Any] | None) -> Attributes:
    """``base`` plus user attributes coerced to valid OTel values (never overriding ``base``)."""
    if extra:
        try:
            for key, value in extra.items():
                if key not in base:
                    converted = to_attribute_value(value)
                    if converted is not None:
                        base[safe_str(key)] = converted
        except Exception:  # noqa: BLE001
            internal_error("merge_attributes")
    return base


def put(attributes: Attributes, key: str, value: Any) -> None:
    """Set ``key`` unless ``value`` is None; odd values are coerced, not rejected."""
    if value is None:
        return
    if not isinstance(value, (str, bool, int, float)):
        value = to_attribute_value(value)
        if value is None:
            return
    attributes[key] = value


class Activity:
    """One span: ``with activity:`` or ``start()`` ... ``stop()`` / ``fail(exc)``.

    Subclasses add attributes in :meth:`_finish` (called once, just before the
    span ends) and say what failure means in :meth:`_failed`.
    """

    __slots__ = ("_name", "_attributes", "_kind", "_start_time", "_context", "_span", "_token", "_done", "_scope")

    def __init__(
        self,
        name: str,
        attributes: Attributes,
        *,
        kind: SpanKind = SpanKind.INTERNAL,
        start_time: int | None = None,
        context: otel_context.Context | None = None,
        scope: Mapping[str, AttributeValue] | None = None,
    ) -> None:
        """``scope``: associations every span started inside ``with`` inherits."""
        self._name = name
        self._attributes = attributes
        self._kind = kind
        self._start_time = start_time
        self._context = context
        self._span: Span | None = None
        self._token: object | None = None
        self._done = False
        self._scope = scope

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> Activity:
        """Start the span (idempotent).  It becomes current only inside ``with``."""
        if self._span is None:
            try:
                self._span = RUNTIME.tracer.start_span(
                    self._name,
                    context=self._context,
                    kind=self._kind,
                    attributes=self._attributes,
                    start_time=self._start_time,
                )
            except Exception:  # noqa: BLE001
                internal_error("Activity.start")
                self._span = INVALID_SPAN
        return self

    def stop(self, end_time: int | None = None) -> None:
        """End successfully (idempotent)."""
        self._end(None, end_time)

    def fail(self, error: BaseException | str | None = None, end_time: int | None = None) -> None:
        """End as failed; ``error`` is an exception or a message."""
        if isinstance(error, BaseException):
            self._end(error, end_time)
        else:
            self._end(RuntimeError(error or "failed"), end_time, record=False)

    def _end(self, error: BaseException | None, end_time: int | None, *, record: bool = True) -> None:
        if self._done:
            return
        self._done = True
        span = self.start()._span
        assert span is not None
        try:
            if span.is_recording():
                if error is not None:
                    mark_error(span, error, record=record)
                self._finish(span, error)
            span.end(end_time)
        except Exception:  # noqa: BLE001
            internal_error(f"{type(self).__name__}.end")

    def _finish(self, span: Span, error: BaseException | None) -> None:
        """Hook: add final attributes (only called on recording spans)."""

    # -- context manager ---------------------------------------------------
    def attach(self) -> object | None:
        """Make this activity the current span (with its scope); returns the token for :meth:`detach`."""
        span = self.start()._span
        try:
            ctx = trace.set_span_in_context(span)  # type: ignore[arg-type]
            if self._scope:
                ctx = with_associations(self._scope, ctx)
            return otel_context.attach(ctx)
        except Exception:  # noqa: BLE001
            internal_error("Activity.attach")
            return None

    @staticmethod
    def detach(token: object | None) -> None:
        if token is not None:
            try:
                otel_context.detach(token)  # type: ignore[arg-type]
            except Exception:  # noqa: BLE001
                internal_error("Activity.detach")

    def __enter__(self) -> Any:
        self._token = self.attach()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        token, self._token = self._token, None
        self.detach(token)
        if exc is None or isinstance(exc, GeneratorExit):
            self._end(None, None)
        else:
            self._end(exc, None)
        # Returning None: the caller's exception propagates unchanged.

    async def __aenter__(self) -> Any:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    # -- while running -----------------------------------------------------
    @property
    def span(self) -> Span:
        """The underlying OTel span (a non-recording one before configure())."""
        return self.start()._span  # type: ignore[return-value]

    @property
    def is_recording(self) -> bool:
        return self._span is not None and self._span.is_recording()

    @property
    def ref(self) -> ActivityRef | None:
        return ref_of(self.span)

    @never_fail()
    def set_attribute(self, key: str, value: Any) -> None:
        attributes: Attributes = {}
        put(attributes, key, value)
        if attributes:
            self.span.set_attributes(attributes)

    @never_fail()
    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        self.span.set_attributes(merge_attributes({}, attributes))

    def add_event(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        """A timestamped note inside this activity (e.g. a retry)."""
        try:
            self.span.add_event(name, merge_attributes({}, attributes))
        except Exception:  # noqa: BLE001
            internal_error("Activity.add_event")


def record_instant(
    name: str,
    attributes: Attributes,
    *,
    duration_ms: float | None = None,
    error: BaseException | str | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: Activity | None = None,
) -> ActivityRef | None:
    """Record an activity that already happened as a finished span.

    It is a child of ``parent`` if given, else of the current span.
    ``duration_ms`` back-dates the start so the span covers the reported duration.
    """
    try:
        start_time = end_time = None
        if duration_ms is not None:
            try:
                duration_ns = max(int(float(duration_ms) * 1_000_000), 0)
            except (TypeError, ValueError):
                duration_ns = 0
            end_time = _clock.time_ns()
            start_time = end_time - duration_ns
        context = trace.set_span_in_context(parent.span) if parent is not None else None
        activity = Activity(name, attributes, kind=kind, start_time=start_time, context=context)
        if error is None:
            activity.stop(end_time)
        else:
            activity.fail(error, end_time)
        return activity.ref
    except Exception:  # noqa: BLE001
        internal_error("record_instant")
        return None
