"""Cost other backends can read: gen_ai.usage.cost (a number, as Langfuse reads and OpenLIT writes) is taken
when it is the only cost, and never wins over the exact decimal string spanledger.cost.total_usd."""

from __future__ import annotations

from collector_support import make_span, new_request, rows, wait_stored


def test_exact_string_wins_and_the_number_alone_is_read(collector, raw_client):
    request, scope = new_request("cost-interop")
    make_span(scope, "both", attributes={"spanledger.cost.total_usd": "0.000123456789012",
                                         "gen_ai.usage.cost": 0.000123456789, "gen_ai.request.model": "gpt-4o"})
    make_span(scope, "openlit-only", attributes={"gen_ai.usage.cost": 0.5, "gen_ai.request.model": "no-such-model"})
    make_span(scope, "negative", attributes={"gen_ai.usage.cost": -1.0})
    response = raw_client.export(request.SerializeToString())
    assert response.partial_success.rejected_spans == 1
    assert "gen_ai.usage.cost" in response.partial_success.error_message
    wait_stored(collector, 2)
    found = {r["SpanName"]: r for r in rows(
        collector, "SELECT SpanName, toString(TotalCost) AS cost, CostSource FROM spanledger.otel_traces")}
    assert found["both"]["cost"] == "0.000123456789"  # Decimal(18, 12): the string's first 12 digits, exact
    assert found["both"]["CostSource"] == "provided"
    assert found["openlit-only"]["cost"] == "0.5" and found["openlit-only"]["CostSource"] == "provided"


def test_the_sdk_sets_both_spellings(captured_spans):
    import spanledger
    from spanledger import semconv as sc

    with spanledger.llm_call("gpt-4o", provider="openai") as call:
        call.set_usage(input_tokens=1_000_000, output_tokens=0)
    attributes = captured_spans.attributes("chat gpt-4o")
    assert attributes[sc.COST_TOTAL_USD] == "2.5"
    assert attributes[sc.GEN_AI_USAGE_COST] == 2.5
