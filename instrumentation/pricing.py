"""Prices of LLM tokens, resolved once per model, applied with exact decimals.

Where prices come from: the bundled snapshot of ``genai-prices`` (Pydantic's
maintained pricing data: OpenAI, Anthropic, Google and ~40 more providers, with
cache and tiered prices), plus overrides you give in code or in a file
(custom models, local LLMs at zero, negotiated rates).  Overrides always win.
The snapshot is used offline: spanledger never starts genai-prices' updater.

Why resolve once: ``genai_prices.calc_price`` costs ~140 µs a call, too slow
for a per-span hot path.  :meth:`PriceBook.rates` resolves a (provider, model)
pair to a frozen :class:`ModelRates` on first use and caches it;
:func:`cost_from_rates` is then a handful of Decimal operations.

This module is shared with the collector, so it imports neither OpenTelemetry
nor grpc/chdb.  Prices resolved for a date-dependent entry are those in force
when the pair was first resolved (time-of-day discounts are not modelled).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import threading
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from spanledger.usage import TokenUsage

__all__ = [
    "Cost",
    "ModelPriceOverride",
    "ModelRates",
    "PriceBook",
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


@dataclass(frozen=True, slots=True)
class RateTier:
    """Rates (USD per million tokens) used when a call's input tokens exceed ``threshold_tokens``."""

    threshold_tokens: int
    input_mtok: Decimal
    output_mtok: Decimal
    cache_read_mtok: Decimal
    cache_write_mtok: Decimal


@dataclass(frozen=True, slots=True)
class ModelRates:
    """Resolved USD-per-million-token rates of one model.

    Cache rates follow genai-prices: when an entry has no cache-read (or
    cache-write) price, those tokens are billed at the input rate, so the field
    holds the input rate.  ``tier_*`` hold the first price tier (e.g. Gemini
    2.5 Pro above 200k input tokens); the rare models with several tiers keep
    the others in ``extra_tiers``.  A tier applies to *all* tokens of a call
    whose input tokens (cache included) exceed its threshold.
    """

    input_mtok: Decimal
    output_mtok: Decimal
    cache_read_mtok: Decimal
    cache_write_mtok: Decimal
    provider_id: str | None = None
    model_id: str = ""
    source: Literal["genai-prices", "override"] = "genai-prices"
    tier_threshold_tokens: int | None = None
    tier_input_mtok: Decimal | None = None
    tier_output_mtok: Decimal | None = None
    tier_cache_read_mtok: Decimal | None = None
    tier_cache_write_mtok: Decimal | None = None
    extra_tiers: tuple[RateTier, ...] = ()
    reasoning_mtok: Decimal | None = None
    """Own rate for reasoning tokens; None (almost every model) bills them as output."""

    @property
    def pricing_model(self) -> str:
        """``provider/model`` of the entry that matched, for the span attribute."""
        return f"{self.provider_id}/{self.model_id}" if self.provider_id else self.model_id

    def tiers(self) -> tuple[RateTier, ...]:
        """All tiers, lowest threshold first."""
        if self.tier_threshold_tokens is None:
            return self.extra_tiers
        first = RateTier(
            self.tier_threshold_tokens,
            self.tier_input_mtok if self.tier_input_mtok is not None else self.input_mtok,
            self.tier_output_mtok if self.tier_output_mtok is not None else self.output_mtok,
            self.tier_cache_read_mtok if self.tier_cache_read_mtok is not None else self.cache_read_mtok,
            self.tier_cache_write_mtok if self.tier_cache_write_mtok is not None else self.cache_write_mtok,
        )
        return (first, *self.extra_tiers)


@dataclass(frozen=True, slots=True)
class Cost:
    """The USD cost of one call, exact; round only for display."""

    input_usd: Decimal
    output_usd: Decimal
    total_usd: Decimal


def cost_from_rates(rates: ModelRates, usage: TokenUsage) -> Cost:
    """Price ``usage`` with ``rates``: exact Decimal arithmetic, no double counting.

    Cache-read tokens at the cache-read rate, cache-creation tokens at the
    cache-write rate, the remaining input tokens at the input rate; output
    tokens (reasoning included) at the output rate.
    """
    input_rate, output_rate = rates.input_mtok, rates.output_mtok
    read_rate, write_rate = rates.cache_read_mtok, rates.cache_write_mtok
    if rates.tier_threshold_tokens is not None or rates.extra_tiers:
        for tier in reversed(rates.tiers()):
            if usage.input_tokens > tier.threshold_tokens:
                input_rate, output_rate = tier.input_mtok, tier.output_mtok
                read_rate, write_rate = tier.cache_read_mtok, tier.cache_write_mtok
                break
    cache_read, cache_write = usage.cache_read_tokens, usage.cache_creation_tokens
    uncached = usage.input_tokens - cache_read - cache_write
    if uncached < 0:  # inconsistent usage: price what we can, never a negative amount
        uncached = 0
    input_usd = (input_rate * uncached + read_rate * cache_read + write_rate * cache_write).scaleb(-6)
    if rates.reasoning_mtok is None:
        output_usd = (output_rate * usage.output_tokens).scaleb(-6)
    else:
        reasoning = min(usage.reasoning_tokens, usage.output_tokens)
        output_usd = (output_rate * (usage.output_tokens - reasoning) + rates.reasoning_mtok * reasoning).scaleb(-6)
    return Cost(input_usd, output_usd, input_usd + output_usd)


def _to_decimal(value: Any, what: str) -> Decimal:
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise ValueError(f"{what} must be a decimal number of USD per million tokens, got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise ValueError(f"{what} must be a finite, non-negative number, got {value!r}")
    return number


@dataclass(frozen=True)
class ModelPriceOverride:
    """Your price for a model: wins over genai-prices.

    ``model`` is matched case-insensitively, exactly or as a glob (``"llama-*"``);
    ``provider`` (optional) restricts the override to one provider.  Rates are
    USD per million tokens; cache rates default to the input rate.  An optional
    tier (``tier_threshold_tokens`` + tier rates) applies above that many
    input tokens.  Numbers may be given as Decimal, str, int or float.
    """

    model: str
    input_mtok: Decimal | str | float | int
    output_mtok: Decimal | str | float | int
    cache_read_mtok: Decimal | str | float | int | None = None
    cache_write_mtok: Decimal | str | float | int | None = None
    provider: str | None = None
    tier_threshold_tokens: int | None = None
    tier_input_mtok: Decimal | str | float | int | None = None
    tier_output_mtok: Decimal | str | float | int | None = None
    _rates: ModelRates = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"a price override needs a model name or glob, got {self.model!r}")
        where = f"price override for {self.model!r}"
        input_rate = _to_decimal(self.input_mtok, f"{where}: input_mtok")
        tier_input = (
            _to_decimal(self.tier_input_mtok, f"{where}: tier_input_mtok") if self.tier_input_mtok is not None else None
        )
        if self.tier_threshold_tokens is not None and (
            not isinstance(self.tier_threshold_tokens, int) or self.tier_threshold_tokens < 0
        ):
            raise ValueError(f"{where}: tier_threshold_tokens must be a non-negative int")
        rates = ModelRates(
            input_mtok=input_rate,
            output_mtok=_to_decimal(self.output_mtok, f"{where}: output_mtok"),
            cache_read_mtok=_to_decimal(self.cache_read_mtok, f"{where}: cache_read_mtok")
            if self.cache_read_mtok is not None
            else input_rate,
            cache_write_mtok=_to_decimal(self.cache_write_mtok, f"{where}: cache_write_mtok")
            if self.cache_write_mtok is not None
            else input_rate,
            provider_id=self.provider.lower() if self.provider else None,
            model_id=self.model,
            source="override",
            tier_threshold_tokens=self.tier_threshold_tokens,
            tier_input_mtok=tier_input,
            tier_output_mtok=_to_decimal(self.tier_output_mtok, f"{where}: tier_output_mtok")
            if self.tier_output_mtok is not None
            else None,
            tier_cache_read_mtok=tier_input if self.cache_read_mtok is None else None,
            tier_cache_write_mtok=tier_input if self.cache_write_mtok is None else None,
        )
        object.__setattr__(self, "_rates", rates)

    def matches(self, provider: str | None, model: str) -> bool:
        if self.provider and (provider or "").lower() != self.provider.lower():
            return False
        pattern = self.model.lower()
        return model == pattern or fnmatch.fnmatchcase(model, pattern)

    @property
    def rates(self) -> ModelRates:
        return self._rates

    @classmethod
    def from_mapping(cls, entry: Mapping[str, Any]) -> ModelPriceOverride:
        known = {
            "model", "provider", "input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok",
            "tier_threshold_tokens", "tier_input_mtok", "tier_output_mtok",
        }  # fmt: skip
        unknown = set(entry) - known
        if unknown:
            raise ValueError(f"unknown key(s) {sorted(unknown)} in price override {dict(entry)!r}; allowed: {sorted(known)}")
        missing = {"model", "input_mtok", "output_mtok"} - set(entry)
        if missing:
            raise ValueError(f"price override {dict(entry)!r} is missing {sorted(missing)}")
        return cls(**dict(entry))


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
        """Load overrides from JSON or TOML (chosen by the ``.toml`` suffix).

        Both hold a list of entries under ``models``; each entry has the
        fields of :class:`ModelPriceOverride` (see docs/instrumentation.md).
        """
        file = Path(path)
        try:
            raw_text = file.read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read price file {file}: {exc}") from exc
        try:
            data = tomllib.loads(raw_text.decode()) if file.suffix.lower() == ".toml" else json.loads(raw_text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"price file {file} is not valid {'TOML' if file.suffix == '.toml' else 'JSON'}: {exc}") from exc
        entries = data.get("models") if isinstance(data, dict) else data
        if not isinstance(entries, list):
            raise ValueError(f"price file {file} must hold a list of models under the key 'models'")
        try:
            overrides = [ModelPriceOverride.from_mapping(entry) for entry in entries]
        except (TypeError, ValueError) as exc:
            raise ValueError(f"price file {file}: {exc}") from exc
        return cls(overrides, use_library=use_library)

    def add_override(self, override: ModelPriceOverride) -> None:
        """Add an override; later overrides win over earlier ones."""
        with self._lock:
            self._overrides.append(override)
            self._cache.clear()

    @property
    def overrides(self) -> tuple[ModelPriceOverride, ...]:
        return tuple(self._overrides)

    def rates(self, provider: str | None, model: str) -> ModelRates | None:
        """The rates of ``model`` (None when nobody prices it); cached per pair."""
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

    def cost(self, provider: str | None, model: str, usage: TokenUsage) -> Cost | None:
        """Exact cost of ``usage`` on ``model``, or None for a model without a price."""
        rates = self.rates(provider, model)
        return None if rates is None else cost_from_rates(rates, usage)

    def _resolve(self, provider: str | None, model: str) -> ModelRates | None:
        for override in reversed(self._overrides):
            if override.matches(provider, model):
                return override.rates
        if not self._use_library:
            return None
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
