"""Spans from other instrumentations land in the same promoted columns."""

from __future__ import annotations

from decimal import Decimal

import pytest
from collector_support import make_span, new_request, rows, wait_stored

CASES = {
    "genai-current": {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-20250514", "gen_ai.usage.input_tokens": 1500,
        "gen_ai.usage.output_tokens": 300, "gen_ai.usage.cache_read.input_tokens": 1000,
        "gen_ai.usage.cache_creation.input_tokens": 200, "gen_ai.agent.name": "coder",
        "gen_ai.conversation.id": "conv-1",
    },
    "genai-deprecated": {
        "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.prompt_tokens": 1000, "gen_ai.usage.completion_tokens": 100,
    },
    "openinference": {
        "openinference.span.kind": "LLM", "llm.model_name": "gpt-4o", "llm.provider": "openai",
        "llm.token_count.prompt": 2000, "llm.token_count.completion": 500,
        "llm.token_count.prompt_details.cache_read": 1000, "llm.token_count.completion_details.reasoning": 100,
        "session.id": "sess-9", "user.id": "user-7",
    },
    "openllmetry": {
        "traceloop.span.kind": "tool", "traceloop.entity.name": "web_search",
        "llm.usage.prompt_tokens": 0,
    },
    "openllmetry-llm": {
        "gen_ai.system": "Anthropic", "gen_ai.request.model": "claude-3-5-haiku-20241022",
        "gen_ai.response.model": "claude-3-5-haiku-20241022",
        "llm.usage.prompt_tokens": 800, "llm.usage.completion_tokens": 40,
        "gen_ai.usage.cache_read_input_tokens": 300,
    },
    "provided-cost": {
        "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 10, "spanledger.cost.total_usd": "1.5", "spanledger.cost.input_usd": "1",
        "spanledger.cost.output_usd": "0.5", "spanledger.cost.source": "provided",
    },
    "unknown-model": {
        "gen_ai.provider.name": "acme-llm", "gen_ai.request.model": "acme-9000",
        "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 10,
    },
    "reasoning-apart": {  # an instrumentation that reports reasoning outside output: made whole once
        "gen_ai.provider.name": "openai", "gen_ai.request.model": "o3-mini",
        "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 50,
        "gen_ai.usage.reasoning.output_tokens": 400,
    },
}


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    from collector_support import FAST_BATCH, RawClient, start_collector

    collector = start_collector(tmp_path_factory.mktemp("norm") / "data", FAST_BATCH)
    try:
        request, scope = new_request("normalization")
        for name, attributes in CASES.items():
            make_span(scope, name, attributes={**attributes, "x.int_zero": 0, "x.list": ["a", 1, True]})
        RawClient(collector.server.address).export(request.SerializeToString())
        wait_stored(collector, len(CASES))
        yield {r["SpanName"]: r for r in rows(collector, "SELECT * FROM spanledger.otel_traces")}
    finally:
        collector.stop()


def test_current_genai_conventions(stored):
    row = stored["genai-current"]
    assert (row["Operation"], row["Provider"], row["Model"], row["AgentName"]) == ("chat", "anthropic", "claude-sonnet-4-20250514", "coder")
    assert (row["InputTokens"], row["OutputTokens"], row["CacheReadTokens"], row["CacheWriteTokens"]) == (1500, 300, 1000, 200)
    assert row["ConversationId"] == "conv-1"
    # claude-sonnet-4: $3/M input, $0.30/M cache read, $3.75/M cache write, $15/M output
    expected_in = (Decimal(300) * 3 + Decimal(1000) * Decimal("0.30") + Decimal(200) * Decimal("3.75")) / 10**6
    assert row["InputCost"] == expected_in
    assert row["OutputCost"] == Decimal(300) * 15 / 10**6
    assert row["CostSource"] == "computed"


def test_deprecated_genai_spellings(stored):
    row = stored["genai-deprecated"]
    assert (row["Provider"], row["Model"], row["InputTokens"], row["OutputTokens"]) == ("openai", "gpt-4o-mini", 1000, 100)
    # gpt-4o-mini: $0.15/M input, $0.60/M output
    assert row["TotalCost"] == (Decimal(1000) * Decimal("0.15") + Decimal(100) * Decimal("0.60")) / 10**6


def test_openinference(stored):
    row = stored["openinference"]
    assert (row["Operation"], row["Provider"], row["Model"]) == ("chat", "openai", "gpt-4o")
    assert (row["InputTokens"], row["OutputTokens"], row["CacheReadTokens"], row["ReasoningTokens"]) == (2000, 500, 1000, 100)
    assert (row["SessionId"], row["UserId"]) == ("sess-9", "user-7")
    expected = (Decimal(1000) * Decimal("2.5") + Decimal(1000) * Decimal("1.25") + Decimal(500) * 10) / 10**6
    assert row["TotalCost"] == expected


def test_openllmetry(stored):
    tool = stored["openllmetry"]
    assert (tool["Operation"], tool["ToolName"], tool["CostSource"]) == ("execute_tool", "web_search", "")
    llm = stored["openllmetry-llm"]
    assert (llm["Provider"], llm["InputTokens"], llm["OutputTokens"], llm["CacheReadTokens"]) == ("anthropic", 800, 40, 300)
    assert llm["CostSource"] == "computed" and llm["TotalCost"] > 0


def test_provided_cost_is_kept(stored):
    row = stored["provided-cost"]
    assert (row["InputCost"], row["OutputCost"], row["TotalCost"], row["CostSource"]) == (Decimal(1), Decimal("0.5"), Decimal("1.5"), "provided")


def test_unknown_model_has_no_cost_and_says_so(stored):
    row = stored["unknown-model"]
    assert row["CostSource"] == "unknown_model" and row["TotalCost"] == 0


def test_reasoning_reported_apart_is_not_double_counted(stored):
    row = stored["reasoning-apart"]
    assert (row["OutputTokens"], row["ReasoningTokens"]) == (450, 400)


def test_attribute_values_keep_their_type_as_text(stored):
    attributes = stored["genai-current"]["SpanAttributes"]
    assert attributes["x.int_zero"] == "0"
    assert attributes["x.list"] == '["a",1,true]'
    assert attributes["gen_ai.usage.input_tokens"] == "1500"
