"""Pricing at the collector: Python resolves each model once, ClickHouse prices every span.

genai-prices costs ~140 µs per call, far too much per span at 100k spans/s.
So the collector resolves each distinct (provider, model) a single time with
the same ``spanledger.pricing.PriceBook`` the SDK uses (overrides included)
and writes its whole schedule (periods, tiers, request fee:
``spanledger.pricing_rules``) into ``spanledger_prices``, a Join table that
the ingest pipeline reads with one ``joinGet`` per span.

No backflow: the receiver notes the pairs of each request (``pairs.py``), the
WAL segment carries them, and :meth:`CollectorPricing.publish_pairs` runs
before the segment is loaded, so every span is priced in the one pass that
stores it.  Several collectors may share a server, so the table only ever
gets keyed inserts (the last row of a key wins), never a TRUNCATE.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable
from decimal import Decimal

from ...pricing import ModelRates, PriceBook
from ..store import Store

log = logging.getLogger(__name__)

KNOWN_PRICED, KNOWN_NO_PRICE = 1, 2
PRICES_TABLE = "spanledger_prices"  # the Join the pipeline reads
RECORD_TABLE = "spanledger_price_schedules"  # the same rows, readable: which pairs were seen
LEGACY_PARKING_TABLE = "spanledger_spans_unpriced"
COLUMNS = ["ProviderKey", "ModelKey", "Known", "Schedule", "MatchedModel", "PriceSource", "Resolver"]
_MILLION = Decimal(1_000_000)
_EMPTY_SCHEDULE = ([], [], [], [], [], [], [], [], [], [], [])


def schedule_tuple(rates: ModelRates | None) -> tuple:
    """The Schedule column of spanledger_prices: the rates as per-token arrays (schema/020_price_schedules.sql)."""
    if rates is None:
        return _EMPTY_SCHEDULE
    periods = rates.periods
    rows = [(number, tier) for number, period in enumerate(periods, 1) for tier in period.tiers]
    per_token = lambda name: [getattr(tier, name) / _MILLION for _, tier in rows]  # noqa: E731
    return (
        [p.from_day for p in periods], [p.daily_from_ns for p in periods], [p.daily_to_ns for p in periods],
        [p.request_usd for p in periods],
        [number for number, _ in rows], [tier.above_input_tokens for _, tier in rows],
        per_token("input_mtok"), per_token("output_mtok"), per_token("cache_read_mtok"),
        per_token("cache_write_mtok"), per_token("reasoning_mtok"),
    )


def resolver_id(price_book: PriceBook) -> str:
    """What produced a row: the genai-prices version and a digest of the overrides."""
    from ..._genai_prices import library_version

    digest = hashlib.sha256(repr([vars(o) for o in price_book.overrides]).encode()).hexdigest()[:12]
    return f"genai-prices {library_version()}; overrides {digest}"


class CollectorPricing:
    """Keeps the store's price lookup ahead of the segments being loaded."""

    def __init__(self, store: Store, price_book: PriceBook) -> None:
        self.store = store
        self.price_book = price_book
        self.db = store.options.database
        self.resolver = resolver_id(price_book)
        self._published: set[tuple[str, str]] = set()
        self.inserts = 0  # INSERT statements sent to the store (tests account for every insert with it)
        self._lock = threading.Lock()  # segment writers publish side by side

    def resolve(self, provider_key: str, model_key: str) -> ModelRates | None:
        rates = self.price_book.rates(provider_key or None, model_key)
        if rates is None and provider_key:
            # an instrumentation may name the provider in a way the library does not
            rates = self.price_book.rates(None, model_key)
        return rates

    def refresh(self) -> int:
        """At start-up: re-resolve every pair seen before with today's prices and overrides.

        Every row goes into the Join again (a keyed insert: the last row wins),
        so new genai-prices data or overrides apply to new spans with no schema
        change; the record table gets the rows whose resolution changed.
        Returns the number of changed rows."""
        current = self.store.write_query(
            f"SELECT ProviderKey, ModelKey, argMax(Known, ResolvedAt), argMax(Schedule, ResolvedAt), "
            f"argMax(Resolver, ResolvedAt) FROM {self.db}.{RECORD_TABLE} GROUP BY ProviderKey, ModelKey").result_rows
        rows, changed = [], []
        for provider_key, model_key, known, schedule, resolver in current:
            row = self._row(provider_key, model_key)
            rows.append(row)
            if (row[2], _comparable(row[3]), row[6]) != (known, _comparable(schedule), resolver):
                changed.append(row)
        if changed:
            self.store.insert_rows(RECORD_TABLE, changed, COLUMNS)
            self.inserts += 1
        if rows:
            self.store.insert_rows(PRICES_TABLE, rows, COLUMNS)
            self.inserts += 1
        with self._lock:
            self._published.update((p, m) for p, m, *_ in current)
        return len(changed)

    def publish_pairs(self, pairs: Iterable[tuple[str, str]]) -> int:
        """Make sure every pair has a row before spans of it are loaded; returns the rows written."""
        with self._lock:
            new = sorted(set(pairs) - self._published)
            if not new:
                return 0
            rows = [self._row(p, m) for p, m in new]
            self._insert(rows)
            self._published.update(new)
        for provider_key, model_key, known, _, matched, *_ in rows:
            log.info("priced model %s/%s: %s", provider_key or "-", model_key,
                     matched if known == KNOWN_PRICED else "no price known")
        return len(rows)

    def adopt_parked_spans(self) -> int:
        """Store the spans an older collector parked (its backflow), priced by the new pipeline; then drop the table.

        Runs once, at the first start on schema 020, before any segment is loaded."""
        exists = self.store.write_query("SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}",
                                        {"db": self.db, "t": LEGACY_PARKING_TABLE}).result_rows[0][0]
        if not exists:
            return 0
        parked = self.store.write_query(
            f"SELECT Provider, lower(Model), count(), groupBitXor(cityHash64(TraceId, SpanId)) "
            f"FROM {self.db}.{LEGACY_PARKING_TABLE} GROUP BY Provider, lower(Model)").result_rows
        if parked:
            self.publish_pairs((p, m) for p, m, _, _ in parked)
            token = "spanledger-adopt-parked-" + "-".join(f"{h:x}" for *_, h in sorted(parked))
            # the parked table predates later columns of the spans table (IngestBatch...): name its own
            columns = ", ".join(f"`{name}`" for (name,) in self.store.write_query(
                "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String} ORDER BY position",
                {"db": self.db, "t": LEGACY_PARKING_TABLE}).result_rows)
            self.store.command(
                f"INSERT INTO {self.db}.spanledger_spans_ingest ({columns}) "
                f"SELECT {columns} FROM {self.db}.{LEGACY_PARKING_TABLE}",
                settings={"insert_deduplication_token": token[:200], "insert_deduplicate": 1,
                          "deduplicate_blocks_in_dependent_materialized_views": 1})
        self.store.command(f"DROP TABLE IF EXISTS {self.db}.{LEGACY_PARKING_TABLE}")
        moved = sum(int(n) for _, _, n, _ in parked)
        if moved:
            log.info("stored %d spans an older collector had parked for pricing", moved)
        return moved

    def _row(self, provider_key: str, model_key: str) -> list:
        rates = self.resolve(provider_key, model_key)
        return [provider_key, model_key, KNOWN_PRICED if rates else KNOWN_NO_PRICE, schedule_tuple(rates),
                rates.pricing_model if rates else "", rates.source if rates else "", self.resolver]

    def _insert(self, rows: list[list]) -> None:
        if rows:  # the record first: a pair in the Join is always one the next start re-resolves
            self.store.insert_rows(RECORD_TABLE, rows, COLUMNS)
            self.store.insert_rows(PRICES_TABLE, rows, COLUMNS)
            self.inserts += 2


def _comparable(schedule) -> tuple:
    if isinstance(schedule, dict):  # clickhouse-connect reads a named Tuple back as a dict
        schedule = tuple(schedule.values())
    return tuple(tuple(Decimal(v) if isinstance(v, (Decimal, float)) else v for v in column) for column in schedule)
