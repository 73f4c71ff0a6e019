"""Tool calls: ``execute_tool {name}`` spans with arguments/result when content capture is on.

Use :func:`tool_call` around a call you make (duration and errors come for
free) or :func:`record_tool_call` for one that already ran (the seeds'
``logToolCall(agent, tool, input, output, durationMs)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import Span

from spanledger import semconv as sc
from spanledger._runtime import RUNTIME
from spanledger._safe import never_fail
from spanledger.activities._base import Activity, ActivityRef, Attributes, merge_attributes, put, record_instant


def _tool_attributes(
    name: str,
    arguments: Any,
    call_id: Any,
    tool_type: Any,
    agent_name: Any,
    mcp_server: Any,
    attributes: Mapping[str, Any] | None,
) -> Attributes:
    attrs: Attributes = {
        sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL,
        sc.ACTIVITY_TYPE: "tool_call",
        sc.GEN_AI_TOOL_NAME: name,
    }
    put(attrs, sc.GEN_AI_TOOL_CALL_ID, call_id)
    put(attrs, sc.GEN_AI_TOOL_TYPE, tool_type)
    put(attrs, sc.GEN_AI_AGENT_NAME, agent_name)
    put(attrs, sc.MCP_SERVER, mcp_server)
    put(attrs, sc.GEN_AI_TOOL_CALL_ARGUMENTS, RUNTIME.content.text(arguments))
    return merge_attributes(attrs, attributes)


class ToolCall(Activity):
    """A running tool call; :meth:`set_result` records what it returned."""

    __slots__ = ("_result", "_has_result")

    def __init__(self, name: str, attributes: Attributes) -> None:
        super().__init__(f"{sc.OP_EXECUTE_TOOL} {name}", attributes)
        self._result: Any = None
        self._has_result = False

    def set_result(self, result: Any) -> None:
        self._result, self._has_result = result, True

    def _finish(self, span: Span, error: BaseException | None) -> None:
        if self._has_result:
            text = RUNTIME.content.text(self._result)
            if text is not None:
                span.set_attribute(sc.GEN_AI_TOOL_CALL_RESULT, text)

    def __enter__(self) -> ToolCall:
        return super().__enter__()  # type: ignore[no-any-return]


@never_fail(fallback=lambda: ToolCall("tool", {}))
def tool_call(
    name: str,
    *,
    arguments: Any = None,
    call_id: str | None = None,
    tool_type: str | None = None,
    agent_name: str | None = None,
    mcp_server: str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> ToolCall:
    """``with tool_call("file_read", arguments={"path": p}) as call: call.set_result(read(p))``."""
    name = str(name) if name else "tool"
    return ToolCall(name, _tool_attributes(name, arguments, call_id, tool_type, agent_name, mcp_server, attributes))


@never_fail()
def record_tool_call(
    name: str,
    arguments: Any = None,
    result: Any = None,
    duration_ms: float | None = None,
    *,
    call_id: str | None = None,
    tool_type: str | None = None,
    agent_name: str | None = None,
    mcp_server: str | None = None,
    error: BaseException | str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> ActivityRef | None:
    """Record a tool call that already ran, back-dated by ``duration_ms``."""
    name = str(name) if name else "tool"
    attrs = _tool_attributes(name, arguments, call_id, tool_type, agent_name, mcp_server, attributes)
    put(attrs, sc.GEN_AI_TOOL_CALL_RESULT, RUNTIME.content.text(result))
    put(attrs, sc.DURATION_MS, duration_ms)
    return record_instant(f"{sc.OP_EXECUTE_TOOL} {name}", attrs, duration_ms=duration_ms, error=error)
