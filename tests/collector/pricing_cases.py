"""Spans for every model genai-prices knows, with usage that reaches each tier, and genai-prices' own figure.

Shared by the collector and SDK pricing tests.  Expected costs come from
``genai_prices.calc_price`` at the span's timestamp, never from spanledger.
Tier thresholds and price dates are read from genai-prices' data, so a price
update changes the cases, not the test.
"""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from spanledger.usage import TokenUsage

DAY_US = 86_400 * 10**6
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Case:
    provider: str
    model: str
    usage: TokenUsage
    at_us: int  # span start, Unix microseconds (exactly representable as a datetime)
    input_usd: Decimal
    output_usd: Decimal
    total_usd: Decimal

    @property
    def at_ns(self) -> int:
        return self.at_us * 1000

    @property
    def when(self) -> datetime:
        return EPOCH + timedelta(microseconds=self.at_us)


def _model_prices(model, types) -> list:
    return [model.prices] if isinstance(model.prices, types.ModelPrice) else [c.prices for c in model.prices]


def _thresholds(model, types) -> list[int]:
    starts = set()
    for price in _model_prices(model, types):
        for value in price.__dict__.values():
            if isinstance(value, types.TieredPrices):
                starts.update(tier.start for tier in value.tiers)
    return sorted(starts)


def _moments(model, types, rng: random.Random, now_us: int) -> list[int]:
    """A random moment since 2023, plus both sides of every date and time-of-day boundary genai-prices lists."""
    start_2023 = int(datetime(2023, 1, 1, tzinfo=UTC).timestamp()) * 10**6
    moments = [rng.randrange(start_2023, now_us)]
    if isinstance(model.prices, types.ModelPrice):
        return moments
    for conditional in model.prices:
        constraint = conditional.constraint
        if isinstance(constraint, types.StartDateConstraint):
            day_us = (constraint.start_date - date(1970, 1, 1)).days * DAY_US
            moments += [day_us - 1, day_us, day_us + rng.randrange(DAY_US)]
        elif isinstance(constraint, types.TimeOfDateConstraint):
            day_us = rng.randrange(start_2023, now_us) // DAY_US * DAY_US
            for t in (constraint.start_time, constraint.end_time):
                t = t if t.tzinfo is None else datetime.combine(date(1970, 1, 1), t).astimezone(UTC).time()
                of_day = ((t.hour * 60 + t.minute) * 60 + t.second) * 10**6 + t.microsecond
                moments += [day_us + of_day - 1, day_us + of_day]
    return [m for m in moments if 946_684_800 * 10**6 < m < now_us]


def _usage(rng: random.Random, input_tokens: int) -> TokenUsage:
    cache_read = rng.randint(0, input_tokens // 2)
    cache_write = rng.randint(0, (input_tokens - cache_read) // 2)
    output = rng.randint(1, 20_000)
    return TokenUsage(input_tokens, output, cache_read, cache_write, rng.randint(0, output))


def every_model_cases(seed: int = 20261202) -> tuple[list[Case], list[tuple[str, str, str]]]:
    """One case per (model, moment, tier) that genai-prices can price; and the models it cannot, with why."""
    from genai_prices import Usage, calc_price, data_snapshot, types

    rng = random.Random(seed)
    now_us = (datetime.now(tz=UTC) - EPOCH) // timedelta(microseconds=1)
    cases, skipped = [], []
    for provider in data_snapshot.get_snapshot().providers:
        for model in provider.models:
            thresholds = _thresholds(model, types)
            # below the first tier, then just above each threshold and well above it
            inputs = [rng.randint(1, max(2, (thresholds[0] if thresholds else 300_000)))]
            for start in thresholds:
                inputs += [start, start + 1, start + rng.randint(2, 500_000)]
            for at_us in _moments(model, types, rng, now_us):
                for input_tokens in inputs:
                    usage = _usage(rng, input_tokens)
                    try:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            ref = calc_price(
                                Usage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                                      cache_read_tokens=usage.cache_read_tokens,
                                      cache_write_tokens=usage.cache_creation_tokens,
                                      output_reasoning_tokens=usage.reasoning_tokens),
                                model.id, provider_id=provider.id,
                                genai_request_timestamp=EPOCH + timedelta(microseconds=at_us))
                    except (LookupError, ValueError) as exc:
                        skipped.append((provider.id, model.id, str(exc)[:120]))
                        break
                    cases.append(Case(provider.id, model.id, usage, at_us, ref.input_price, ref.output_price,
                                      ref.total_price))
    return cases, skipped


def coverage(cases: list[Case]) -> dict[str, int]:
    """How many cases exercise each rule, judged by genai-prices alone: so a test notices when they stop."""
    from genai_prices import Usage, calc_price

    priced_other_day = 0
    for c in cases:
        u = c.usage
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            now = calc_price(Usage(input_tokens=u.input_tokens, output_tokens=u.output_tokens,
                                   cache_read_tokens=u.cache_read_tokens, cache_write_tokens=u.cache_creation_tokens,
                                   output_reasoning_tokens=u.reasoning_tokens), c.model, provider_id=c.provider)
        priced_other_day += now.total_price != c.total_usd
    return {
        "priced_differently_than_today": priced_other_day,
        "with_request_fee": sum(c.total_usd > c.input_usd + c.output_usd for c in cases),
        "with_cache_writes": sum(c.usage.cache_creation_tokens > 0 for c in cases),
        "with_reasoning": sum(c.usage.reasoning_tokens > 0 for c in cases),
    }
