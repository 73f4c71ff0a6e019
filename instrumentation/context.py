"""Set ids once on a scope; every span started under it carries them.

``with spanledger.associate(user_id="u1", project_id="p9"):`` makes the LLM,
tool and HTTP spans below — including spans of other OTel instrumentation in
the same provider — filterable by user and project.  The ids live in the OTel
context (so they follow ``async`` tasks and threads that copy the context) and
:class:`AssociationSpanProcessor` copies them onto each span as it starts.
Attributes a span sets explicitly are never overwritten.

They are *not* put in the global baggage, so third-party HTTP instrumentation
will not leak user ids to other services; :func:`spanledger.inject` carries
them explicitly when you pass context through a queue or to a subprocess.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.util.types import AttributeValue

from spanledger import semconv as sc
from spanledger._jsonish import to_attribute_value
from spanledger._safe import internal_error

__all__ = ["associate", "current_associations", "AssociationSpanProcessor", "ASSOCIATION_KEYS"]

_KEY = otel_context.create_key("spanledger.associations")

ASSOCIATION_KEYS: Mapping[str, str] = {
    "user_id": sc.USER_ID,
    "session_id": sc.SESSION_ID,
    "project_id": sc.PROJECT_ID,
    "ticket_id": sc.TICKET_ID,
    "request_id": sc.REQUEST_ID,
    "environment": sc.ENVIRONMENT,
    "conversation_id": sc.GEN_AI_CONVERSATION_ID,
    "agent_id": sc.GEN_AI_AGENT_ID,
    "agent_name": sc.GEN_AI_AGENT_NAME,
}
"""Keyword of :func:`associate` -> attribute written on every span of the scope."""


def current_associations(ctx: Context | None = None) -> Mapping[str, AttributeValue]:
    """The attributes the current (or given) context would stamp on a new span."""
    return otel_context.get_value(_KEY, ctx) or {}  # type: ignore[return-value]


def with_associations(values: Mapping[str, AttributeValue], ctx: Context | None = None) -> Context:
    """A context whose associations are the current ones updated with ``values``."""
    merged = {**current_associations(ctx), **values}
    return otel_context.set_value(_KEY, merged, ctx)


class AttachedContext:
    """Attaches an OTel context for the duration of a ``with`` (sync or async), never raising.

    Subclasses say which context in ``_context``; a failure to attach or
    detach is counted as an internal error and the caller's code runs on."""

    __slots__ = ("_token",)

    def _context(self) -> Context:
        raise NotImplementedError

    def __enter__(self):  # type: ignore[no-untyped-def] - returns the subclass
        try:
            self._token = otel_context.attach(self._context())
        except Exception:  # noqa: BLE001
            internal_error(f"{type(self).__name__}.enter")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        token, self._token = getattr(self, "_token", None), None
        if token is not None:
            try:
                otel_context.detach(token)  # type: ignore[arg-type]
            except Exception:  # noqa: BLE001
                internal_error(f"{type(self).__name__}.exit")

    async def __aenter__(self):  # type: ignore[no-untyped-def]
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)


class associate(AttachedContext):  # noqa: N801 - used like a function: ``with associate(...)``
    """Context manager scoping ids onto every span started below it (sync or async).

    Non-string ids are stringified; ``None`` values are ignored; any other
    attribute goes in ``attributes`` under its full name.  Nested scopes merge,
    the inner value winning.
    """

    __slots__ = ("_values",)

    def __init__(
        self,
        *,
        user_id: Any = None,
        session_id: Any = None,
        project_id: Any = None,
        ticket_id: Any = None,
        request_id: Any = None,
        environment: Any = None,
        conversation_id: Any = None,
        agent_id: Any = None,
        agent_name: Any = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        ids = {
            "user_id": user_id, "session_id": session_id, "project_id": project_id, "ticket_id": ticket_id,
            "request_id": request_id, "environment": environment, "conversation_id": conversation_id,
            "agent_id": agent_id, "agent_name": agent_name,
        }  # fmt: skip
        values: dict[str, AttributeValue] = {}
        try:
            for keyword, value in ids.items():
                if value is not None:
                    values[ASSOCIATION_KEYS[keyword]] = value if isinstance(value, str) else str(value)
            for name, value in (attributes or {}).items():
                converted = to_attribute_value(value)
                if converted is not None:
                    values[str(name)] = converted
        except Exception:  # noqa: BLE001
            internal_error("associate")
        self._values = values
        self._token = None

    def _context(self) -> Context:
        return with_associations(self._values)


class AssociationSpanProcessor(SpanProcessor):
    """Copies the scope's associations onto each span at start (add it to your own provider too)."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        values = otel_context.get_value(_KEY, parent_context)
        if not values:
            return
        try:
            existing = span.attributes or {}
            missing = {key: value for key, value in values.items() if key not in existing}  # type: ignore[union-attr]
            if missing:
                span.set_attributes(missing)
        except Exception:  # noqa: BLE001
            internal_error("AssociationSpanProcessor.on_start")

    def on_end(self, span: ReadableSpan) -> None:
        return None

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
