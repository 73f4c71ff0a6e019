"""The one place reports read model prices: what a cached input token saved.

Money caching saved, per model, at the model's own rates:

    saved = cache-read tokens x (input rate - cache-read rate)

The rates are the collector's price book (genai-prices plus the configured
overrides) -- the same ``PriceBook`` and the same (provider, lower-case model)
resolution, with the provider-less fallback, that the collector prices spans
with (collector/pricing/lookup.py, spanledger_price_schedules).  They are read
here in Python because spans the SDK already priced never reach the
collector's price table.  Base rates are used: a long-context tier applies per
call, and an hourly rollup no longer knows the calls.  A model with no known
price saves nothing here; its calls are counted apart as unpriced.

When pricing changes shape, adapt ``saving_rates`` only.
"""

from __future__ import annotations

from decimal import Decimal

_MILLION = Decimal(1_000_000)


def saving_rates(price_book, pairs) -> dict[tuple[str, str], Decimal]:
    """(provider, lower-case model) -> USD saved per cache-read token, for each pair that has a price."""
    out: dict[tuple[str, str], Decimal] = {}
    for provider, model in pairs:
        rates = price_book.rates(provider or None, model)
        if rates is None and provider:
            rates = price_book.rates(None, model)  # as CollectorPricing.resolve does
        if rates is not None:
            out[(provider, model)] = (rates.input_mtok - rates.cache_read_mtok) / _MILLION
    return out


def saving_expression(rates: dict[tuple[str, str], Decimal] | None, tokens: str,
                      provider: str = "Provider", model: str = "Model") -> tuple[str, dict]:
    """SQL summing ``tokens`` x each row's saving rate, the rates bound as arrays (never SQL text)."""
    if rates is None:
        return "CAST(NULL AS Nullable(Decimal(38, 18)))", {}
    keys = sorted(rates)
    parameters = {"sv_p": [p for p, _ in keys], "sv_m": [m for _, m in keys],
                  "sv_r": [format(rates[k], "f") for k in keys]}
    index = (f"arrayFirstIndex((p, m) -> p = {provider} AND m = lower({model}), "
             "{sv_p:Array(String)}, {sv_m:Array(String)})")
    rate = f"arrayElement(CAST({{sv_r:Array(String)}}, 'Array(Decimal(38, 18))'), {index})"
    return f"sumIf({tokens} * {rate}, {tokens} > 0)", parameters
