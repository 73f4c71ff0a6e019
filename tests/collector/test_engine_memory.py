"""The embedded engine's memory is bounded by settings the collector derives from its ceiling.

Without them chDB sizes itself for the machine (90% of RAM, 5 GiB caches), so a collector in a
512 MiB container would be killed rather than answer "busy".  These run the real engine."""

from __future__ import annotations

import pytest

from spanledger.collector.app import engine_memory, store_config
from spanledger.collector.config import env_var, load_config
from spanledger.collector.store import Store, StoreConfig
from spanledger.collector.store.backend import INSERT_BYTES_PER_SPAN, EngineMemory, QueryRejected


def _server_settings(store: Store) -> dict[str, int]:
    rows = store.query("SELECT name, value FROM system.server_settings WHERE name IN ('max_server_memory_usage', "
                       "'merges_mutations_memory_usage_soft_limit', 'mark_cache_size', 'primary_index_cache_size', "
                       "'index_mark_cache_size')").result_rows
    return {name: int(value) for name, value in rows}


def test_the_engine_starts_with_the_derived_bounds(tmp_path):
    memory = EngineMemory.for_ceiling(1024, server_mib=640)
    assert (memory.server_mib, memory.budget_mib, memory.query_mib, memory.merge_mib) == (640, 640, 160, 160)
    store = Store(StoreConfig(data_dir=tmp_path, memory=memory))
    try:
        settings = _server_settings(store)
        assert settings["max_server_memory_usage"] == 640 << 20
        assert settings["merges_mutations_memory_usage_soft_limit"] == 160 << 20
        for cache in ("mark_cache_size", "primary_index_cache_size", "index_mark_cache_size"):
            assert settings[cache] == 64 << 20, cache
        assert store.query("SELECT getSetting('max_memory_usage')").result_rows[0][0] == 160 << 20
    finally:
        store.close()


def test_a_read_query_over_its_memory_is_refused_and_the_store_keeps_working(tmp_path):
    store = Store(StoreConfig(data_dir=tmp_path, memory=EngineMemory.for_ceiling(1024)))
    try:
        with pytest.raises(QueryRejected, match="(?i)memory limit"):
            store.query("SELECT length(groupArray(toString(number))) FROM numbers(50000000)")
        assert store.query("SELECT count() FROM numbers(1000)").result_rows == [(1000,)]
        # a tenant's handle is bounded the same way, and cannot lift it
        with pytest.raises(QueryRejected):
            store.query("SELECT 1 SETTINGS max_memory_usage = 0")
    finally:
        store.close()


def test_the_derived_budget_is_not_a_hard_engine_limit(tmp_path):
    """A segment of large values may need more than the budget; a hard limit would never store it."""
    memory = EngineMemory.for_ceiling(1024)
    assert (memory.server_mib, memory.budget_mib) == (0, 512)
    assert "max_server_memory_usage" not in memory.chdb_options()
    store = Store(StoreConfig(data_dir=tmp_path, memory=memory))
    try:
        assert _server_settings(store)["max_server_memory_usage"] > 1 << 30  # the engine's own
        assert _server_settings(store)["mark_cache_size"] == 64 << 20
    finally:
        store.close()


def test_collector_config_derives_engine_memory_from_the_memory_limiter(tmp_path, monkeypatch):
    monkeypatch.delenv(env_var("processors.memory_limiter.limit_mib"), raising=False)  # the shipped default
    default = store_config(load_config(None))
    assert default.memory == EngineMemory.for_ceiling(1024)
    path = tmp_path / "c.yaml"
    path.write_text("processors:\n  memory_limiter:\n    limit_mib: 512\n"
                    "exporters:\n  clickhouse:\n    engine:\n      max_query_memory_mib: 50\n      cache_mib: 16\n")
    memory = engine_memory(load_config(path))
    assert (memory.server_mib, memory.budget_mib, memory.query_mib, memory.merge_mib, memory.cache_mib) == (0, 256, 50, 64, 16)


def test_segments_shrink_until_every_writers_insert_fits():
    memory = EngineMemory.for_ceiling(1024)
    spans = memory.segment_spans(50_000, writers=2)
    room = (memory.budget_mib - memory.merge_mib - memory.query_mib) << 20
    assert spans * INSERT_BYTES_PER_SPAN * 2 <= room < (spans + 1) * INSERT_BYTES_PER_SPAN * 2 + INSERT_BYTES_PER_SPAN * 2
    assert memory.segment_spans(5_000, writers=2) == 5_000  # a smaller batch is kept
    assert EngineMemory().segment_spans(50_000, writers=2) == 50_000  # no engine bound: as configured
    assert EngineMemory.for_ceiling(2048).segment_spans(50_000, writers=1) == 40_049
    assert EngineMemory.for_ceiling(512).segment_spans(50_000, writers=1) == 7_281  # the engine's floor, 256 MiB
