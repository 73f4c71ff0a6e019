"""Every activity kind, read back from the in-memory exporter with its exact attributes."""

from __future__ import annotations

import pytest

import spanledger
from spanledger import semconv as sc


def test_agent_run_with_progress_pause_and_children(captured_spans) -> None:
    with spanledger.agent_run("planner", agent_id="a-1", agent_type="agent-api", task_id="T-1",
                              description="plan the sprint") as run:  # fmt: skip
        run.progress(50, "half way")
        with run.turn("turn 1", turn=1):
            with run.reasoning("think"):
                pass
        run.pause("waiting for review")
    spans = {span.name: span for span in captured_spans.spans()}
    run_span = spans["invoke_agent planner"]
    assert dict(run_span.attributes) == {
        sc.ACTIVITY_TYPE: "agent_run",
        sc.GEN_AI_AGENT_NAME: "planner",
        sc.GEN_AI_AGENT_ID: "a-1",
        sc.AGENT_TYPE: "agent-api",
        sc.TASK_ID: "T-1",
        sc.ACTIVITY_DESCRIPTION: "plan the sprint",
        sc.GEN_AI_OPERATION_NAME: "invoke_agent",
        sc.STATUS: "paused",
        sc.SEVERITY: "warning",
    }
    assert dict(spans["agent_progress"].attributes) == {
        sc.ACTIVITY_TYPE: "agent_progress",
        sc.GEN_AI_AGENT_NAME: "planner",
        sc.ACTIVITY_DESCRIPTION: "half way",
        sc.AGENT_EVENT: "agent_progress",
        sc.SEVERITY: "info",
        sc.STATUS: "in_progress",
        sc.PROGRESS_PERCENT: 50,
        sc.GEN_AI_AGENT_ID: "a-1",  # inherited from the run's scope
    }
    assert dict(spans["agent_turn planner"].attributes) == {
        sc.ACTIVITY_TYPE: "agent_turn",
        sc.GEN_AI_AGENT_NAME: "planner",
        sc.ACTIVITY_DESCRIPTION: "turn 1",
        sc.AGENT_TURN: 1,
        sc.GEN_AI_AGENT_ID: "a-1",
    }
    assert spans["agent_reasoning planner"].parent.span_id == spans["agent_turn planner"].context.span_id
    assert dict(spans["agent_paused"].attributes)[sc.STATUS] == "paused"
    for name in ["agent_progress", "agent_turn planner", "agent_paused"]:
        assert spans[name].parent.span_id == run_span.context.span_id


def test_agent_run_failure_and_conflict(captured_spans) -> None:
    with pytest.raises(KeyError):
        with spanledger.agent_run("coder"):
            raise KeyError("missing")
    with spanledger.agent_run("security") as run:
        run.conflict("two agents edited auth.py", severity="critical")
    failed = captured_spans.by_name("invoke_agent coder")
    assert failed.status.status_code.name == "ERROR"
    assert failed.attributes[sc.STATUS] == "failed" and failed.attributes[sc.SEVERITY] == "error"
    assert failed.attributes[sc.ERROR_TYPE] == "KeyError"
    assert [event.name for event in failed.events] == ["exception"]
    conflict = captured_spans.by_name("invoke_agent security")
    assert (conflict.attributes[sc.STATUS], conflict.attributes[sc.SEVERITY]) == ("conflict", "critical")
    assert dict(captured_spans.attributes("agent_conflict_detected")) == {
        sc.ACTIVITY_TYPE: "agent_conflict_detected",
        sc.GEN_AI_AGENT_NAME: "security",
        sc.AGENT_EVENT: "agent_conflict_detected",
        sc.SEVERITY: "critical",
        sc.STATUS: "conflict",
        sc.CONFLICT_REASON: "two agents edited auth.py",
    }


@pytest.mark.parametrize(
    ("event", "severity", "status"),
    [
        ("started", "info", "started"),
        ("progress", "info", "in_progress"),
        ("completed", "success", "completed"),
        ("error", "error", "failed"),
        ("paused", "warning", "paused"),
        ("conflict_detected", "warning", "conflict"),
        ("heartbeat", "info", None),
        ("status_change", "info", None),
        ("system_event", "info", None),
    ],
)
def test_agent_events_default_severity_and_status(captured_spans, event, severity, status) -> None:
    spanledger.agent_event(event, "builder", task_id="T-9", duration_ms=1500)
    (span,) = captured_spans.spans()
    full = span.name
    assert full == (event if event in ("heartbeat", "status_change", "system_event") else f"agent_{event}")
    expected = {
        sc.ACTIVITY_TYPE: full,
        sc.GEN_AI_AGENT_NAME: "builder",
        sc.TASK_ID: "T-9",
        sc.AGENT_EVENT: full,
        sc.SEVERITY: severity,
        sc.DURATION_MS: 1500,
    }
    if status:
        expected[sc.STATUS] = status
    assert dict(span.attributes) == expected
    assert span.end_time - span.start_time == 1_500_000_000  # back-dated by the reported duration


def test_agent_error_event_records_the_exception(captured_spans) -> None:
    spanledger.agent_event("error", "builder", error=TimeoutError("tool timed out"), severity="critical")
    span = captured_spans.by_name("agent_error")
    assert span.status.status_code.name == "ERROR"
    assert span.attributes[sc.ERROR_TYPE] == "TimeoutError"
    assert span.attributes[sc.SEVERITY] == "critical"


def test_tool_call_content_off_by_default(captured_spans) -> None:
    with spanledger.tool_call("file_read", arguments={"path": "/etc/passwd"}, call_id="call_1",
                              tool_type="function") as call:  # fmt: skip
        call.set_result({"content": "secret"})
    assert captured_spans.attributes("execute_tool file_read") == {
        sc.GEN_AI_OPERATION_NAME: "execute_tool",
        sc.ACTIVITY_TYPE: "tool_call",
        sc.GEN_AI_TOOL_NAME: "file_read",
        sc.GEN_AI_TOOL_CALL_ID: "call_1",
        sc.GEN_AI_TOOL_TYPE: "function",
    }


def test_tool_call_with_content_and_failure(captured_spans) -> None:
    captured_spans.set_content_policy(capture=True, max_length=10, redact=lambda text: text.replace("secret", "***"))
    with spanledger.tool_call("search", arguments={"q": "secret plans"}, mcp_server="web_mcp") as call:
        call.set_result("a long result that will be cut")
    with pytest.raises(ValueError, match="bad"):
        with spanledger.tool_call("broken"):
            raise ValueError("bad")
    assert captured_spans.attributes("execute_tool search") == {
        sc.GEN_AI_OPERATION_NAME: "execute_tool",
        sc.ACTIVITY_TYPE: "tool_call",
        sc.GEN_AI_TOOL_NAME: "search",
        sc.MCP_SERVER: "web_mcp",
        sc.GEN_AI_TOOL_CALL_ARGUMENTS: '{"q":"*** ...[truncated]',
        sc.GEN_AI_TOOL_CALL_RESULT: "a long res...[truncated]",
    }
    broken = captured_spans.by_name("execute_tool broken")
    assert broken.attributes[sc.ERROR_TYPE] == "ValueError" and broken.status.status_code.name == "ERROR"


def test_record_tool_call_after_the_fact(captured_spans) -> None:
    captured_spans.set_content_policy(capture=True)
    spanledger.record_tool_call("file_read", {"path": "/file.txt"}, {"content": "data"}, 150, agent_name="my-agent")
    span = captured_spans.by_name("execute_tool file_read")
    assert dict(span.attributes) == {
        sc.GEN_AI_OPERATION_NAME: "execute_tool",
        sc.ACTIVITY_TYPE: "tool_call",
        sc.GEN_AI_TOOL_NAME: "file_read",
        sc.GEN_AI_AGENT_NAME: "my-agent",
        sc.GEN_AI_TOOL_CALL_ARGUMENTS: '{"path":"/file.txt"}',
        sc.GEN_AI_TOOL_CALL_RESULT: '{"content":"data"}',
        sc.DURATION_MS: 150,
    }
    assert span.end_time - span.start_time == 150_000_000


def test_ticket_operations(captured_spans) -> None:
    spanledger.ticket_operation("create", "ticket-123", changes={"title": "New", "priority": "HIGH"},
                                agent_name="my-agent")  # fmt: skip
    spanledger.ticket_operation("assign", "ticket-123", assignee="agent-7", description="triage")
    assert captured_spans.attributes("ticket.create") == {
        sc.ACTIVITY_TYPE: "ticket_operation",
        sc.TICKET_OPERATION: "create",
        sc.TICKET_ID: "ticket-123",
        sc.TICKET_CHANGED_FIELDS: ("priority", "title"),
        sc.GEN_AI_AGENT_NAME: "my-agent",
    }
    assert captured_spans.attributes("ticket.assign") == {
        sc.ACTIVITY_TYPE: "ticket_operation",
        sc.TICKET_OPERATION: "assign",
        sc.TICKET_ID: "ticket-123",
        sc.TICKET_ASSIGNEE: "agent-7",
        sc.ACTIVITY_DESCRIPTION: "triage",
    }
    captured_spans.clear()
    captured_spans.set_content_policy(capture=True)
    spanledger.ticket_operation("update", "t-1", changes={"status": "done"})
    assert captured_spans.attributes("ticket.update")[sc.TICKET_CHANGES] == '{"status":"done"}'


@pytest.mark.parametrize("action", ["project_created", "database_created", "endpoints_added", "queries_executed",
                                    "deployment", "github_push", "endpoints_modified", "tables_added", "my_custom"])  # fmt: skip
def test_project_actions(captured_spans, action) -> None:
    spanledger.project_action(action, project_id="p-1", user_id="u-1", request_id="r-1",
                              details="Deployed to fly.io", environment="production")  # fmt: skip
    assert captured_spans.attributes(f"project.{action}") == {
        sc.ACTIVITY_TYPE: "project_action",
        sc.PROJECT_ACTION_TYPE: action,
        sc.PROJECT_ID: "p-1",
        sc.USER_ID: "u-1",
        sc.REQUEST_ID: "r-1",
        sc.PROJECT_ACTION_DETAILS: "Deployed to fly.io",
        sc.STATUS: "completed",
        sc.ENVIRONMENT: "production",
    }


def test_project_action_failure(captured_spans) -> None:
    spanledger.project_action("deployment", project_id="p-1", error=RuntimeError("fly.io down"))
    span = captured_spans.by_name("project.deployment")
    assert span.attributes[sc.STATUS] == "failed" and span.status.status_code.name == "ERROR"


def test_conversation_sequence_and_content(captured_spans) -> None:
    captured_spans.set_content_policy(capture=True)
    conv = spanledger.conversation("d9a7cfcb", session_id="s-1", user_id=1)
    conv.user_message("What is the status of job XYZ?")
    conv.mcp_tool_call("informatica_mcp", "get_job_status", {"job_id": "XYZ"})
    conv.mcp_tool_response("informatica_mcp", "get_job_status", status="success", duration_ms=1200)
    spanledger.conversation("d9a7cfcb").assistant_response("Job XYZ is running at 75%", tokens=150)
    spans = captured_spans.spans()
    assert [span.attributes[sc.CONVERSATION_SEQUENCE] for span in spans] == [1, 2, 3, 4]
    common = {sc.ACTIVITY_TYPE: "conversation", sc.GEN_AI_CONVERSATION_ID: "d9a7cfcb", sc.SESSION_ID: "s-1",
              sc.USER_ID: "1"}  # fmt: skip
    assert dict(spans[0].attributes) == {**common, sc.CONVERSATION_ACTIVITY: "user_message",
                                         sc.CONVERSATION_SEQUENCE: 1,
                                         sc.CONVERSATION_MESSAGE: "What is the status of job XYZ?"}  # fmt: skip
    assert dict(spans[1].attributes) == {**common, sc.CONVERSATION_ACTIVITY: "mcp_tool_call",
                                         sc.CONVERSATION_SEQUENCE: 2, sc.MCP_SERVER: "informatica_mcp",
                                         sc.GEN_AI_TOOL_NAME: "get_job_status",
                                         sc.GEN_AI_TOOL_CALL_ARGUMENTS: '{"job_id":"XYZ"}'}  # fmt: skip
    assert dict(spans[2].attributes) == {**common, sc.CONVERSATION_ACTIVITY: "mcp_tool_response",
                                         sc.CONVERSATION_SEQUENCE: 3, sc.MCP_SERVER: "informatica_mcp",
                                         sc.GEN_AI_TOOL_NAME: "get_job_status", sc.STATUS: "success",
                                         sc.DURATION_MS: 1200}  # fmt: skip
    assert dict(spans[3].attributes) == {**common, sc.CONVERSATION_ACTIVITY: "assistant_response",
                                         sc.CONVERSATION_SEQUENCE: 4, sc.CONVERSATION_TOKENS: 150,
                                         sc.CONVERSATION_MESSAGE: "Job XYZ is running at 75%"}  # fmt: skip
    assert [span.name for span in spans] == ["conversation.user_message", "conversation.mcp_tool_call",
                                             "conversation.mcp_tool_response", "conversation.assistant_response"]  # fmt: skip


def test_conversation_sequence_is_thread_safe(captured_spans) -> None:
    from concurrent.futures import ThreadPoolExecutor

    conv = spanledger.conversation("threads", start_sequence=10)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: conv.user_message(f"m{i}"), range(400)))
    sequences = sorted(span.attributes[sc.CONVERSATION_SEQUENCE] for span in captured_spans.spans())
    assert sequences == list(range(11, 411))


def test_conversation_scope_marks_llm_spans(captured_spans) -> None:
    conv = spanledger.conversation("c-scope", session_id="s-2", user_id="u-2")
    with conv.scope():
        with spanledger.llm_call("gpt-4o") as call:
            call.set_usage(input_tokens=1, output_tokens=1)
    attributes = captured_spans.attributes("chat gpt-4o")
    assert (attributes[sc.GEN_AI_CONVERSATION_ID], attributes[sc.SESSION_ID], attributes[sc.USER_ID]) == (
        "c-scope", "s-2", "u-2",
    )  # fmt: skip


def test_product_event(captured_spans) -> None:
    spanledger.product_event("project_subtask_completed", entity_type="subtask", entity_id="p-0-1",
                             device_type="mobile", duration_ms=2500, user_id="u-1", session_id="s-1",
                             metadata={"project_id": "p", "goal_index": 0, "tags": ["a", "b"], "extra": {"x": 1}})  # fmt: skip
    assert captured_spans.attributes("project_subtask_completed") == {
        sc.ACTIVITY_TYPE: "product_event",
        sc.EVENT_TYPE: "project_subtask_completed",
        sc.EVENT_CATEGORY: "project",
        sc.EVENT_ACTION: "completed",
        sc.ENTITY_TYPE: "subtask",
        sc.ENTITY_ID: "p-0-1",
        sc.DEVICE_TYPE: "mobile",
        sc.DURATION_MS: 2500,
        sc.USER_ID: "u-1",
        sc.SESSION_ID: "s-1",
        "spanledger.event.metadata.project_id": "p",
        "spanledger.event.metadata.goal_index": 0,
        "spanledger.event.metadata.tags": ("a", "b"),
        "spanledger.event.metadata.extra": '{"x":1}',
    }


def test_generic_activity(captured_spans) -> None:
    with spanledger.activity("sync_inventory", activity_type="system_event", description="nightly",
                             attributes={"items": 3, "obj": {"k": "v"}}) as act:  # fmt: skip
        act.set_attribute("extra", [1, 2])
        act.add_event("retry", {"attempt": 2})
    span = captured_spans.by_name("sync_inventory")
    assert dict(span.attributes) == {
        sc.ACTIVITY_TYPE: "system_event",
        sc.ACTIVITY_DESCRIPTION: "nightly",
        "items": 3,
        "obj": '{"k":"v"}',
        "extra": (1, 2),
    }
    assert [(event.name, dict(event.attributes)) for event in span.events] == [("retry", {"attempt": 2})]
    assert act.ref == ("00000000000000000000000000000001", "0000000000000001")


def test_whole_spans_are_deterministic(captured_spans) -> None:
    with spanledger.activity("outer"):
        spanledger.product_event("page_view", entity_id="home")
    assert captured_spans.as_dicts() == [
        {"name": "page_view", "kind": "INTERNAL", "trace_id": 1, "span_id": 2, "parent_span_id": 1,
         "start_time": 2_000_000_000, "end_time": 3_000_000_000, "status": "UNSET",
         "attributes": {sc.ACTIVITY_TYPE: "product_event", sc.EVENT_TYPE: "page_view", sc.EVENT_CATEGORY: "page",
                        sc.EVENT_ACTION: "view", sc.ENTITY_ID: "home"},
         "events": []},
        {"name": "outer", "kind": "INTERNAL", "trace_id": 1, "span_id": 1, "parent_span_id": None,
         "start_time": 1_000_000_000, "end_time": 4_000_000_000, "status": "UNSET",
         "attributes": {sc.ACTIVITY_TYPE: "activity"}, "events": []},
    ]  # fmt: skip


def test_helpers_are_noops_before_configure() -> None:
    """No provider (neither configure() nor a fixture): everything runs, nothing is recorded."""
    with spanledger.agent_run("x") as run:
        run.progress(1)
        with spanledger.llm_call("gpt-4o", prompt="hi") as call:
            call.set_usage(input_tokens=1, output_tokens=1)
        assert not call.is_recording and call.cost is None
    assert spanledger.ticket_operation("create", "t") is None
