"""spanledger: record what AI agents do, and what it costs, as OpenTelemetry spans.

    import spanledger
    spanledger.configure(service_name="my-agent")          # OTLP/gRPC to localhost:4317
    with spanledger.agent_run("planner", task_id="T-1"):
        with spanledger.llm_call("gpt-4o", provider="openai", prompt=prompt) as call:
            call.set_usage(response.usage)                  # -> gen_ai.usage.* and cost

Every helper is a harmless no-op until ``configure()`` (or your own global
TracerProvider) is set up, and none of them ever raises into your code.
"""

from spanledger._setup import Stats, add_span_processor, configure, force_flush, shutdown, stats
from spanledger.activities import (
    Activity,
    ActivityRef,
    AgentEvent,
    ProjectAction,
    Severity,
    Status,
    TicketOperation,
    activity,
    agent_event,
    agent_run,
    agent_turn,
    conversation,
    instrument,
    llm_call,
    product_event,
    project_action,
    reasoning_step,
    record_tool_call,
    ticket_operation,
    tool_call,
)
from spanledger.budget import BudgetTracker
from spanledger.context import associate
from spanledger.pricing import ModelPriceOverride, PriceBook
from spanledger.propagation import continue_trace, extract, inject, new_trace_id, trace_scope
from spanledger.usage import TokenUsage

__all__ = [
    # setup
    "configure", "shutdown", "force_flush", "stats", "Stats", "add_span_processor",
    # activities
    "activity", "instrument", "Activity", "ActivityRef",
    "agent_run", "agent_turn", "reasoning_step", "agent_event", "AgentEvent", "Severity", "Status",
    "llm_call", "TokenUsage",
    "tool_call", "record_tool_call",
    "ticket_operation", "TicketOperation",
    "project_action", "ProjectAction",
    "conversation",
    "product_event",
    # context and tracing
    "associate", "new_trace_id", "trace_scope", "inject", "extract", "continue_trace",
    # money
    "PriceBook", "ModelPriceOverride", "BudgetTracker",
]  # fmt: skip
