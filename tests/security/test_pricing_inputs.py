"""Hostile pricing inputs: override files, model names, token counts, and the request bytes the pair scan reads."""

from __future__ import annotations

import json
import warnings

import pytest
from collector_support import make_span, new_request, rows, wait_stored
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from spanledger.collector.app import Collector, Overrides
from spanledger.collector.config import ConfigError, load_config
from spanledger.collector.pricing.pairs import model_pairs
from spanledger.pricing import ModelPriceOverride, PriceBook
from spanledger.pricing_overrides import load_overrides_file

PROVIDER_KEYS = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
MODEL_KEYS = ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name", "llm.response.model", "llm.request.model")


# -- the override file ----------------------------------------------------------------
@pytest.mark.parametrize(("entry", "message"), [
    ({"model": "x", "input_mtok": "NaN", "output_mtok": 1}, "finite"),
    ({"model": "x", "input_mtok": "Infinity", "output_mtok": 1}, "finite"),
    ({"model": "x", "input_mtok": "1e999999999", "output_mtok": 1}, "over 1,000,000"),
    ({"model": "x", "input_mtok": True, "output_mtok": 1}, "decimal number"),
    ({"model": "x", "input_mtok": [1], "output_mtok": 1}, "decimal number"),
    ({"model": "", "input_mtok": 1, "output_mtok": 1}, "model name"),
    ({"model": 7, "input_mtok": 1, "output_mtok": 1}, "model name"),
    ({"model": "x", "provider": "", "input_mtok": 1, "output_mtok": 1}, "provider"),
    ({"model": "x", "input_mtok": 1, "output_mtok": 1, "request_usd": -0.01}, "non-negative"),
    ({"model": "x", "input_mtok": 1, "output_mtok": 1, "starts": "2026-13-01"}, "date like"),
    ({"model": "x", "input_mtok": 1, "output_mtok": 1, "starts": "1969-12-31"}, "1970-01-01 or later"),
    ({"model": "x", "input_mtok": 1, "output_mtok": 1, "tiers": {"above_input_tokens": 1}}, "list"),
    ({"model": "x", "input_mtok": 1, "output_mtok": 1, "tiers": ["cheap"]}, "table"),
    ({"model": "x", "input_mtok": 1, "output_mtok": 1, "tiers": [{"input_mtok": 2}]}, "above_input_tokens"),
    ({"model": "x", "input_mtok": 1, "output_mtok": 1, "tiers": [{"above_input_tokens": -1}]}, ">= 0"),
    ({"model": "x", "input_mtok": 1, "output_mtok": 1, "tiers": [{"above_input_tokens": 2**70}]}, ">= 0"),
    ({"model": "x", "input_mtok": 1, "output_mtok": 1, "tiers": [{"above_input_tokens": 1.5}]}, "whole number"),
    ({"model": "x", "input_mtok": 1, "output_mtok": 1, "tiers": [{"above_input_tokens": 5, "bonus": 1}]}, "unknown key"),
    ({"model": "x", "input_mtok": 1, "output_mtok": 1,
      "tiers": [{"above_input_tokens": 5}, {"above_input_tokens": 5}]}, "same above_input_tokens"),
    ({"model": "x", "input_mtok": 1, "output_mtok": 1, "tiers": [{"above_input_tokens": i} for i in range(65)]}, "at most 64"),
    ({"model": "x", "input_mtok": 1, "output_mtok": 1, "tier_input_mtok": 2}, "need tier_threshold_tokens"),
    ({"model": "x", "input_mtok": 1, "output_mtok": 1, "__class__": "evil"}, "unknown key"),
])
def test_bad_override_entries_say_what_is_wrong(tmp_path, entry, message) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"models": [entry]}))
    with pytest.raises(ValueError, match=message) as info:
        load_overrides_file(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(("name", "content", "message"), [
    ("deep.json", "[" * 100_000 + "]" * 100_000, "not valid JSON"),
    ("bytes.toml", b"\xff\xfe[[models]]", "not valid TOML"),
    ("nan.json", '{"models": [{"model": "x", "input_mtok": NaN, "output_mtok": 1}]}', "finite"),
    ("top.json", '"models"', "list of models"),
    ("many.json", json.dumps({"models": [{"model": "x", "input_mtok": 1, "output_mtok": 1}] * 100_001}), "at most"),
])
def test_bad_override_files_say_what_is_wrong(tmp_path, name, content, message) -> None:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValueError, match=message):
        load_overrides_file(path)


def test_collector_refuses_to_start_on_a_bad_override_file_naming_the_key(tmp_path) -> None:
    path = tmp_path / "prices.json"
    path.write_text('{"models": [{"model": "x", "input_mtok": -3, "output_mtok": 1}]}')
    config = load_config(text=f"exporters:\n  clickhouse:\n    pricing:\n      overrides_file: {path}\n")
    with pytest.raises(ConfigError, match=r"exporters.clickhouse.pricing.overrides_file: .*input_mtok.*non-negative"):
        Collector(config, Overrides(data_dir=str(tmp_path / "data")))


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**30), st.floats(allow_nan=True),
                     st.text(max_size=12), st.sampled_from(["1", "0.5", "2026-01-01", "*", "NaN", "-0", "1e5"]))
_entries = st.dictionaries(
    st.sampled_from(["model", "provider", "input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok",
                     "reasoning_mtok", "request_usd", "starts", "tiers", "tier_threshold_tokens", "tier_input_mtok",
                     "other"]),
    st.one_of(_scalars, st.lists(st.dictionaries(st.sampled_from(["above_input_tokens", "input_mtok", "output_mtok",
                                                                  "junk"]), _scalars, max_size=4), max_size=3)),
    max_size=10)


@settings(max_examples=400, deadline=None)
@given(entry=_entries)
def test_fuzzed_override_entries_load_or_are_refused_with_a_message(entry) -> None:
    try:
        override = ModelPriceOverride.from_mapping(entry)
    except ValueError as exc:
        assert str(exc)
        return
    # what loads is usable: a cost is a finite, non-negative Decimal on both sides' formula
    book = PriceBook([override], use_library=False)
    cost = book.cost(override.provider, override.model.lower(), __import__("spanledger").pricing.TokenUsage(10**6, 10**6))
    assert cost is not None and cost.total_usd.is_finite() and cost.total_usd >= 0


# -- the pair scan on hostile bytes ------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=4096))
def test_pair_scan_never_fails_on_arbitrary_bytes(data) -> None:
    pairs = model_pairs(data)
    assert all(isinstance(p, str) and isinstance(m, str) and m for p, m in pairs)


_values = st.one_of(st.text(max_size=40), st.sampled_from(["GPT-4o", "Claude-3-5-Haiku", "ÉCOLE-Model", "o3", "", "x'); --"]),
                    st.text(min_size=120, max_size=300))
_span_attrs = st.dictionaries(st.sampled_from(PROVIDER_KEYS + MODEL_KEYS + ("gen_ai.operation.name",)), _values, max_size=6)


def _view_pair(attrs: dict) -> tuple[str, str] | None:
    """What the flatten view computes, written here independently: first non-empty, ASCII lower-case."""
    ascii_lower = lambda s: s.encode().lower().decode()  # noqa: E731 - ClickHouse lower() is ASCII-only
    provider = next((attrs[k] for k in PROVIDER_KEYS if attrs.get(k)), "")
    model = next((attrs[k] for k in MODEL_KEYS if attrs.get(k)), "")
    return (ascii_lower(provider), ascii_lower(model)) if model else None


@settings(max_examples=300, deadline=None)
@given(spans=st.lists(_span_attrs, min_size=1, max_size=6))
def test_pair_scan_finds_every_pair_the_view_will_price(spans) -> None:
    request, scope = new_request()
    for attrs in spans:
        make_span(scope, "s", attributes=attrs)
    pairs = model_pairs(request.SerializeToString())
    for attrs in spans:
        pair = _view_pair(attrs)
        if pair is not None:
            assert pair in pairs


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spans=st.lists(_span_attrs, min_size=1, max_size=5))
def test_fuzzed_model_names_through_the_collector_are_all_priced_in_one_pass(collector, raw_client, spans) -> None:
    before = rows(collector, "SELECT count() AS n FROM spanledger.otel_traces")[0]["n"]
    request, scope = new_request("fuzz")
    for attrs in spans:
        make_span(scope, "fuzz", attributes={**attrs, "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10})
    assert raw_client.export(request.SerializeToString()).partial_success.rejected_spans == 0
    wait_stored(collector, before + len(spans))
    # a span with a model always has its key in the lookup (priced or 'no price known'), never missing
    missing = rows(collector, "SELECT count() AS n FROM spanledger.otel_traces WHERE Model != '' AND "
                              "joinGet('spanledger.spanledger_prices', 'Known', Provider, lower(Model)) = 0")[0]["n"]
    assert missing == 0
    assert rows(collector, "SELECT countIf(CostSource = 'pending') AS n FROM spanledger.otel_traces")[0]["n"] == 0


# -- absurd usage must not stall storage --------------------------------------------------
def test_a_count_whose_cost_the_column_cannot_hold_is_refused_per_span_and_the_rest_stored(collector, raw_client) -> None:
    request, scope = new_request("absurd")
    make_span(scope, "absurd", attributes={"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
                                          "gen_ai.usage.input_tokens": 9 * 10**18, "gen_ai.usage.output_tokens": 9 * 10**18})
    make_span(scope, "normal", attributes={"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
                                          "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 500})
    long_model = "m" * 5000  # beyond what the scan reads as a model name
    make_span(scope, "long", attributes={"gen_ai.request.model": long_model, "gen_ai.usage.input_tokens": 1})
    # validation bounds token counts (10^8 a span) before the answer, so the span never reaches pricing
    answer = raw_client.export(request.SerializeToString()).partial_success
    assert answer.rejected_spans == 1 and "above the 100,000,000 a span may count" in answer.error_message
    wait_stored(collector, 2)
    got = {r["SpanName"]: r for r in rows(collector, "SELECT SpanName, CostSource, TotalCost FROM spanledger.otel_traces")}
    assert "absurd" not in got
    assert got["normal"]["CostSource"] == "computed" and got["normal"]["TotalCost"] > 0
    assert got["long"]["CostSource"] == "unknown_model"
    assert collector.stats.store_failures == 0


def test_parsed_request_round_trip_is_what_the_scan_reads() -> None:
    # the scan reads the bytes the receiver stores (checked.payload); a re-encoded request scans the same
    request, scope = new_request()
    make_span(scope, "a", attributes={"llm.system": "OpenAI", "llm.model_name": "GPT-4o"})
    data = request.SerializeToString()
    assert model_pairs(data) == model_pairs(ExportTraceServiceRequest.FromString(data).SerializeToString()) == {
        ("", "gpt-4o"), ("openai", "gpt-4o")}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert model_pairs(b"") == frozenset()


def test_many_providers_and_models_in_one_request_do_not_multiply_into_the_lookup() -> None:
    request, scope = new_request()
    for i in range(100):  # 100 providers x 100 models would be 10,000 pairs; the spans have 100
        make_span(scope, "s", attributes={"gen_ai.provider.name": f"p{i}", "gen_ai.request.model": f"m{i}"})
    pairs = model_pairs(request.SerializeToString())
    assert {(f"p{i}", f"m{i}") for i in range(100)} <= pairs and len(pairs) <= 200
