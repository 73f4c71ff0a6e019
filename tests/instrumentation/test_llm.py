"""LLM call spans: usage, cost (provided / computed / unknown), counting, content."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

import spanledger
from spanledger import semconv as sc
from spanledger.pricing import ModelPriceOverride, PriceBook
from spanledger.tokens import count_tokens


def test_provider_usage_and_computed_cost(captured_spans) -> None:
    with spanledger.llm_call("gpt-4o", provider="openai", prompt="hi", max_tokens=256, temperature=0.2) as call:
        call.set_response(model="gpt-4o-2024-08-06", response_id="chatcmpl-1", finish_reasons=["stop"], output="hello")
        call.set_usage({"prompt_tokens": 10_000, "completion_tokens": 1_200,
                        "prompt_tokens_details": {"cached_tokens": 8_000},
                        "completion_tokens_details": {"reasoning_tokens": 300}})  # fmt: skip
    assert captured_spans.attributes("chat gpt-4o") == {
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.ACTIVITY_TYPE: "llm_call",
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
        sc.GEN_AI_REQUEST_MAX_TOKENS: 256,
        sc.GEN_AI_REQUEST_TEMPERATURE: 0.2,
        sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-2024-08-06",
        sc.GEN_AI_RESPONSE_ID: "chatcmpl-1",
        sc.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
        sc.TOKENS_SOURCE: "provider",
        sc.GEN_AI_USAGE_INPUT_TOKENS: 10_000,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 1_200,
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 8_000,
        sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: 0,
        sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 300,
        # 2000 x $2.50/M + 8000 x $1.25/M ; 1200 x $10/M (reasoning included, not added again)
        sc.COST_INPUT_USD: "0.015",
        sc.COST_OUTPUT_USD: "0.012",
        sc.COST_TOTAL_USD: "0.027",
        sc.GEN_AI_USAGE_COST: 0.027,  # the same total as a number, for Langfuse / OpenLIT
        sc.COST_SOURCE: "computed",
        sc.COST_PRICING_MODEL: "openai/gpt-4o",
    }
    span = captured_spans.by_name("chat gpt-4o")
    assert span.kind.name == "CLIENT"
    assert call.cost == Decimal("0.027") and call.usage is not None and call.usage.reasoning_tokens == 300


def test_anthropic_usage_object_is_translated(captured_spans) -> None:
    class Usage:
        input_tokens = 1_000
        output_tokens = 700
        cache_read_input_tokens = 3_000
        cache_creation_input_tokens = 1_000

    with spanledger.llm_call("claude-sonnet-4", provider="anthropic") as call:
        call.set_usage(Usage())
    attributes = captured_spans.attributes("chat claude-sonnet-4")
    assert attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 5_000
    assert attributes[sc.COST_TOTAL_USD] == "0.01815"


def test_provided_cost_is_kept(captured_spans) -> None:
    with spanledger.llm_call("gpt-4o", provider="openai") as call:
        call.set_usage(input_tokens=100, output_tokens=10)
        call.set_cost(0.1, input_usd="0.07", output_usd=0.03)
    attributes = captured_spans.attributes("chat gpt-4o")
    assert {key: attributes[key] for key in attributes if key.startswith("spanledger.cost")} == {
        sc.COST_TOTAL_USD: "0.1",
        sc.COST_INPUT_USD: "0.07",
        sc.COST_OUTPUT_USD: "0.03",
        sc.COST_SOURCE: "provided",
    }
    assert attributes[sc.GEN_AI_USAGE_COST] == 0.1 and isinstance(attributes[sc.GEN_AI_USAGE_COST], float)


def test_tokens_counted_when_provider_reports_none(captured_spans) -> None:
    prompt = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Status of job XYZ?"}]
    with spanledger.llm_call("gpt-4o-mini", provider="openai", prompt=prompt) as call:
        call.set_output("Job XYZ is running at 75%.")
    attributes = captured_spans.attributes("chat gpt-4o-mini")
    assert attributes[sc.TOKENS_SOURCE] == "tiktoken"
    assert attributes[sc.TOKENS_ENCODING] == "o200k_base"
    assert attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == count_tokens(prompt, "gpt-4o-mini")[0]
    assert attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == count_tokens("Job XYZ is running at 75%.", "gpt-4o-mini")[0]
    assert attributes[sc.COST_SOURCE] == "computed"
    assert sc.GEN_AI_INPUT_MESSAGES not in attributes  # counting works with capture off


def test_unknown_model_never_costs_zero(captured_spans) -> None:
    with spanledger.llm_call("my-private-model", provider="acme") as call:
        call.set_usage(input_tokens=500, output_tokens=50)
    attributes = captured_spans.attributes("chat my-private-model")
    assert attributes[sc.COST_SOURCE] == "unknown_model"
    assert not any(key in attributes for key in (sc.COST_TOTAL_USD, sc.COST_INPUT_USD, sc.COST_OUTPUT_USD))


def test_custom_price_book(captured_spans) -> None:
    captured_spans.use_price_book(PriceBook([ModelPriceOverride(model="llama3*", input_mtok=0, output_mtok=0)]))
    with spanledger.llm_call("llama3:8b", provider="ollama") as call:
        call.set_usage(input_tokens=5_000, output_tokens=500)
    attributes = captured_spans.attributes("chat llama3:8b")
    assert (attributes[sc.COST_TOTAL_USD], attributes[sc.COST_SOURCE], attributes[sc.COST_PRICING_MODEL]) == (
        "0", "computed", "llama3*",
    )  # fmt: skip


def test_failed_call_records_error_and_no_cost(captured_spans) -> None:
    class RateLimited(Exception):
        pass

    with pytest.raises(RateLimited):
        with spanledger.llm_call("gpt-4o", provider="openai", prompt="hi"):
            raise RateLimited("429")
    span = captured_spans.by_name("chat gpt-4o")
    assert span.status.status_code.name == "ERROR"
    assert span.attributes[sc.ERROR_TYPE].endswith("RateLimited")
    assert span.attributes[sc.COST_SOURCE] == "none"
    assert sc.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes


def test_invocation_object_without_with(captured_spans) -> None:
    call = spanledger.llm_call("gemini-2.5-pro", provider="gcp.gemini", operation="generate_content").start()
    call.set_usage({"prompt_token_count": 300_000, "candidates_token_count": 3_000, "thoughts_token_count": 1_000,
                    "cached_content_token_count": 100_000})  # fmt: skip
    call.stop()
    call.stop()  # idempotent
    attributes = captured_spans.attributes("generate_content gemini-2.5-pro")
    assert attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 4_000
    assert attributes[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 1_000
    assert attributes[sc.COST_TOTAL_USD] == "0.585"  # above 200k: $2.50 in, $0.25 cached, $15 out


def test_fail_with_a_message(captured_spans) -> None:
    call = spanledger.llm_call("gpt-4o").start()
    call.fail("content filter")
    span = captured_spans.by_name("chat gpt-4o")
    assert span.status.description == "RuntimeError: content filter" and span.events == ()


def test_streaming_chunks(captured_spans) -> None:
    with spanledger.llm_call("gpt-4o", provider="openai", prompt="count") as call:
        for chunk in ["one", " two", " three"]:
            call.append_output(chunk)
    attributes = captured_spans.attributes("chat gpt-4o")
    assert attributes[sc.LLM_TIME_TO_FIRST_CHUNK_MS] == 1000.0  # one tick of the test clock
    assert attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == count_tokens("one two three", "gpt-4o")[0]


def test_content_capture_redacts_and_truncates_each_part(captured_spans) -> None:
    captured_spans.set_content_policy(capture=True, max_length=12, redact=lambda t: t.replace("sk-123", "[key]"))
    prompt = [{"role": "user", "content": [{"type": "text", "text": "my key is sk-123, keep it"}, {"type": "image"}]}]
    with spanledger.llm_call("gpt-4o", provider="openai", prompt=prompt) as call:
        call.set_response(output="ok", finish_reasons="stop")
        call.set_usage(input_tokens=20, output_tokens=1)
    attributes = captured_spans.attributes("chat gpt-4o")
    assert json.loads(attributes[sc.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "my key is [k...[truncated]"}, {"type": "image"}]}
    ]
    assert json.loads(attributes[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "ok"}], "finish_reason": "stop"}
    ]


def test_redaction_failure_never_leaks(captured_spans) -> None:
    def broken(text: str) -> str:
        raise RuntimeError("regex exploded")

    captured_spans.set_content_policy(capture=True, redact=broken)
    with spanledger.llm_call("gpt-4o", prompt="password=hunter2") as call:
        call.set_usage(input_tokens=3, output_tokens=0)
    assert "hunter2" not in captured_spans.attributes("chat gpt-4o")[sc.GEN_AI_INPUT_MESSAGES]


def test_env_var_turns_content_on(monkeypatch) -> None:
    from spanledger._config import resolve_settings

    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    assert resolve_settings({}).capture_content is True
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    assert resolve_settings({}).capture_content is True
    assert resolve_settings({"capture_content": False}).capture_content is False  # argument wins
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "no_content")
    assert resolve_settings({}).capture_content is False
