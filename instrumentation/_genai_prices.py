"""Read one model's prices out of genai-prices' bundled snapshot (offline), as :class:`ModelRates`.

Kept apart because it is the only code that knows genai-prices' data model:
per price key either a number or ``TieredPrices`` (base + tiers by input
tokens, each key with its own thresholds), conditional prices by start date or
time of day, and ``requests_kcount`` (a price per thousand requests).
Each conditional price becomes one :class:`PricePeriod`, in genai-prices'
order; the union of the keys' thresholds becomes the period's tiers.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal

from spanledger.pricing_rules import BASE_TIER, DAY_NS, ModelRates, PricePeriod, RateTier, tier_with_defaults

_EPOCH = date(1970, 1, 1)
_THOUSAND = Decimal(1000)

# OpenTelemetry ``gen_ai.provider.name`` values whose genai-prices id differs.
_PROVIDER_ALIASES: Mapping[str, str] = {
    "aws.bedrock": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "az.ai.openai": "azure",
    "az.ai.inference": "azure",
    "x_ai": "x-ai",
    "xai": "x-ai",
    "mistral_ai": "mistral",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "ibm.watsonx.ai": "ibm",
}
# the price keys spanledger prices (see pricing_rules' docstring for the others)
_KEYS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok", "output_reasoning_mtok")


def library_version() -> str:
    from importlib.metadata import version

    return version("genai-prices")


def rates_from_library(provider: str | None, model: str) -> ModelRates | None:
    from genai_prices import data_snapshot, types

    snapshot = data_snapshot.get_snapshot()
    provider_id = _PROVIDER_ALIASES.get(provider, provider) if provider else None
    try:
        found_provider, info = snapshot.find_provider_model(model, None, provider_id, None)
    except LookupError:
        if provider_id is None:
            return None
        try:  # a provider genai-prices does not know (a gateway, say): match on the model alone
            snapshot.find_provider(None, provider_id, None)
            return None  # the provider is known but does not sell this model
        except LookupError:
            try:
                found_provider, info = snapshot.find_provider_model(model, None, None, None)
            except LookupError:
                return None
    if isinstance(info.prices, types.ModelPrice):
        conditional = [(None, info.prices)]
    else:
        conditional = [(c.constraint, c.prices) for c in info.prices]
    periods = tuple(_period(constraint, price, types) for constraint, price in conditional)
    return ModelRates(periods, provider_id=found_provider.id, model_id=info.id, source="genai-prices")


def _period(constraint, price, types) -> PricePeriod:
    split = {key: _split(getattr(price, key, None), types) for key in _KEYS}
    thresholds = sorted({start for _, tiers in split.values() for start in tiers})
    tiers = [_tier_at(BASE_TIER, split)] + [_tier_at(start, split) for start in thresholds]
    requests = getattr(price, "requests_kcount", None)
    if isinstance(requests, types.TieredPrices):
        requests = requests.base
    period = PricePeriod(tuple(tiers), request_usd=(requests / _THOUSAND) if requests is not None else Decimal(0))
    if isinstance(constraint, types.StartDateConstraint):
        return PricePeriod(period.tiers, period.request_usd, from_day=(constraint.start_date - _EPOCH).days)
    if isinstance(constraint, types.TimeOfDateConstraint):
        return PricePeriod(period.tiers, period.request_usd,
                           daily_from_ns=_utc_ns_of_day(constraint.start_time), daily_to_ns=_utc_ns_of_day(constraint.end_time))
    return period


def _split(value, types) -> tuple[Decimal | None, dict[int, Decimal]]:
    if isinstance(value, types.TieredPrices):
        return value.base, {tier.start: tier.price for tier in value.tiers}
    return value, {}


def _tier_at(start: int, split: dict) -> RateTier:
    """Each key's rate for calls above ``start`` input tokens: its highest tier at or below ``start``."""

    def rate(key: str) -> Decimal | None:
        base, tiers = split[key]
        if base is None:
            return None
        applicable = [threshold for threshold in tiers if threshold <= start]
        return tiers[max(applicable)] if applicable else base

    return tier_with_defaults(start, rate("input_mtok"), rate("output_mtok"), rate("cache_read_mtok"),
                              rate("cache_write_mtok"), rate("output_reasoning_mtok"))


def _utc_ns_of_day(value: time) -> int:
    """A time of day as UTC nanoseconds since midnight (a naive time is UTC, as in genai-prices)."""
    if value.tzinfo is not None:
        value = datetime.combine(_EPOCH, value).astimezone(UTC).time()
    ns = ((value.hour * 60 + value.minute) * 60 + value.second) * 10**9 + value.microsecond * 1000
    return ns % DAY_NS
