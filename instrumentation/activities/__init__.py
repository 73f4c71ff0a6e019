"""Every kind of activity spanledger records, each a module of its own."""

from spanledger.activities._base import Activity, ActivityRef
from spanledger.activities.agents import (
    AgentEvent,
    AgentRun,
    Severity,
    Status,
    agent_event,
    agent_run,
    agent_turn,
    reasoning_step,
)
from spanledger.activities.conversations import Conversation, ConversationActivity, conversation
from spanledger.activities.events import product_event
from spanledger.activities.llm import LLMCall, llm_call
from spanledger.activities.projects import ProjectAction, project_action
from spanledger.activities.tickets import TicketOperation, ticket_operation
from spanledger.activities.timed import activity, instrument
from spanledger.activities.tools import ToolCall, record_tool_call, tool_call

__all__ = [
    "Activity", "ActivityRef", "AgentEvent", "AgentRun", "Conversation", "ConversationActivity", "LLMCall",
    "ProjectAction", "Severity", "Status", "TicketOperation", "ToolCall", "activity", "agent_event", "agent_run",
    "agent_turn", "conversation", "instrument", "llm_call", "product_event", "project_action", "reasoning_step",
    "record_tool_call", "ticket_operation", "tool_call",
]  # fmt: skip
