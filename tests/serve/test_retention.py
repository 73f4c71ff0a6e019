"""Retention by tier: TTLs from configuration (schema/030_retention.sql), checked tiers, captured content cut."""

from __future__ import annotations

import time

import pytest
from collector_support import rows, wait_stored

from spanledger.collector.config import ConfigError, load_config
from spanledger.collector.app import store_config
from spanledger.collector.store import SchemaOptions, Store, StoreConfig, migrate
from spanledger.collector.store.retention import purge_content, retention_days


def _days(text: str) -> dict:
    return retention_days(load_config(text=text).get("exporters.clickhouse"))


def test_tiers_default_to_forever_and_spans_fall_back_to_ttl():
    assert _days("") == {"spans": 0, "content": 0, "rollups": 0}
    assert _days("exporters: {clickhouse: {ttl: 720h}}")["spans"] == 30
    assert _days("exporters: {clickhouse: {retention: {spans: 30d, content: 7d, rollups: 400d}}}") == \
        {"spans": 30, "content": 7, "rollups": 400}


@pytest.mark.parametrize("retention, words", [
    ("{spans: 30d, rollups: 7d}", "rollups (7d) must be at least retention.spans"),
    ("{rollups: 30d}", "must be at least retention.spans (forever)"),
    ("{spans: 7d, content: 30d}", "cannot outlive"),
    ("{spans: 36h}", "whole number of days"),
])
def test_bad_tiers_stop_start_up_with_the_key(retention, words):
    config = load_config(text=f"exporters: {{clickhouse: {{retention: {retention}}}}}")
    with pytest.raises(ConfigError) as err:
        store_config(config)
    assert words in str(err.value) and "retention" in str(err.value)


def _ttl(store, table):
    return store.query("SELECT engine_full FROM system.tables WHERE database = 'spanledger' AND name = {t:String}",
                       {"t": table}).result_rows[0][0]


def test_changed_retention_reapplies_only_the_ttls(tmp_path):
    store = Store(StoreConfig(data_dir=tmp_path, options=SchemaOptions()))
    try:
        migrate(store.writer, store.options)
        assert "WHERE 0" in _ttl(store, "otel_traces")  # forever: a TTL that deletes nothing
        store.options = SchemaOptions(retention_spans_days=30, retention_rollups_days=400)
        assert migrate(store.writer, store.options).applied == ("030_retention.sql", "071_trace_rows_retention.sql")
        assert "toIntervalDay(30)" in _ttl(store, "otel_traces") and "WHERE 0" not in _ttl(store, "otel_traces")
        assert "toIntervalDay(30)" in _ttl(store, "otel_traces_trace_id_ts")
        assert "toIntervalDay(30)" in _ttl(store, "otel_traces_trace_rows")  # a trace's summary goes with its spans
        assert "toIntervalDay(400)" in _ttl(store, "spanledger_usage_hourly")
        assert "toIntervalDay(400)" in _ttl(store, "spanledger_cost_daily")
        store.options = SchemaOptions()
        migrate(store.writer, store.options)
        assert "WHERE 0" in _ttl(store, "otel_traces")
        assert "WHERE 0" in _ttl(store, "otel_traces_trace_rows")
    finally:
        store.close()


def test_captured_content_is_cut_from_old_spans_only(collector):
    from api_support import call

    old = {"type": "llm_call", "start_time": time.time() - 10 * 86400,
           "attributes": {"gen_ai.input.messages": '[{"role": "user"}]', "keep.me": "yes"}}
    new = dict(old, start_time=time.time() - 60)
    assert call(collector.api.url, "POST", "/v1/activities/batch", [old, new])[1]["accepted"] == 2
    wait_stored(collector, 2)
    purge_content(collector.store(), 7)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = rows(collector, "SELECT Timestamp < now() - INTERVAL 7 DAY AS old, SpanAttributes AS a "
                              "FROM spanledger.otel_traces ORDER BY old")
        if "gen_ai.input.messages" not in got[1]["a"]:
            break
        time.sleep(0.2)
    assert "gen_ai.input.messages" in got[0]["a"] and "gen_ai.input.messages" not in got[1]["a"]
    assert got[1]["a"]["keep.me"] == "yes"
