"""Conversation activity with a sequence number that increases within the conversation.

    conv = spanledger.conversation(conversation_id, session_id=sid, user_id=uid)
    conv.user_message("What is the status of job XYZ?")           # sequence 1
    conv.mcp_tool_call("informatica_mcp", "get_job_status", {...})  # sequence 2
    conv.mcp_tool_response("informatica_mcp", "get_job_status", status="success", duration_ms=1200)
    conv.assistant_response("Job XYZ is running at 75%", tokens=150)

:func:`conversation` returns the same object for the same id (within this
process, for the last 10 000 conversations), so the sequence keeps increasing
across requests; numbering is thread-safe.  A conversation served by several
processes should pass ``start_sequence`` from its store.  ``with conv.scope():``
stamps the conversation, session and user ids on every span inside.

Message text and tool parameters are content (opt-in).  ``tokens`` is
recorded as ``spanledger.conversation.tokens``, not as ``gen_ai.usage.*``,
so it is never added to the LLM spans' usage twice.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final

from spanledger import semconv as sc
from spanledger._runtime import RUNTIME
from spanledger._safe import never_fail, safe_str
from spanledger.activities._base import ActivityRef, Attributes, merge_attributes, put, record_instant
from spanledger.context import associate


class ConversationActivity:
    USER_MESSAGE: Final = "user_message"
    ASSISTANT_RESPONSE: Final = "assistant_response"
    MCP_TOOL_CALL: Final = "mcp_tool_call"
    MCP_TOOL_RESPONSE: Final = "mcp_tool_response"


class Conversation:
    """One conversation's ids and its sequence counter."""

    def __init__(
        self, conversation_id: str, *, session_id: str | None = None, user_id: str | None = None, start_sequence: int = 0
    ) -> None:
        self.conversation_id = safe_str(conversation_id)
        self.session_id = None if session_id is None else safe_str(session_id)
        self.user_id = None if user_id is None else safe_str(user_id)
        self._sequence = int(start_sequence) if isinstance(start_sequence, int) else 0
        self._lock = threading.Lock()

    @property
    def sequence(self) -> int:
        """The last sequence number handed out (0 before the first activity)."""
        return self._sequence

    def next_sequence(self) -> int:
        with self._lock:
            self._sequence += 1
            return self._sequence

    @never_fail()
    def record(
        self,
        activity: str,
        *,
        message: Any = None,
        mcp_server: str | None = None,
        tool_name: str | None = None,
        parameters: Any = None,
        status: str | None = None,
        tokens: int | None = None,
        duration_ms: float | None = None,
        error: BaseException | str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> ActivityRef | None:
        """Record any conversation activity (the four named helpers call this)."""
        activity = str(activity)
        content = RUNTIME.content
        attrs: Attributes = {
            sc.ACTIVITY_TYPE: "conversation",
            sc.CONVERSATION_ACTIVITY: activity,
            sc.GEN_AI_CONVERSATION_ID: self.conversation_id,
            sc.CONVERSATION_SEQUENCE: self.next_sequence(),
        }
        put(attrs, sc.SESSION_ID, self.session_id)
        put(attrs, sc.USER_ID, self.user_id)
        put(attrs, sc.MCP_SERVER, mcp_server)
        put(attrs, sc.GEN_AI_TOOL_NAME, tool_name)
        put(attrs, sc.STATUS, status)
        put(attrs, sc.CONVERSATION_TOKENS, tokens)
        put(attrs, sc.DURATION_MS, duration_ms)
        put(attrs, sc.CONVERSATION_MESSAGE, content.text(message))
        put(attrs, sc.GEN_AI_TOOL_CALL_ARGUMENTS, content.text(parameters))
        merge_attributes(attrs, attributes)
        return record_instant(f"conversation.{activity}", attrs, duration_ms=duration_ms, error=error)

    def user_message(self, message: Any, **kw: Any) -> ActivityRef | None:
        return self.record(ConversationActivity.USER_MESSAGE, message=message, **kw)

    def assistant_response(self, message: Any, *, tokens: int | None = None, **kw: Any) -> ActivityRef | None:
        return self.record(ConversationActivity.ASSISTANT_RESPONSE, message=message, tokens=tokens, **kw)

    def mcp_tool_call(self, mcp_server: str, tool_name: str, parameters: Any = None, **kw: Any) -> ActivityRef | None:
        return self.record(
            ConversationActivity.MCP_TOOL_CALL, mcp_server=mcp_server, tool_name=tool_name, parameters=parameters, **kw
        )

    def mcp_tool_response(
        self, mcp_server: str, tool_name: str, *, status: str = "success", duration_ms: float | None = None, **kw: Any
    ) -> ActivityRef | None:
        return self.record(
            ConversationActivity.MCP_TOOL_RESPONSE,
            mcp_server=mcp_server,
            tool_name=tool_name,
            status=status,
            duration_ms=duration_ms,
            **kw,
        )

    def scope(self) -> associate:
        """``with conv.scope():`` stamps conversation, session and user ids on every span inside."""
        return associate(conversation_id=self.conversation_id, session_id=self.session_id, user_id=self.user_id)


_MAX_CONVERSATIONS = 10_000
_registry: OrderedDict[str, Conversation] = OrderedDict()
_registry_lock = threading.Lock()


@never_fail(fallback=lambda: Conversation("unknown"))
def conversation(
    conversation_id: Any, *, session_id: str | None = None, user_id: str | None = None, start_sequence: int = 0
) -> Conversation:
    """The process's :class:`Conversation` for this id (created on first use)."""
    key = safe_str(conversation_id)
    with _registry_lock:
        found = _registry.get(key)
        if found is not None:
            _registry.move_to_end(key)
            if session_id is not None:
                found.session_id = str(session_id)
            if user_id is not None:
                found.user_id = str(user_id)
            return found
        created = Conversation(key, session_id=session_id, user_id=user_id, start_sequence=start_sequence)
        _registry[key] = created
        if len(_registry) > _MAX_CONVERSATIONS:
            _registry.popitem(last=False)
        return created
