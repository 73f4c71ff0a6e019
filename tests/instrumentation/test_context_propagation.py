"""Nesting, associations, chosen trace ids and W3C propagation (across a real subprocess)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import threading

import spanledger
from spanledger import semconv as sc

CHILD = textwrap.dedent(
    """
    import json, os, sys
    import spanledger
    from spanledger.testing import capture_spans

    carrier = json.loads(sys.stdin.read()) if sys.argv[1] == "stdin" else os.environ
    with capture_spans(deterministic=False) as captured:
        with spanledger.continue_trace(carrier):
            with spanledger.llm_call("gpt-4o") as call:
                call.set_usage(input_tokens=1, output_tokens=1)
        span = captured.by_name("chat gpt-4o")
        print(json.dumps({
            "trace_id": format(span.context.trace_id, "032x"),
            "parent_span_id": format(span.parent.span_id, "016x"),
            "parent_is_remote": span.parent.is_remote,
            "attributes": dict(span.attributes),
        }))
    """
)


def run_child(mode: str, carrier: dict[str, str]) -> dict:
    env = {**os.environ, **carrier} if mode == "env" else dict(os.environ)
    result = subprocess.run(
        [sys.executable, "-c", CHILD, mode],
        input=json.dumps(carrier) if mode == "stdin" else "",
        capture_output=True, text=True, env=env, timeout=60, check=True,
    )  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_nesting_gives_parent_child(captured_spans) -> None:
    with spanledger.activity("a") as a:
        with spanledger.activity("b") as b:
            with spanledger.tool_call("t"):
                pass
    spans = {span.name: span for span in captured_spans.spans()}
    assert spans["b"].parent.span_id == a.span.get_span_context().span_id
    assert spans["execute_tool t"].parent.span_id == b.span.get_span_context().span_id
    assert len({span.context.trace_id for span in spans.values()}) == 1
    assert spans["a"].parent is None


def test_associations_reach_every_span_without_overriding(captured_spans) -> None:
    with spanledger.associate(user_id="u-1", project_id=42, attributes={"team": "core"}):
        with spanledger.associate(session_id="s-1", user_id="u-2"):
            with spanledger.llm_call("gpt-4o") as call:
                call.set_usage(input_tokens=1, output_tokens=1)
        spanledger.project_action("deployment", user_id="explicit")
    spanledger.product_event("after_scope")
    llm = captured_spans.attributes("chat gpt-4o")
    assert (llm[sc.USER_ID], llm[sc.PROJECT_ID], llm[sc.SESSION_ID], llm["team"]) == ("u-2", "42", "s-1", "core")
    assert captured_spans.attributes("project.deployment")[sc.USER_ID] == "explicit"  # explicit wins
    assert sc.USER_ID not in captured_spans.attributes("after_scope")


def test_associations_follow_async_tasks_and_copied_contexts(captured_spans) -> None:
    import contextvars

    async def worker(i: int) -> None:
        with spanledger.associate(request_id=f"r-{i}"):
            await asyncio.sleep(0)
            spanledger.product_event(f"event_{i}")

    async def main() -> None:
        with spanledger.associate(user_id="u-async"):
            await asyncio.gather(*(worker(i) for i in range(3)))

    asyncio.run(main())
    for i in range(3):
        attributes = captured_spans.attributes(f"event_{i}")
        assert (attributes[sc.USER_ID], attributes[sc.REQUEST_ID]) == ("u-async", f"r-{i}")

    with spanledger.associate(user_id="u-thread"):
        ctx = contextvars.copy_context()
    thread = threading.Thread(target=ctx.run, args=(spanledger.product_event, "in_thread"))
    thread.start()
    thread.join()
    assert captured_spans.attributes("in_thread")[sc.USER_ID] == "u-thread"


def test_trace_scope_uses_the_given_trace_id_for_true_roots(captured_spans) -> None:
    trace_id = spanledger.new_trace_id()
    assert len(trace_id) == 32 and int(trace_id, 16) > 0 and trace_id != spanledger.new_trace_id()
    with spanledger.trace_scope(trace_id):
        spanledger.agent_event("started", "agent-1")
        with spanledger.tool_call("x"):
            pass
    with spanledger.trace_scope("d9a7cfcb-a863-4808-b172-425d6919ebfb"):  # a UUID works too
        spanledger.agent_event("completed", "agent-1")
    spanledger.agent_event("heartbeat", "agent-1")
    started, tool, completed, heartbeat = captured_spans.spans()
    assert format(started.context.trace_id, "032x") == trace_id == format(tool.context.trace_id, "032x")
    assert started.parent is None and tool.parent is None
    assert format(completed.context.trace_id, "032x") == "d9a7cfcba8634808b172425d6919ebfb"
    assert format(heartbeat.context.trace_id, "032x") not in (trace_id, "d9a7cfcba8634808b172425d6919ebfb")


def test_trace_scope_with_garbage_is_a_noop(captured_spans) -> None:
    with spanledger.trace_scope("not-hex"):
        spanledger.product_event("e")
    assert captured_spans.by_name("e").context.trace_id == 1


def test_inject_extract_in_process(captured_spans) -> None:
    with spanledger.associate(user_id="u-9", ticket_id="T-1"):
        with spanledger.activity("producer") as producer:
            message_headers = spanledger.inject()
    assert message_headers["traceparent"].startswith("00-00000000000000000000000000000001-0000000000000001-")
    assert "spanledger.user.id=u-9" in message_headers["baggage"]
    with spanledger.continue_trace(message_headers):
        spanledger.product_event("consumed")
    consumed = captured_spans.by_name("consumed")
    assert consumed.parent.span_id == producer.span.get_span_context().span_id and consumed.parent.is_remote
    assert (consumed.attributes[sc.USER_ID], consumed.attributes[sc.TICKET_ID]) == ("u-9", "T-1")
    assert spanledger.extract({}) is not None and spanledger.extract(None) is not None


def test_no_baggage_without_associations(captured_spans) -> None:
    with spanledger.activity("plain"):
        assert set(spanledger.inject(uppercase=True)) == {"TRACEPARENT"}


def test_cross_process_via_environment_and_stdin(captured_spans) -> None:
    with spanledger.associate(user_id="u-42", project_id="p-7"):
        with spanledger.agent_run("dispatcher") as run:
            env_carrier = dict(spanledger.inject(uppercase=True))
            queue_carrier = dict(spanledger.inject())
    parent_span_id = format(run.span.get_span_context().span_id, "016x")
    trace_id = format(run.span.get_span_context().trace_id, "032x")
    for mode, carrier in (("env", env_carrier), ("stdin", queue_carrier)):
        child = run_child(mode, carrier)
        assert child["trace_id"] == trace_id, mode
        assert child["parent_span_id"] == parent_span_id, mode
        assert child["parent_is_remote"] is True
        assert child["attributes"][sc.USER_ID] == "u-42"
        assert child["attributes"][sc.PROJECT_ID] == "p-7"
        assert child["attributes"][sc.GEN_AI_AGENT_NAME] == "dispatcher"
