"""Ticket operations (create, update, assign, close, delete — or your own verb).

The changed field *names* are always recorded (``spanledger.ticket.changed_fields``);
their new *values* can hold personal data, so they are content: recorded in
``spanledger.ticket.changes`` only when content capture is on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from spanledger import semconv as sc
from spanledger._runtime import RUNTIME
from spanledger._safe import never_fail
from spanledger.activities._base import ActivityRef, Attributes, merge_attributes, put, record_instant


class TicketOperation:
    CREATE: Final = "create"
    UPDATE: Final = "update"
    ASSIGN: Final = "assign"
    CLOSE: Final = "close"
    DELETE: Final = "delete"


@never_fail()
def ticket_operation(
    operation: str,
    ticket_id: str,
    *,
    changes: Mapping[str, Any] | None = None,
    changed_fields: Sequence[str] | None = None,
    assignee: str | None = None,
    agent_name: str | None = None,
    agent_id: str | None = None,
    description: str | None = None,
    duration_ms: float | None = None,
    error: BaseException | str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> ActivityRef | None:
    """Record a ticket operation as a finished ``ticket.{operation}`` span."""
    operation = str(operation) if operation else "update"
    attrs: Attributes = {sc.ACTIVITY_TYPE: "ticket_operation", sc.TICKET_OPERATION: operation}
    put(attrs, sc.TICKET_ID, ticket_id)
    fields = list(changed_fields) if changed_fields is not None else None
    if fields is None and isinstance(changes, Mapping):
        fields = sorted(str(key) for key in changes)
    if fields:
        attrs[sc.TICKET_CHANGED_FIELDS] = [str(field) for field in fields]
    put(attrs, sc.TICKET_ASSIGNEE, assignee)
    put(attrs, sc.GEN_AI_AGENT_NAME, agent_name)
    put(attrs, sc.GEN_AI_AGENT_ID, agent_id)
    put(attrs, sc.ACTIVITY_DESCRIPTION, description)
    put(attrs, sc.DURATION_MS, duration_ms)
    if changes:
        put(attrs, sc.TICKET_CHANGES, RUNTIME.content.text(changes))
    merge_attributes(attrs, attributes)
    return record_instant(f"ticket.{operation}", attrs, duration_ms=duration_ms, error=error)
