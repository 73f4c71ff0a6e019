"""Pricing at the collector: Python resolves each model once, ClickHouse prices every span.

genai-prices costs ~140 µs per call, far too much per span at 100k spans/s.
So the collector resolves each distinct (provider, model) a single time with
the same ``spanledger.pricing.PriceBook`` the instrumentation uses (overrides
included) and writes the per-token rates into ``spanledger_price_lookup``, a
Join-engine table that the ingest pipeline reads with ``joinGet``.

A span whose model was never resolved is parked in
``spanledger_spans_unpriced``; ``resolve_staged`` prices those models and
pushes the parked spans back through the pipeline.  That happens once per new
model, not per span.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from decimal import Decimal

from ...pricing import ModelRates, PriceBook
from ..store import Store

log = logging.getLogger(__name__)

_MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)
KNOWN_PRICED, KNOWN_NO_PRICE = 1, 2

LOOKUP_COLUMNS = [
    "ProviderKey", "ModelKey", "Known", "InputRate", "OutputRate", "CacheReadRate", "CacheWriteRate",
    "TierThreshold", "TierInputRate", "TierOutputRate", "TierCacheReadRate", "TierCacheWriteRate",
]


def _per_token(mtok: Decimal | None, fallback: Decimal = _ZERO) -> Decimal:
    return (mtok if mtok is not None else fallback) / _MILLION


def lookup_row(provider_key: str, model_key: str, rates: ModelRates | None) -> list:
    """One row of spanledger_price_lookup: per-token rates, or a 'no price known' marker."""
    if rates is None:
        return [provider_key, model_key, KNOWN_NO_PRICE] + [_ZERO] * 4 + [0] + [_ZERO] * 4
    tier = rates.tier_threshold_tokens or 0
    return [
        provider_key, model_key, KNOWN_PRICED,
        _per_token(rates.input_mtok), _per_token(rates.output_mtok),
        _per_token(rates.cache_read_mtok), _per_token(rates.cache_write_mtok),
        tier,
        _per_token(rates.tier_input_mtok, rates.input_mtok),
        _per_token(rates.tier_output_mtok, rates.output_mtok),
        _per_token(rates.tier_cache_read_mtok, rates.cache_read_mtok),
        _per_token(rates.tier_cache_write_mtok, rates.cache_write_mtok),
    ]


class CollectorPricing:
    """Keeps the store's price lookup in step with the configured price book."""

    def __init__(self, store: Store, price_book: PriceBook, gate=None) -> None:
        self.store = store
        self.price_book = price_book
        self.db = store.options.database
        self._repricing = threading.Lock()  # several segment writers call resolve_staged
        # held exclusively while parked spans move: a segment loading meanwhile could
        # park more spans, which the TRUNCATE below would then take with it
        self.gate = gate

    def resolve(self, provider_key: str, model_key: str) -> ModelRates | None:
        rates = self.price_book.rates(provider_key or None, model_key)
        if rates is None and provider_key:
            # an instrumentation may name the provider in a way the library does not
            rates = self.price_book.rates(None, model_key)
        return rates

    def rebuild_lookup(self) -> int:
        """At start-up: re-resolve every model seen before with today's prices and overrides."""
        keys = self.store.write_query(
            f"SELECT DISTINCT ProviderKey, ModelKey FROM {self.db}.spanledger_model_prices"
        ).result_rows
        self.store.command(f"TRUNCATE TABLE {self.db}.spanledger_price_lookup")
        if keys:
            self._publish([(p, m, self.resolve(p, m)) for p, m in keys])
        return len(keys)

    def resolve_staged(self) -> int:
        """Price models seen for the first time and re-ingest their parked spans; returns spans moved."""
        if not self._repricing.acquire(blocking=False):
            return 0  # another writer is at it; what it misses, the next call picks up
        try:
            return self._resolve_staged()
        finally:
            self._repricing.release()

    def _staged(self) -> list:
        return self.store.write_query(
            f"SELECT Provider, lower(Model), count(), groupBitXor(cityHash64(TraceId, SpanId)) "
            f"FROM {self.db}.spanledger_spans_unpriced GROUP BY Provider, lower(Model)"
        ).result_rows

    def _resolve_staged(self) -> int:
        if not self._staged():
            return 0
        with self.gate.exclusive() if self.gate else contextlib.nullcontext():
            # under the gate no segment can park more spans: what is read now is all that moves
            staged = self._staged()
            resolved = [(p, m, self.resolve(p, m)) for p, m, _, _ in staged]
            self._publish(resolved)
            for p, m, rates in resolved:
                log.info("priced model %s/%s: %s", p or "-", m, rates.pricing_model if rates else "no price known")
            moved = sum(int(n) for _, _, n, _ in staged)
            token = "spanledger-reprice-" + "-".join(f"{h:x}" for *_, h in sorted(staged))
            self.store.command(
                f"INSERT INTO {self.db}.spanledger_spans_ingest SELECT * FROM {self.db}.spanledger_spans_unpriced",
                settings={"insert_deduplication_token": token[:200], "insert_deduplicate": 1,
                          "deduplicate_blocks_in_dependent_materialized_views": 1},
            )
            self.store.command(f"TRUNCATE TABLE {self.db}.spanledger_spans_unpriced")
        return moved

    def _publish(self, resolved: list[tuple[str, str, ModelRates | None]]) -> None:
        self.store.insert_rows("spanledger_price_lookup", [lookup_row(p, m, r) for p, m, r in resolved], LOOKUP_COLUMNS)
        self.store.insert_rows(
            "spanledger_model_prices",
            [lookup_row(p, m, r) + [r.pricing_model if r else "", r.source if r else ""] for p, m, r in resolved],
            LOOKUP_COLUMNS + ["MatchedModel", "PriceSource"],
        )
