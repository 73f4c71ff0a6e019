"""Agent lifecycle: runs, turns, reasoning steps and discrete lifecycle events.

* :func:`agent_run` — the ``invoke_agent {name}`` span around a task; every span
  inside (LLM calls, tools...) inherits the agent's name/id, so costs roll up
  per agent.  It ends ``completed``/``failed`` — or ``paused``/``conflict`` if
  :meth:`AgentRun.pause` / :meth:`AgentRun.conflict` was called.
* :func:`agent_turn`, :func:`reasoning_step` — timed sub-steps.
* :func:`agent_event` — a discrete event (started, progress, completed, error,
  paused, conflict_detected, heartbeat, status_change, system_event), recorded
  as a finished span, with severity and status defaulting per event as in the
  seeds (e.g. conflict_detected -> warning / conflict).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from spanledger import semconv as sc
from spanledger._safe import never_fail
from spanledger.activities._base import Activity, ActivityRef, Attributes, merge_attributes, put, record_instant


class Severity:
    INFO: Final = "info"
    SUCCESS: Final = "success"
    WARNING: Final = "warning"
    ERROR: Final = "error"
    CRITICAL: Final = "critical"


class Status:
    STARTED: Final = "started"
    IN_PROGRESS: Final = "in_progress"
    COMPLETED: Final = "completed"
    PAUSED: Final = "paused"
    FAILED: Final = "failed"
    CONFLICT: Final = "conflict"


class AgentEvent:
    """Values of ``spanledger.agent.event`` (and ``spanledger.activity.type``) for lifecycle events."""

    STARTED: Final = "agent_started"
    PROGRESS: Final = "agent_progress"
    COMPLETED: Final = "agent_completed"
    ERROR: Final = "agent_error"
    PAUSED: Final = "agent_paused"
    CONFLICT_DETECTED: Final = "agent_conflict_detected"
    HEARTBEAT: Final = "heartbeat"
    STATUS_CHANGE: Final = "status_change"
    SYSTEM_EVENT: Final = "system_event"


_DEFAULTS: Final[Mapping[str, tuple[str, str | None]]] = {
    AgentEvent.STARTED: (Severity.INFO, Status.STARTED),
    AgentEvent.PROGRESS: (Severity.INFO, Status.IN_PROGRESS),
    AgentEvent.COMPLETED: (Severity.SUCCESS, Status.COMPLETED),
    AgentEvent.ERROR: (Severity.ERROR, Status.FAILED),
    AgentEvent.PAUSED: (Severity.WARNING, Status.PAUSED),
    AgentEvent.CONFLICT_DETECTED: (Severity.WARNING, Status.CONFLICT),
    AgentEvent.HEARTBEAT: (Severity.INFO, None),
    AgentEvent.STATUS_CHANGE: (Severity.INFO, None),
    AgentEvent.SYSTEM_EVENT: (Severity.INFO, None),
}
_SHORT_NAMES: Final = {event.removeprefix("agent_"): event for event in _DEFAULTS}


def _agent_attributes(
    activity_type: str, agent_name: Any, agent_id: Any, agent_type: Any, task_id: Any, description: Any
) -> Attributes:
    attributes: Attributes = {sc.ACTIVITY_TYPE: activity_type}
    put(attributes, sc.GEN_AI_AGENT_NAME, agent_name)
    put(attributes, sc.GEN_AI_AGENT_ID, agent_id)
    put(attributes, sc.AGENT_TYPE, agent_type)
    put(attributes, sc.TASK_ID, task_id)
    put(attributes, sc.ACTIVITY_DESCRIPTION, description)
    return attributes


@never_fail()
def agent_event(
    event: str,
    agent_name: str | None = None,
    *,
    agent_id: str | None = None,
    agent_type: str | None = None,
    task_id: str | None = None,
    description: str | None = None,
    severity: str | None = None,
    status: str | None = None,
    progress_percent: float | None = None,
    conflict_reason: str | None = None,
    error: BaseException | str | None = None,
    duration_ms: float | None = None,
    attributes: Mapping[str, Any] | None = None,
    parent: Activity | None = None,
) -> ActivityRef | None:
    """Record one lifecycle event (``"progress"`` and ``"agent_progress"`` both work).

    It is a child of ``parent`` (an activity) if given, else of the current span.
    """
    event = _SHORT_NAMES.get(str(event), str(event))
    default_severity, default_status = _DEFAULTS.get(event, (Severity.INFO, None))
    attrs = _agent_attributes(event, agent_name, agent_id, agent_type, task_id, description)
    attrs[sc.AGENT_EVENT] = event
    attrs[sc.SEVERITY] = severity or default_severity
    put(attrs, sc.STATUS, status or default_status)
    put(attrs, sc.PROGRESS_PERCENT, progress_percent)
    put(attrs, sc.CONFLICT_REASON, conflict_reason)
    put(attrs, sc.DURATION_MS, duration_ms)
    merge_attributes(attrs, attributes)
    return record_instant(event, attrs, duration_ms=duration_ms, error=error, parent=parent)


class AgentRun(Activity):
    """The ``invoke_agent`` span of one agent task; see :func:`agent_run`."""

    __slots__ = ("agent_name", "_status", "_severity")

    def __init__(self, name: str, attributes: Attributes, scope: Mapping[str, AttributeValue]) -> None:
        super().__init__(f"{sc.OP_INVOKE_AGENT} {name}", attributes, scope=scope)
        self.agent_name = name
        self._status: str | None = None
        self._severity: str | None = None

    def progress(self, percent: float | None = None, description: str | None = None, **kw: Any) -> None:
        """Record an ``agent_progress`` event under this run."""
        agent_event(AgentEvent.PROGRESS, self.agent_name, progress_percent=percent, description=description, parent=self, **kw)

    def pause(self, reason: str | None = None, **kw: Any) -> None:
        """Record ``agent_paused``; the run ends with status ``paused``."""
        self._status, self._severity = Status.PAUSED, Severity.WARNING
        agent_event(AgentEvent.PAUSED, self.agent_name, description=reason, parent=self, **kw)

    def conflict(self, reason: str, *, severity: str = Severity.WARNING, **kw: Any) -> None:
        """Record ``agent_conflict_detected`` (needs a human); the run ends with status ``conflict``."""
        self._status, self._severity = Status.CONFLICT, severity
        agent_event(
            AgentEvent.CONFLICT_DETECTED, self.agent_name, conflict_reason=reason, severity=severity, parent=self, **kw
        )

    def heartbeat(self, **kw: Any) -> None:
        agent_event(AgentEvent.HEARTBEAT, self.agent_name, parent=self, **kw)

    def turn(self, description: str | None = None, **kw: Any) -> Activity:
        """A timed ``agent_turn`` child activity (use it as ``with``)."""
        return agent_turn(self.agent_name, description=description, **kw)

    def reasoning(self, description: str | None = None, **kw: Any) -> Activity:
        return reasoning_step(self.agent_name, description=description, **kw)

    def _finish(self, span: Span, error: BaseException | None) -> None:
        if error is not None:
            status, severity = Status.FAILED, Severity.ERROR
        else:
            status, severity = self._status or Status.COMPLETED, self._severity or Severity.SUCCESS
        span.set_attributes({sc.STATUS: status, sc.SEVERITY: severity})

    def __enter__(self) -> AgentRun:
        return super().__enter__()  # type: ignore[no-any-return]


@never_fail(fallback=lambda: AgentRun("agent", {}, {}))
def agent_run(
    name: str,
    *,
    agent_id: str | None = None,
    agent_type: str | None = None,
    task_id: str | None = None,
    description: str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> AgentRun:
    """``with agent_run("planner", task_id="T-1") as run:`` — one agent task as a span."""
    name = str(name) if name is not None else "agent"
    attrs = _agent_attributes("agent_run", name, agent_id, agent_type, task_id, description)
    attrs[sc.GEN_AI_OPERATION_NAME] = sc.OP_INVOKE_AGENT
    merge_attributes(attrs, attributes)
    scope: dict[str, AttributeValue] = {sc.GEN_AI_AGENT_NAME: name}
    if agent_id is not None:
        scope[sc.GEN_AI_AGENT_ID] = str(agent_id)
    return AgentRun(name, attrs, scope)


@never_fail(fallback=lambda: Activity("agent_turn", {}))
def agent_turn(
    agent_name: str | None = None,
    *,
    description: str | None = None,
    turn: int | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Activity:
    """A timed agent turn (``agent_turn``), e.g. one plan-act-observe iteration."""
    attrs = _agent_attributes("agent_turn", agent_name, None, None, None, description)
    put(attrs, sc.AGENT_TURN, turn)
    merge_attributes(attrs, attributes)
    return Activity(f"agent_turn {agent_name}" if agent_name else "agent_turn", attrs)


@never_fail(fallback=lambda: Activity("agent_reasoning", {}))
def reasoning_step(
    agent_name: str | None = None,
    *,
    description: str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Activity:
    """A timed reasoning step (``agent_reasoning``)."""
    attrs = _agent_attributes("agent_reasoning", agent_name, None, None, None, description)
    merge_attributes(attrs, attributes)
    return Activity(f"agent_reasoning {agent_name}" if agent_name else "agent_reasoning", attrs)
