"""Your prices: custom models, local LLMs at zero, negotiated rates; they win over genai-prices.

One format, read by the SDK (``SPANLEDGER_PRICES_FILE``, ``configure(price_book=path)``)
and the collector (``exporters.clickhouse.pricing.overrides_file``); documented in
docs/pricing.md.  A file holds a list of entries under ``models`` (JSON or TOML)::

    [[models]]
    model = "llama3*"            # exact or glob, case-insensitive
    provider = "ollama"          # optional: only for this provider
    input_mtok = "0.50"          # USD per million tokens
    output_mtok = "1.50"
    cache_read_mtok = "0.05"     # optional; default input_mtok
    cache_write_mtok = "0.60"    # optional; default input_mtok
    reasoning_mtok = "2"         # optional; default output_mtok
    request_usd = "0.005"        # optional fee per call; default 0
    starts = "2026-01-01"        # optional: applies to calls from this UTC day on
      [[models.tiers]]           # optional, any number: rates for calls above a number of input tokens
      above_input_tokens = 200000
      input_mtok = "1.00"
      output_mtok = "3.00"
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from spanledger.pricing_rules import BASE_TIER, PricePeriod, RateTier, tier_with_defaults

Number = Decimal | str | float | int
_EPOCH = date(1970, 1, 1)
_RATE_KEYS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok", "reasoning_mtok")
TIER_KEYS = frozenset({"above_input_tokens", *_RATE_KEYS})
ENTRY_KEYS = frozenset({
    "model", "provider", *_RATE_KEYS, "request_usd", "starts", "tiers",
    # one-tier shorthand kept from earlier files: tier_threshold_tokens = above_input_tokens
    "tier_threshold_tokens", "tier_input_mtok", "tier_output_mtok",
})  # fmt: skip
MAX_TIERS = 64
MAX_ENTRIES = 100_000


def _to_decimal(value: Any, what: str, unit: str = "USD per million tokens") -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a decimal number of {unit}, got {value!r}")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise ValueError(f"{what} must be a decimal number of {unit}, got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise ValueError(f"{what} must be a finite, non-negative number, got {value!r}")
    if number > 1_000_000:
        raise ValueError(f"{what} = {value!r} is over 1,000,000 {unit}; check the unit")
    return number


def _optional(entry: Mapping[str, Any], key: str, where: str, unit: str = "USD per million tokens") -> Decimal | None:
    value = entry.get(key)
    return None if value is None else _to_decimal(value, f"{where}: {key}", unit)


def _threshold(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value >= 2**62:
        raise ValueError(f"{where}: above_input_tokens must be a whole number of tokens >= 0, got {value!r}")
    return value


def _start_day(value: Any, where: str) -> int:
    if isinstance(value, date):
        day = value
    else:
        try:
            day = date.fromisoformat(str(value))
        except ValueError:
            raise ValueError(f"{where}: starts must be a date like 2026-01-31 (UTC), got {value!r}") from None
    if day < _EPOCH:
        raise ValueError(f"{where}: starts must be 1970-01-01 or later, got {value!r}")
    return (day - _EPOCH).days


@dataclass(frozen=True)
class ModelPriceOverride:
    """One entry of the override format (see the module docstring); numbers as Decimal, str, int or float."""

    model: str
    input_mtok: Number
    output_mtok: Number
    cache_read_mtok: Number | None = None
    cache_write_mtok: Number | None = None
    provider: str | None = None
    reasoning_mtok: Number | None = None
    request_usd: Number | None = None
    starts: str | date | None = None
    tiers: tuple[Mapping[str, Any], ...] = ()
    tier_threshold_tokens: int | None = None
    tier_input_mtok: Number | None = None
    tier_output_mtok: Number | None = None
    period: PricePeriod = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"a price override needs a model name or glob, got {self.model!r}")
        if self.provider is not None and (not isinstance(self.provider, str) or not self.provider.strip()):
            raise ValueError(f"price override for {self.model!r}: provider must be a non-empty string, got {self.provider!r}")
        where = f"price override for {self.model!r}"
        given = {key: getattr(self, key) for key in _RATE_KEYS}
        base_rates = {key: _optional(given, key, where) for key in _RATE_KEYS}
        for key in ("input_mtok", "output_mtok"):
            if base_rates[key] is None:
                raise ValueError(f"{where}: {key} is required")
        base = tier_with_defaults(BASE_TIER, *(base_rates[key] for key in _RATE_KEYS))
        tiers = [base] + [self._tier(entry, base, base_rates, where) for entry in self._tier_entries(where)]
        thresholds = [tier.above_input_tokens for tier in tiers[1:]]
        if len(set(thresholds)) != len(thresholds):
            raise ValueError(f"{where}: two tiers have the same above_input_tokens {sorted(thresholds)}")
        tiers.sort(key=lambda tier: tier.above_input_tokens)
        request = _optional({"request_usd": self.request_usd}, "request_usd", where, "USD per request")
        period = PricePeriod(tuple(tiers), request if request is not None else Decimal(0),
                             from_day=_start_day(self.starts, where) if self.starts is not None else 0)
        object.__setattr__(self, "period", period)

    def _tier_entries(self, where: str) -> list[Mapping[str, Any]]:
        entries = list(self.tiers) if isinstance(self.tiers, (list, tuple)) else None
        if entries is None:
            raise ValueError(f"{where}: tiers must be a list of tables, got {self.tiers!r}")
        if self.tier_threshold_tokens is not None or self.tier_input_mtok is not None or self.tier_output_mtok is not None:
            if self.tier_threshold_tokens is None:
                raise ValueError(f"{where}: tier_input_mtok / tier_output_mtok need tier_threshold_tokens")
            entries.append({"above_input_tokens": self.tier_threshold_tokens,
                            "input_mtok": self.tier_input_mtok, "output_mtok": self.tier_output_mtok})
        if len(entries) > MAX_TIERS:
            raise ValueError(f"{where}: {len(entries)} tiers; at most {MAX_TIERS} are allowed")
        return entries

    @staticmethod
    def _tier(entry: Any, base: RateTier, given: dict[str, Decimal | None], where: str) -> RateTier:
        """A tier's missing rate is the base's when the base gave it, else the tier's own default."""
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: each tier must be a table with above_input_tokens and rates, got {entry!r}")
        unknown = set(entry) - TIER_KEYS
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)} in a tier; allowed: {sorted(TIER_KEYS)}")
        if "above_input_tokens" not in entry:
            raise ValueError(f"{where}: a tier needs above_input_tokens")
        above = _threshold(entry["above_input_tokens"], where)
        rates = {key: _optional(entry, key, f"{where}, tier above {above}") for key in _RATE_KEYS}
        for key in _RATE_KEYS:
            if rates[key] is None and key in ("input_mtok", "output_mtok"):
                rates[key] = getattr(base, key)
            elif rates[key] is None and given[key] is not None:
                rates[key] = getattr(base, key)
        return tier_with_defaults(above, *(rates[key] for key in _RATE_KEYS))

    def matches(self, provider: str | None, model: str) -> bool:
        if self.provider and (provider or "").lower() != self.provider.lower():
            return False
        pattern = self.model.lower()
        return model == pattern or fnmatch.fnmatchcase(model, pattern)

    @classmethod
    def from_mapping(cls, entry: Any) -> ModelPriceOverride:
        if not isinstance(entry, Mapping):
            raise ValueError(f"each price override must be a table/object, got {entry!r}"[:300])
        unknown = set(entry) - ENTRY_KEYS
        if unknown:
            raise ValueError(f"unknown key(s) {sorted(map(str, unknown))} in price override {dict(entry)!r}; "
                             f"allowed: {sorted(ENTRY_KEYS)}"[:600])
        missing = {"model", "input_mtok", "output_mtok"} - set(entry)
        if missing:
            raise ValueError(f"price override {dict(entry)!r} is missing {sorted(missing)}"[:600])
        values = dict(entry)
        if "tiers" in values:
            if not isinstance(values["tiers"], list):
                raise ValueError(f"price override for {values['model']!r}: tiers must be a list of tables")
            values["tiers"] = tuple(values["tiers"])
        return cls(**values)


def load_overrides_file(path: str | os.PathLike[str]) -> list[ModelPriceOverride]:
    """Read an override file (JSON, or TOML by the ``.toml`` suffix); errors name the file and the entry."""
    file = Path(path)
    try:
        raw_text = file.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read price file {file}: {exc}") from exc
    kind = "TOML" if file.suffix.lower() == ".toml" else "JSON"
    import tomllib  # here, not at the top: only a price file needs it, and ``import spanledger`` should stay light

    try:
        data = tomllib.loads(raw_text.decode()) if kind == "TOML" else json.loads(raw_text)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"price file {file} is not valid {kind}: {exc}"[:800]) from exc
    entries = data.get("models") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ValueError(f"price file {file} must hold a list of models under the key 'models'")
    if len(entries) > MAX_ENTRIES:
        raise ValueError(f"price file {file} has {len(entries)} entries; at most {MAX_ENTRIES} are allowed")
    try:
        return [ModelPriceOverride.from_mapping(entry) for entry in entries]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"price file {file}: {exc}") from exc
