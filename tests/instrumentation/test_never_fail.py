"""spanledger never breaks the host: broken exporters, a dead collector, garbage input."""

from __future__ import annotations

import math
import socket
import threading
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import spanledger
from spanledger import semconv as sc


class RaisingExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        raise RuntimeError("exporter bug")

    def shutdown(self) -> None:
        raise RuntimeError("shutdown bug too")


class BlockingExporter(SpanExporter):
    """Holds the export thread until released, so the queue fills up."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait(10)
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


def host_work(n: int) -> int:
    """A stand-in for the agent's own code, fully instrumented."""
    total = 0
    for i in range(n):
        with spanledger.agent_run("worker", task_id=str(i)):
            with spanledger.llm_call("gpt-4o", provider="openai", prompt="x") as call:
                call.set_usage(input_tokens=10, output_tokens=5)
            total += i
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_exporter_that_raises() -> None:
    before = spanledger.stats().spans_failed
    spanledger.configure(exporter=RaisingExporter(), set_global_provider=False, shutdown_timeout_millis=2000)
    try:
        assert host_work(20) == sum(range(20))
        spanledger.force_flush(5_000)
    finally:
        spanledger.shutdown()
    assert spanledger.stats().spans_failed - before == 40


def test_unreachable_collector_does_not_slow_or_break_the_host() -> None:
    spanledger.configure(endpoint=f"http://127.0.0.1:{free_port()}", timeout=1, set_global_provider=False,
                         shutdown_timeout_millis=300)  # fmt: skip
    try:
        assert host_work(500) == sum(range(500))  # returns as soon as the spans are queued
    finally:
        spanledger.shutdown()  # bounded by shutdown_timeout_millis even though nothing can be delivered


def test_full_queue_drops_are_counted_not_blocking() -> None:
    exporter = BlockingExporter()
    before = spanledger.stats().spans_dropped
    spanledger.configure(exporter=exporter, max_queue_size=10, max_export_batch_size=5, set_global_provider=False,
                         shutdown_timeout_millis=2000)  # fmt: skip
    try:
        for i in range(100):
            spanledger.product_event("burst", entity_id=str(i))
        dropped = spanledger.stats().spans_dropped - before
        assert dropped >= 100 - 10 - 5  # at most a queue plus the batch held by the exporter got through
        exporter.release.set()
        spanledger.force_flush(5_000)
    finally:
        spanledger.shutdown()
    assert exporter.exported + dropped == 100


@pytest.mark.parametrize(
    "usage",
    [
        {"input_tokens": -5, "output_tokens": 3},
        {"input_tokens": "lots", "output_tokens": None},
        {"input_tokens": 10**30, "output_tokens": math.inf},
        {"input_tokens": 3.7, "output_tokens": 2, "cache_read_tokens": 99},
    ],
)
def test_garbage_usage_never_raises(captured_spans, usage) -> None:
    with spanledger.llm_call("gpt-4o", provider="openai") as call:
        call.set_usage(**usage)
    attributes = captured_spans.attributes("chat gpt-4o")
    assert attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] >= 0
    assert attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] >= 0


def test_garbage_everywhere_never_raises(captured_spans) -> None:
    captured_spans.set_content_policy(capture=True)

    class Weird:
        def __str__(self) -> str:
            raise RuntimeError("no str for you")

        def __repr__(self) -> str:
            raise RuntimeError("no repr either")

    with spanledger.llm_call(None, provider=None, prompt=Weird(), max_tokens="many") as call:  # type: ignore[arg-type]
        call.set_usage(object())
        call.set_cost("free")
        call.set_cost(float("nan"))
        call.set_response(model=None, finish_reasons=[None, 3], output={"structured": [1, 2]})
        call.append_output(b"\xff bytes")
    with spanledger.llm_call(12345, prompt=[{"role": None, "content": None}]) as call2:  # type: ignore[arg-type]
        call2.set_output(None)
    spanledger.tool_call(None, arguments=Weird()).stop()  # type: ignore[arg-type]
    spanledger.record_tool_call("t", Weird(), Weird(), duration_ms="slow")  # type: ignore[arg-type]
    spanledger.ticket_operation(None, None, changes=Weird(), changed_fields=[1, None])  # type: ignore[arg-type]
    spanledger.project_action(None, status=Weird(), duration_ms=-5)  # type: ignore[arg-type]
    spanledger.product_event(None, metadata=Weird())  # type: ignore[arg-type]
    spanledger.agent_event(None, None, progress_percent="half", attributes={"x": Weird()})  # type: ignore[arg-type]
    spanledger.conversation(None).user_message(Weird())
    with spanledger.associate(user_id=Weird(), attributes={"a": Weird()}):
        pass
    with spanledger.activity(None, attributes={None: 1}):  # type: ignore[arg-type]
        pass
    assert spanledger.inject(None) is not None
    with spanledger.continue_trace({"traceparent": "garbage"}):
        pass
    assert len(captured_spans.spans()) >= 8
    assert captured_spans.by_name("chat").attributes[sc.COST_SOURCE] in ("unknown_model", "none")


def test_caller_exceptions_pass_through_unchanged(captured_spans) -> None:
    error = ValueError("the host's own error")
    for helper in (
        lambda: spanledger.activity("a"),
        lambda: spanledger.llm_call("gpt-4o"),
        lambda: spanledger.tool_call("t"),
        lambda: spanledger.agent_run("r"),
        lambda: spanledger.associate(user_id="u"),
        lambda: spanledger.trace_scope(spanledger.new_trace_id()),
    ):
        with pytest.raises(ValueError) as caught:
            with helper():
                raise error
        assert caught.value is error


def test_broken_span_processor_does_not_reach_the_host(captured_spans) -> None:
    from opentelemetry.sdk.trace import SpanProcessor

    class Broken(SpanProcessor):
        def on_start(self, span, parent_context=None):
            raise RuntimeError("processor bug")

    captured_spans.add_processor(Broken())
    before = spanledger.stats().internal_errors
    with spanledger.activity("survives"):
        result = 42
    assert result == 42
    assert spanledger.stats().internal_errors > before
