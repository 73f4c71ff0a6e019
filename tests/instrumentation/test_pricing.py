"""Cost = tokens x published rates, exactly; checked against hand-written provider prices and genai-prices."""

from __future__ import annotations

import json
import random
import warnings
from decimal import Decimal
from fractions import Fraction

import pytest

from spanledger.pricing import Cost, ModelPriceOverride, PriceBook, TokenUsage, decimal_text, default_price_book

# Published per-million-token prices (USD) from the providers' pricing pages:
# (input, output, cache read, cache write).  OpenAI and Google have no cache-write
# charge, so cache creation is billed as input.  Tiers: (threshold, rates above it).
PUBLISHED = {
    "gpt-4o": ("2.50", "10", "1.25", "2.50"),
    "gpt-4o-mini": ("0.15", "0.60", "0.075", "0.15"),
    "gpt-4.1": ("2", "8", "0.50", "2"),
    "o3": ("2", "8", "0.50", "2"),
    "o4-mini": ("1.10", "4.40", "0.275", "1.10"),
    "gpt-5": ("1.25", "10", "0.125", "1.25"),
    "gpt-4": ("30", "60", "30", "30"),
    "claude-sonnet-4": ("3", "15", "0.30", "3.75"),
    "claude-opus-4-1": ("15", "75", "1.50", "18.75"),
    "claude-3-5-haiku": ("0.80", "4", "0.08", "1"),
    "claude-sonnet-4-5": ("3", "15", "0.30", "3.75"),
    "gemini-2.5-pro": ("1.25", "10", "0.125", "1.25"),
    "gemini-2.5-flash": ("0.30", "2.50", "0.03", "0.30"),
    "gemini-2.0-flash": ("0.10", "0.40", "0.025", "0.10"),
    "gemini-1.5-flash": ("0.075", "0.30", "0.01875", "0.075"),
}
TIERS = {
    "claude-sonnet-4-5": (200_000, ("6", "22.50", "0.60", "7.50")),
    "gemini-2.5-pro": (200_000, ("2.50", "15", "0.25", "2.50")),
    "gemini-1.5-flash": (128_000, ("0.15", "0.60", "0.0375", "0.15")),
}

# provider, model as sent, usage(input, output, cache_read, cache_creation, reasoning)
CASES = [
    ("openai", "gpt-4o", TokenUsage(1_000, 500)),
    ("openai", "gpt-4o-2024-08-06", TokenUsage(10_000, 1_200, cache_read_tokens=8_000)),
    ("openai", "gpt-4o-mini", TokenUsage(50_000, 2_000, cache_read_tokens=20_000)),
    ("openai", "gpt-4.1", TokenUsage(3_000, 800, cache_read_tokens=1_024)),
    ("openai", "o3", TokenUsage(2_000, 5_000, reasoning_tokens=4_000)),
    ("openai", "o4-mini", TokenUsage(12_000, 3_000, cache_read_tokens=6_000, reasoning_tokens=2_500)),
    ("openai", "gpt-5", TokenUsage(100_000, 8_000, cache_read_tokens=90_000, reasoning_tokens=6_000)),
    ("openai", "gpt-4", TokenUsage(1_000, 500, cache_read_tokens=200)),
    ("anthropic", "claude-sonnet-4", TokenUsage(5_000, 700, cache_read_tokens=3_000, cache_creation_tokens=1_000)),
    ("anthropic", "claude-sonnet-4-20250514", TokenUsage(1_500, 20, cache_creation_tokens=1_500)),
    ("anthropic", "claude-opus-4-1", TokenUsage(20_000, 1_000, cache_creation_tokens=18_000)),
    ("anthropic", "claude-3-5-haiku", TokenUsage(4_000, 300, cache_read_tokens=3_500)),
    ("anthropic", "claude-sonnet-4-5", TokenUsage(250_000, 2_000, 100_000, 10_000, 500)),
    ("google", "gemini-2.5-pro", TokenUsage(150_000, 4_000, cache_read_tokens=50_000, reasoning_tokens=3_000)),
    ("gcp.gemini", "gemini-2.5-pro", TokenUsage(300_000, 4_000, cache_read_tokens=100_000, reasoning_tokens=1_000)),
    ("google", "gemini-2.5-flash", TokenUsage(8_000, 1_500, cache_read_tokens=2_000, reasoning_tokens=1_000)),
    ("google", "gemini-2.0-flash", TokenUsage(1_000_000, 10_000)),
    ("google", "gemini-1.5-flash", TokenUsage(128_000, 1_000)),  # at the threshold: base rate
    ("google", "gemini-1.5-flash", TokenUsage(128_001, 1_000)),  # above it: all tokens at the tier rate
]

CANONICAL = {"gpt-4o-2024-08-06": "gpt-4o", "claude-sonnet-4-20250514": "claude-sonnet-4"}


def expected_cost(model: str, usage: TokenUsage) -> tuple[Fraction, Fraction]:
    """Independent arithmetic with Fractions on the published rates."""
    rates = PUBLISHED[CANONICAL.get(model, model)]
    tier = TIERS.get(CANONICAL.get(model, model))
    if tier and usage.input_tokens > tier[0]:
        rates = tier[1]
    r_in, r_out, r_read, r_write = (Fraction(r) for r in rates)
    uncached = usage.input_tokens - usage.cache_read_tokens - usage.cache_creation_tokens
    input_usd = (uncached * r_in + usage.cache_read_tokens * r_read + usage.cache_creation_tokens * r_write) / 10**6
    return input_usd, usage.output_tokens * r_out / 10**6


@pytest.mark.parametrize(("provider", "model", "usage"), CASES, ids=[f"{c[1]}-{c[2].input_tokens}" for c in CASES])
def test_cost_matches_published_prices(provider: str, model: str, usage: TokenUsage) -> None:
    cost = PriceBook().cost(provider, model, usage)
    assert cost is not None
    want_input, want_output = expected_cost(model, usage)
    assert Fraction(cost.input_usd) == want_input
    assert Fraction(cost.output_usd) == want_output
    assert cost.total_usd == cost.input_usd + cost.output_usd


def test_a_few_totals_written_out() -> None:
    book = PriceBook()
    # 1000 in x $2.50/M + 500 out x $10/M
    assert book.cost("openai", "gpt-4o", TokenUsage(1_000, 500)) == Cost(Decimal("0.0025"), Decimal("0.005"), Decimal("0.0075"))
    # 1000 uncached x $3 + 3000 read x $0.30 + 1000 write x $3.75 ; 700 x $15
    cost = book.cost("anthropic", "claude-sonnet-4", TokenUsage(5_000, 700, 3_000, 1_000))
    assert cost is not None and decimal_text(cost.total_usd) == "0.01815"
    # gemini-2.5-pro above 200k: 200k uncached x $2.50 + 100k read x $0.25 ; 4k x $15
    cost = book.cost("google", "gemini-2.5-pro", TokenUsage(300_000, 4_000, 100_000))
    assert cost is not None and decimal_text(cost.total_usd) == "0.585"


def test_rates_follow_genai_prices_for_cache_defaults_and_tiers() -> None:
    gpt4 = PriceBook().rates("openai", "gpt-4")
    assert gpt4 is not None
    assert (gpt4.cache_read_mtok, gpt4.cache_write_mtok) == (Decimal(30), Decimal(30))  # no cache price: input rate
    pro = PriceBook().rates("google", "gemini-2.5-pro")
    assert pro is not None
    tiers = pro.period_at().tiers  # the base rates, then the long-context tier
    assert [(t.above_input_tokens, t.input_mtok, t.output_mtok) for t in tiers] == [
        (-1, Decimal("1.25"), Decimal(10)), (200_000, Decimal("2.5"), Decimal(15))]
    assert (pro.provider_id, pro.model_id, pro.source, pro.pricing_model) == (
        "google", "gemini-2.5-pro", "genai-prices", "google/gemini-2.5-pro",
    )  # fmt: skip


def test_rates_are_resolved_once_and_cached() -> None:
    book = PriceBook()
    first = book.rates("openai", "gpt-4o")
    assert book.rates("OpenAI", "GPT-4o") is first


def test_agrees_with_genai_prices_calc_price_on_every_model() -> None:
    from genai_prices import Usage, calc_price, data_snapshot

    book, rng, compared = PriceBook(), random.Random(7), 0
    for provider in data_snapshot.get_snapshot().providers:
        for model in provider.models:
            inp = rng.choice([0, 50, 4_000, 150_000, 260_000, 1_500_000])
            read = rng.randint(0, inp // 2)
            write = rng.randint(0, (inp - read) // 2)
            out = rng.randint(0, 9_000)
            reasoning = rng.randint(0, out)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    reference = calc_price(
                        Usage(input_tokens=inp, output_tokens=out, cache_read_tokens=read, cache_write_tokens=write,
                              output_reasoning_tokens=reasoning),
                        model.id, provider_id=provider.id,
                    )  # fmt: skip
            except (LookupError, ValueError):
                continue  # entries priced in units other than tokens
            cost = book.cost(provider.id, model.id, TokenUsage(inp, out, read, write, reasoning))
            assert cost is not None, (provider.id, model.id)
            assert (cost.input_usd, cost.output_usd) == (reference.input_price, reference.output_price), (
                provider.id, model.id, inp, read, write, out, reasoning,
            )  # fmt: skip
            compared += 1
    assert compared > 1500


def test_unknown_model_has_no_price() -> None:
    book = PriceBook()
    assert book.rates("openai", "my-finetune-that-does-not-exist") is None
    assert book.cost(None, "llama3:8b", TokenUsage(100, 100)) is None
    assert book.rates(None, "") is None
    assert book.rates(None, None) is None  # type: ignore[arg-type]


def test_override_in_code_wins_and_can_be_zero() -> None:
    book = PriceBook(
        overrides=[
            ModelPriceOverride(model="llama3*", input_mtok=0, output_mtok=0),
            ModelPriceOverride(model="gpt-4o", provider="openai", input_mtok="2.00", output_mtok="8.00"),
        ]
    )
    local = book.cost(None, "llama3:8b", TokenUsage(1_000, 1_000))
    assert local == Cost(Decimal(0), Decimal(0), Decimal(0))
    rates = book.rates(None, "llama3:70b")
    assert rates is not None and rates.source == "override"
    negotiated = book.cost("openai", "gpt-4o", TokenUsage(1_000_000, 1_000_000, cache_read_tokens=500_000))
    assert negotiated == Cost(Decimal("2.00"), Decimal("8.00"), Decimal("10.00"))  # cache read defaults to input rate
    other_provider = book.rates("azure", "gpt-4o")
    assert other_provider is not None and other_provider.source == "genai-prices"


def test_add_override_invalidates_the_cache() -> None:
    book = PriceBook()
    assert book.rates(None, "acme-1") is None
    book.add_override(ModelPriceOverride(model="acme-1", input_mtok="1", output_mtok="2", cache_read_mtok="0.1"))
    cost = book.cost(None, "ACME-1", TokenUsage(2_000_000, 1_000_000, cache_read_tokens=1_000_000))
    assert cost == Cost(Decimal("1.1"), Decimal("2"), Decimal("3.1"))


def test_override_with_a_tier() -> None:
    book = PriceBook([ModelPriceOverride(model="big", input_mtok=1, output_mtok=2, tier_threshold_tokens=10,
                                         tier_input_mtok=10, tier_output_mtok=20)])  # fmt: skip
    assert book.cost(None, "big", TokenUsage(10, 1)) == Cost(Decimal("0.00001"), Decimal("0.000002"), Decimal("0.000012"))
    assert book.cost(None, "big", TokenUsage(11, 1)) == Cost(Decimal("0.00011"), Decimal("0.00002"), Decimal("0.00013"))


def test_price_file_json_and_toml(tmp_path) -> None:
    (tmp_path / "prices.json").write_text(
        json.dumps({"models": [{"model": "house-model", "input_mtok": "0.5", "output_mtok": 1.5}]})
    )
    (tmp_path / "prices.toml").write_text(
        '[[models]]\nmodel = "gpt-4o"\nprovider = "openai"\ninput_mtok = "1.25"\noutput_mtok = "5"\ncache_read_mtok = 0.5\n'
    )
    from_json = PriceBook.from_file(tmp_path / "prices.json")
    assert from_json.cost(None, "house-model", TokenUsage(1_000_000, 1_000_000)) == Cost(
        Decimal("0.5"), Decimal("1.5"), Decimal("2.0")
    )
    from_toml = PriceBook.from_file(tmp_path / "prices.toml")
    rates = from_toml.rates("openai", "gpt-4o")
    assert rates is not None and (rates.input_mtok, rates.cache_read_mtok, rates.source) == (
        Decimal("1.25"), Decimal("0.5"), "override",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"models": [{"model": "x", "input_mtok": 1}]}', "missing ['output_mtok']"),
        ('{"models": [{"model": "x", "input_mtok": -1, "output_mtok": 1}]}', "non-negative"),
        ('{"models": [{"model": "x", "input_mtok": "cheap", "output_mtok": 1}]}', "decimal number"),
        ('{"models": [{"model": "x", "inputs": 1, "output_mtok": 1, "input_mtok": 1}]}', "unknown key"),
        ('{"models": {"model": "x"}}', "list of models"),
        ("not json", "not valid JSON"),
    ],
)
def test_price_file_errors_say_what_is_wrong(tmp_path, content: str, message: str) -> None:
    path = tmp_path / "prices.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        PriceBook.from_file(path)


def test_default_price_book_is_shared() -> None:
    assert default_price_book() is default_price_book()


def test_decimal_text_never_uses_exponents() -> None:
    assert decimal_text(Decimal("7.5E-8")) == "0.000000075"
    assert decimal_text(Decimal("0.00200000")) == "0.002"
    assert decimal_text(Decimal("100.0")) == "100"
    assert decimal_text(Decimal(0)) == "0"


def test_llm_call_cost_attributes_match_genai_prices_on_every_model(captured_spans) -> None:
    """The SDK's own span attributes, priced at the span's start, against genai-prices' figure at that time."""
    import sys
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    import spanledger
    from genai_prices import Usage, calc_price
    from spanledger import semconv as sc

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "collector"))
    from pricing_cases import every_model_cases

    cases, _ = every_model_cases(seed=11)
    first_per_model = {}
    for case in cases:
        first_per_model.setdefault((case.provider, case.model, case.usage.input_tokens > 200_000), case)
    wrong = []
    for case in first_per_model.values():
        captured_spans.clear()
        with spanledger.llm_call(case.model, provider=case.provider) as call:
            call.set_usage(case.usage)
        (span,) = captured_spans.spans()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            u = case.usage
            ref = calc_price(Usage(input_tokens=u.input_tokens, output_tokens=u.output_tokens,
                                   cache_read_tokens=u.cache_read_tokens, cache_write_tokens=u.cache_creation_tokens,
                                   output_reasoning_tokens=u.reasoning_tokens), case.model, provider_id=case.provider,
                             genai_request_timestamp=datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=span.start_time // 1000))
        attrs = span.attributes
        if attrs.get(sc.COST_SOURCE) != "computed" or abs(Decimal(attrs[sc.COST_TOTAL_USD]) - ref.total_price) > Decimal("1e-9"):
            wrong.append((case.provider, case.model, dict(attrs), ref.total_price))
    assert len(first_per_model) > 2_200 and not wrong, wrong[:3]


def test_rules_written_out_windows_thresholds_and_fees() -> None:
    """The rules of spanledger.pricing_rules on a hand-made schedule (rates invented for the test)."""
    from spanledger.pricing_rules import DAY_NS, ModelRates, PricePeriod, cost_from_rates, tier_with_defaults

    base = tier_with_defaults(-1, Decimal(1), Decimal(2))
    from_zero = tier_with_defaults(0, Decimal(10), Decimal(20))  # threshold 0: any call with an input token
    off_peak = PricePeriod((tier_with_defaults(-1, Decimal("0.5"), Decimal(1)),), daily_from_ns=22 * 3600 * 10**9,
                           daily_to_ns=6 * 3600 * 10**9)  # 22:00-06:00 UTC, over midnight
    rates = ModelRates((PricePeriod((base, from_zero), request_usd=Decimal("0.01")), off_peak))
    noon, midnight, six = 12 * 3600 * 10**9, 0, 6 * 3600 * 10**9
    day = 20_000 * DAY_NS
    assert cost_from_rates(rates, TokenUsage(0, 1_000_000), day + noon).total_usd == Decimal("2.01")  # base + fee
    assert cost_from_rates(rates, TokenUsage(1, 0), day + noon).total_usd == Decimal("0.00001") + Decimal("0.01")
    assert cost_from_rates(rates, TokenUsage(10**6, 0), day + midnight).total_usd == Decimal("0.5")  # off-peak, no fee
    assert cost_from_rates(rates, TokenUsage(10**6, 0), day + six).total_usd == Decimal("10.01")  # window end excluded
    assert cost_from_rates(rates, TokenUsage(10**6, 0), day + six - 1).total_usd == Decimal("0.5")
    # cache and reasoning rates default to input and output rates: nothing is counted twice
    cost = cost_from_rates(rates, TokenUsage(10**6, 10**6, cache_read_tokens=4 * 10**5, reasoning_tokens=3 * 10**5), day + noon)
    assert (cost.input_usd, cost.output_usd, cost.request_usd) == (Decimal(10), Decimal(20), Decimal("0.01"))


def test_override_tier_rates_fall_back_to_the_entry_then_to_defaults() -> None:
    override = ModelPriceOverride.from_mapping({
        "model": "m", "input_mtok": "1", "output_mtok": "2", "cache_read_mtok": "0.1",
        "tiers": [{"above_input_tokens": 1000, "input_mtok": "3"}]})
    (_, tier) = override.period.tiers
    # output: the entry's (given); cache read: the entry's (given); cache write and reasoning: the tier's own defaults
    assert (tier.input_mtok, tier.output_mtok, tier.cache_read_mtok, tier.cache_write_mtok, tier.reasoning_mtok) == (
        Decimal(3), Decimal(2), Decimal("0.1"), Decimal(3), Decimal(2))
