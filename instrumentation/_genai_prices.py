"""Read one model's rates out of genai-prices' bundled snapshot (offline).

Kept apart from :mod:`spanledger.pricing` because it is the only code that
knows genai-prices' data model (conditional prices, tiers, unit keys).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

from spanledger.pricing import ModelRates, RateTier

_ZERO = Decimal(0)

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
    price = info.get_prices(datetime.now(tz=UTC))

    def split(key: str) -> tuple[Decimal | None, dict[int, Decimal]]:
        value = getattr(price, key, None)
        if isinstance(value, types.TieredPrices):
            return value.base, {tier.start: tier.price for tier in value.tiers}
        return value, {}

    (input_base, input_tiers), (output_base, output_tiers) = split("input_mtok"), split("output_mtok")
    (read_base, read_tiers), (write_base, write_tiers) = split("cache_read_mtok"), split("cache_write_mtok")
    input_rate = input_base if input_base is not None else _ZERO
    output_rate = output_base if output_base is not None else _ZERO

    def at(base: Decimal, tiers: dict[int, Decimal], start: int) -> Decimal:
        applicable = [threshold for threshold in tiers if threshold <= start]
        return tiers[max(applicable)] if applicable else base

    tiers: list[RateTier] = []
    for start in sorted(set(input_tiers) | set(output_tiers) | set(read_tiers) | set(write_tiers)):
        tier_input = at(input_rate, input_tiers, start)
        tiers.append(
            RateTier(
                threshold_tokens=start,
                input_mtok=tier_input,
                output_mtok=at(output_rate, output_tiers, start),
                # Unpriced cache tokens stay in the input bucket, so they follow the input tier.
                cache_read_mtok=at(read_base, read_tiers, start) if read_base is not None else tier_input,
                cache_write_mtok=at(write_base, write_tiers, start) if write_base is not None else tier_input,
            )
        )
    first = tiers[0] if tiers else None
    return ModelRates(
        input_mtok=input_rate,
        output_mtok=output_rate,
        cache_read_mtok=read_base if read_base is not None else input_rate,
        cache_write_mtok=write_base if write_base is not None else input_rate,
        provider_id=found_provider.id,
        model_id=info.id,
        source="genai-prices",
        tier_threshold_tokens=first.threshold_tokens if first else None,
        tier_input_mtok=first.input_mtok if first else None,
        tier_output_mtok=first.output_mtok if first else None,
        tier_cache_read_mtok=first.cache_read_mtok if first else None,
        tier_cache_write_mtok=first.cache_write_mtok if first else None,
        extra_tiers=tuple(tiers[1:]),
        reasoning_mtok=split("output_reasoning_mtok")[0],
    )
