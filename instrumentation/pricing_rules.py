"""The pricing rules, written once: what a model's prices are, and how one call is priced.

Both sides of spanledger use this: the SDK prices an LLM call with
:func:`cost_from_rates`, and the collector writes the same :class:`ModelRates`
into its price lookup, where ``schema/900_ingest_pipeline.sql`` applies the
same formula to every span.  ``tests/collector/test_pricing_every_model.py``
checks the two against each other and against ``genai_prices.calc_price``.

The model (genai-prices' own, flattened so SQL can apply it):

* a model has one or more **price periods**, in the order genai-prices lists
  its conditional prices (overrides after them).  A period is *active* from its
  UTC start day on, and only inside its daily UTC window when it has one
  (off-peak prices).  The **last active** period applies; when none is active,
  the first one does.
* a period has **tiers**: the base rates (``above_input_tokens = -1``) and
  rates that replace them for *all* tokens of a call whose input tokens (cache
  included) exceed ``above_input_tokens``.  The highest tier exceeded applies.
  A threshold of 0 therefore applies to any call with at least one input token.
* a tier has five rates in USD per million tokens.  A rate the price data does
  not give is *filled in*, so that the formula never branches: cache reads and
  writes cost the input rate, reasoning tokens the output rate.
* a period may carry a fee per request (genai-prices' ``requests_kcount`` / 1000).

The formula (exact decimals)::

    uncached  = max(input - cache_read - cache_write, 0)
    reasoning = min(reasoning, output)
    input_usd  = (uncached * in + cache_read * read + cache_write * write) / 1e6
    output_usd = ((output - reasoning) * out + reasoning * reason) / 1e6
    total_usd  = input_usd + output_usd + request_usd

Out of scope (no span attribute carries the count): audio, image and video
tokens, 1-hour cache writes (priced as ordinary cache writes), web searches,
pages, characters, seconds, and genai-prices' price variants by service tier.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from spanledger.usage import TokenUsage

DAY_NS = 86_400 * 10**9
BASE_TIER = -1  # ``above_input_tokens`` of the base rates: every call exceeds it
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class RateTier:
    """Rates (USD per million tokens) for calls whose input tokens exceed ``above_input_tokens``."""

    above_input_tokens: int
    input_mtok: Decimal
    output_mtok: Decimal
    cache_read_mtok: Decimal
    cache_write_mtok: Decimal
    reasoning_mtok: Decimal


@dataclass(frozen=True, slots=True)
class PricePeriod:
    """One set of prices and when it applies.

    ``from_day`` counts UTC days since 1970-01-01; ``daily_from_ns`` /
    ``daily_to_ns`` bound the time of day (UTC, nanoseconds since midnight;
    a window whose end is before its start runs over midnight).
    """

    tiers: tuple[RateTier, ...]  # lowest threshold first; tiers[0] is the base (BASE_TIER)
    request_usd: Decimal = _ZERO
    from_day: int = 0
    daily_from_ns: int = 0
    daily_to_ns: int = DAY_NS

    def active(self, day: int, time_of_day_ns: int) -> bool:
        if day < self.from_day:
            return False
        if self.daily_from_ns <= self.daily_to_ns:
            return self.daily_from_ns <= time_of_day_ns < self.daily_to_ns
        return time_of_day_ns >= self.daily_from_ns or time_of_day_ns < self.daily_to_ns

    def tier_for(self, input_tokens: int) -> RateTier:
        chosen = self.tiers[0]
        for tier in self.tiers:
            if input_tokens > tier.above_input_tokens:
                chosen = tier
        return chosen


@dataclass(frozen=True, slots=True)
class ModelRates:
    """Every price of one model, over time (see the module docstring)."""

    periods: tuple[PricePeriod, ...]
    provider_id: str | None = None
    model_id: str = ""
    source: Literal["genai-prices", "override"] = "genai-prices"

    @property
    def pricing_model(self) -> str:
        """``provider/model`` of the entry that matched, for the span attribute."""
        return f"{self.provider_id}/{self.model_id}" if self.provider_id else self.model_id

    def period_at(self, at_ns: int | None = None) -> PricePeriod:
        """The period in force at ``at_ns`` (Unix nanoseconds; now when None)."""
        at_ns = time.time_ns() if at_ns is None else at_ns
        day, time_of_day = divmod(at_ns, DAY_NS)
        chosen = self.periods[0]
        for period in self.periods:
            if period.active(day, time_of_day):
                chosen = period
        return chosen

    # base rates in force now: for display and logs; pricing goes through cost_from_rates
    @property
    def input_mtok(self) -> Decimal:
        return self.period_at().tiers[0].input_mtok

    @property
    def output_mtok(self) -> Decimal:
        return self.period_at().tiers[0].output_mtok

    @property
    def cache_read_mtok(self) -> Decimal:
        return self.period_at().tiers[0].cache_read_mtok

    @property
    def cache_write_mtok(self) -> Decimal:
        return self.period_at().tiers[0].cache_write_mtok


@dataclass(frozen=True, slots=True)
class Cost:
    """The USD cost of one call, exact; round only for display.  ``total_usd`` includes ``request_usd``."""

    input_usd: Decimal
    output_usd: Decimal
    total_usd: Decimal
    request_usd: Decimal = _ZERO


def cost_from_rates(rates: ModelRates, usage: TokenUsage, at_ns: int | None = None) -> Cost:
    """Price ``usage`` with the rates in force at ``at_ns`` (the call's start, Unix ns; now when None)."""
    period = rates.period_at(at_ns)
    tier = period.tier_for(usage.input_tokens)
    cache_read, cache_write = usage.cache_read_tokens, usage.cache_creation_tokens
    uncached = max(usage.input_tokens - cache_read - cache_write, 0)
    reasoning = min(usage.reasoning_tokens, usage.output_tokens)
    input_usd = (tier.input_mtok * uncached + tier.cache_read_mtok * cache_read
                 + tier.cache_write_mtok * cache_write).scaleb(-6)
    output_usd = (tier.output_mtok * (usage.output_tokens - reasoning) + tier.reasoning_mtok * reasoning).scaleb(-6)
    return Cost(input_usd, output_usd, input_usd + output_usd + period.request_usd, period.request_usd)


def tier_with_defaults(above: int, input_mtok: Decimal | None, output_mtok: Decimal | None,
                       cache_read_mtok: Decimal | None = None, cache_write_mtok: Decimal | None = None,
                       reasoning_mtok: Decimal | None = None) -> RateTier:
    """A tier with the rates the data leaves out filled in (cache -> input rate, reasoning -> output rate)."""
    input_rate = input_mtok if input_mtok is not None else _ZERO
    output_rate = output_mtok if output_mtok is not None else _ZERO
    return RateTier(
        above, input_rate, output_rate,
        cache_read_mtok if cache_read_mtok is not None else input_rate,
        cache_write_mtok if cache_write_mtok is not None else input_rate,
        reasoning_mtok if reasoning_mtok is not None else output_rate,
    )
