"""Prices of LLM tokens, resolved once per model, applied with exact decimals.

Where prices come from: the bundled snapshot of ``genai-prices`` (Pydantic's
maintained pricing data: OpenAI, Anthropic, Google and ~40 more providers, with
cache, tiered, per-request and date-dependent prices), plus overrides you give
in code or in a file (docs/pricing.md).  Overrides win.  The snapshot is used
offline: spanledger never starts genai-prices' updater; ``pip install -U
genai-prices`` brings new prices.

Why resolve once: ``genai_prices.calc_price`` costs ~140 µs a call, too slow
for a per-span hot path.  :meth:`PriceBook.rates` resolves a (provider, model)
pair to a frozen :class:`ModelRates` (every price period and tier) on first use
and caches it; :func:`cost_from_rates` then picks the period in force at the
call's time and applies the formula of :mod:`spanledger.pricing_rules`, the
one the collector applies in SQL.

This module is shared with the collector, so it imports neither OpenTelemetry
nor grpc/chdb.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from decimal import Decimal

from spanledger.pricing_overrides import ModelPriceOverride, load_overrides_file
from spanledger.pricing_rules import Cost, ModelRates, PricePeriod, RateTier, cost_from_rates
from spanledger.usage import TokenUsage

__all__ = [
    "Cost",
    "ModelPriceOverride",
    "ModelRates",
    "PriceBook",
    "PricePeriod",
    "RateTier",
    "TokenUsage",
    "cost_from_rates",
    "decimal_text",
    "default_price_book",
    "PRICES_FILE_ENV",
]

logger = logging.getLogger("spanledger")

PRICES_FILE_ENV = "SPANLEDGER_PRICES_FILE"
"""Path of a JSON/TOML price-override file that :func:`default_price_book` loads."""


def decimal_text(value: Decimal) -> str:
    """Plain decimal notation without trailing zeros (``0.0025``, never ``7.5E-8``), parseable everywhere."""
    return format(value.normalize(), "f") if value else "0"


class PriceBook:
    """Resolves (provider, model) to :class:`ModelRates` once, then prices usage.

    Thread-safe; share one per process (see :func:`default_price_book`).
    """

    def __init__(self, overrides: Iterable[ModelPriceOverride] = (), *, use_library: bool = True) -> None:
        self._overrides: list[ModelPriceOverride] = list(overrides)
        self._use_library = use_library
        self._cache: dict[tuple[str | None, str], ModelRates | None] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, use_library: bool = True) -> PriceBook:
        """Load overrides from JSON or TOML (chosen by the ``.toml`` suffix); see docs/pricing.md."""
        return cls(load_overrides_file(path), use_library=use_library)

    def add_override(self, override: ModelPriceOverride) -> None:
        """Add an override; later overrides win over earlier ones."""
        with self._lock:
            self._overrides.append(override)
            self._cache.clear()

    @property
    def overrides(self) -> tuple[ModelPriceOverride, ...]:
        return tuple(self._overrides)

    def rates(self, provider: str | None, model: str) -> ModelRates | None:
        """The prices of ``model`` (None when nobody prices it); cached per pair."""
        if not isinstance(model, str) or not model:
            return None
        key = (provider.lower() if isinstance(provider, str) and provider else None, model.lower())
        try:
            return self._cache[key]
        except KeyError:
            pass
        resolved = self._resolve(*key)
        with self._lock:
            self._cache[key] = resolved
        return resolved

    def cost(self, provider: str | None, model: str, usage: TokenUsage, at_ns: int | None = None) -> Cost | None:
        """Exact cost of ``usage`` on ``model`` at ``at_ns`` (Unix ns, now when None); None without a price."""
        rates = self.rates(provider, model)
        return None if rates is None else cost_from_rates(rates, usage, at_ns)

    def _resolve(self, provider: str | None, model: str) -> ModelRates | None:
        """genai-prices' periods, then every matching override's, in order: the last active one applies."""
        matching = [o for o in self._overrides if o.matches(provider, model)]
        library = None
        if self._use_library and not any(o.starts is None for o in matching):
            library = self._from_library(provider, model)
        if not matching:
            return library
        periods = (library.periods if library else ()) + tuple(o.period for o in matching)
        last = matching[-1]
        return ModelRates(periods, provider_id=last.provider.lower() if last.provider else None,
                          model_id=last.model, source="override")

    @staticmethod
    def _from_library(provider: str | None, model: str) -> ModelRates | None:
        try:
            from spanledger._genai_prices import rates_from_library

            return rates_from_library(provider, model)
        except Exception:  # noqa: BLE001 - a pricing-data surprise must not break a span
            logger.warning("spanledger: genai-prices failed to price %r/%r", provider, model, exc_info=True)
            return None


_default_book: PriceBook | None = None
_default_lock = threading.Lock()


def default_price_book() -> PriceBook:
    """The process-wide PriceBook: genai-prices plus ``$SPANLEDGER_PRICES_FILE`` overrides.

    A broken override file is logged and ignored here (the library prices
    still apply); load it with :meth:`PriceBook.from_file` to get the error.
    """
    global _default_book
    if _default_book is None:
        with _default_lock:
            if _default_book is None:
                path = os.environ.get(PRICES_FILE_ENV)
                book = PriceBook()
                if path:
                    try:
                        book = PriceBook.from_file(path)
                    except ValueError as exc:
                        logger.error("spanledger: ignoring %s=%s: %s", PRICES_FILE_ENV, path, exc)
                _default_book = book
    return _default_book
