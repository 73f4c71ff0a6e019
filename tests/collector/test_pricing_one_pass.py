"""Every span priced in the one pass that stores it: new models under load, recovered segments,
overrides, unknown models, several collectors on one lookup, and an upgrade with parked spans."""

from __future__ import annotations

import json
import threading
import time
import warnings
from datetime import UTC, datetime
from decimal import Decimal

from collector_support import FAST_BATCH, RawClient, make_span, new_request, rows, wait_stored

from spanledger.collector.pricing.lookup import CollectorPricing
from spanledger.collector.wal import WriteAheadLog, encode_record
from spanledger.pricing import PriceBook, TokenUsage

USAGE = {"gen_ai.usage.input_tokens": 12_000, "gen_ai.usage.output_tokens": 900,
         "gen_ai.usage.cache_read.input_tokens": 4_000, "gen_ai.usage.reasoning.output_tokens": 300}


def _genai(model: str, provider: str, at: datetime, inp=12_000, out=900, read=4_000, write=0, reasoning=300) -> Decimal:
    from genai_prices import Usage, calc_price

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return calc_price(Usage(input_tokens=inp, output_tokens=out, cache_read_tokens=read, cache_write_tokens=write,
                                output_reasoning_tokens=reasoning), model, provider_id=provider,
                          genai_request_timestamp=at).total_price


def _request(names_and_models, start_ns=None) -> bytes:
    request, scope = new_request("one-pass")
    for name, provider, model in names_and_models:
        make_span(scope, name, start_ns=start_ns, attributes={"gen_ai.provider.name": provider, "gen_ai.request.model": model,
                                                             **USAGE})
    return request.SerializeToString()


def _insert_queries(collector) -> int:
    rows_ = collector.store().query("SELECT value FROM system.events WHERE event = 'InsertQuery'").result_rows
    return int(rows_[0][0]) if rows_ else 0


def test_a_new_model_under_load_is_priced_in_the_one_pass(collector, raw_client) -> None:
    raw_client.export(_request([("warm", "openai", "gpt-4o")]))
    wait_stored(collector, 1)
    inserts_before, segments_before = _insert_queries(collector), collector.stats.segments_stored
    price_inserts_before = collector.pricing.inserts
    stop, sent, errors = threading.Event(), [0], []

    def steady_load() -> None:
        client = RawClient(collector.server.address)
        try:
            while not stop.is_set():
                client.export(_request([(f"load-{sent[0]}-{i}", "openai", "gpt-4o") for i in range(200)]))
                sent[0] += 1
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            client.close()

    loader = threading.Thread(target=steady_load)
    loader.start()
    time.sleep(0.5)
    # models this collector has never seen, in the middle of the load
    raw_client.export(_request([(f"new-{i}", "anthropic", "claude-3-5-haiku") for i in range(50)]
                               + [(f"new-o-{i}", "openai", "o3") for i in range(50)]))
    time.sleep(0.5)
    stop.set()
    loader.join(30)
    assert not errors
    total = 1 + sent[0] * 200 + 100
    wait_stored(collector, total)
    got = rows(collector, "SELECT Model, count() AS n, uniqExact(SpanId) AS u, min(CostSource) AS lo, max(CostSource) AS hi, "
                          "any(TotalCost) AS cost, any(Timestamp) AS ts FROM spanledger.otel_traces GROUP BY Model ORDER BY Model")
    by_model = {r["Model"]: r for r in got}
    assert sum(r["n"] for r in got) == total and all(r["n"] == r["u"] for r in got)  # stored once each
    for model, provider in (("claude-3-5-haiku", "anthropic"), ("o3", "openai")):
        r = by_model[model]
        assert r["n"] == 50 and r["lo"] == r["hi"] == "computed"
        assert abs(r["cost"] - _genai(model, provider, r["ts"].replace(tzinfo=UTC))) <= Decimal("1e-9")
    # every INSERT the store ran is a segment load or a price publish: nothing was re-inserted
    segments = collector.stats.segments_stored - segments_before
    assert _insert_queries(collector) - inserts_before == segments + collector.pricing.inserts - price_inserts_before
    assert "spanledger_spans_unpriced" not in {r["name"] for r in rows(collector, "SELECT name FROM system.tables "
                                                                      "WHERE database = 'spanledger'")}
    mvs = rows(collector, "SELECT name FROM system.tables WHERE database = 'spanledger' AND engine = 'MaterializedView' "
                          "AND has(dependencies_table, 'spanledger_spans_ingest') = 0 AND as_select LIKE '%spans_ingest%'")
    assert [r["name"] for r in mvs] == ["spanledger_store_mv"]  # the one view that reads flattened spans


def test_unknown_model_is_marked_in_the_same_pass(collector, raw_client) -> None:
    raw_client.export(_request([("unknown", "acme", "acme-house-model-9"), ("known", "openai", "gpt-4o-mini")]))
    wait_stored(collector, 2)
    got = {r["SpanName"]: r for r in rows(collector, "SELECT SpanName, CostSource, TotalCost FROM spanledger.otel_traces")}
    assert got["unknown"]["CostSource"] == "unknown_model" and got["unknown"]["TotalCost"] == 0
    assert got["known"]["CostSource"] == "computed" and got["known"]["TotalCost"] > 0


def test_recovered_segments_are_rescanned_for_their_models(tmp_path, collector_factory) -> None:
    data_dir = tmp_path / "data"
    # a segment written before a crash: on disk, its pairs not known to the next process
    wal = WriteAheadLog(data_dir / "wal", segment_max_age_s=0.05)
    payload = _request([("recovered", "google", "gemini-2.5-pro")])
    wal.append(encode_record(payload, ""), 1)
    wal.close()
    collector = collector_factory(data_dir=data_dir)
    wait_stored(collector, 1)
    got = rows(collector, "SELECT CostSource, TotalCost, Timestamp FROM spanledger.otel_traces")[0]
    assert got["CostSource"] == "computed"
    assert abs(got["TotalCost"] - _genai("gemini-2.5-pro", "google", got["Timestamp"].replace(tzinfo=UTC))) <= Decimal("1e-9")


def test_overrides_file_prices_the_same_on_both_sides(tmp_path, collector_factory) -> None:
    prices = tmp_path / "prices.json"
    # a house model, written as its (made-up) price sheet says: $0.40 / $1.60 per MTok, reads $0.04,
    # $2.00 / $6.00 above 100k input tokens, and a $0.002 fee per call; a new price from 2026-01-01
    prices.write_text(json.dumps({"models": [
        {"model": "house-*", "input_mtok": "0.40", "output_mtok": "1.60", "cache_read_mtok": "0.04", "request_usd": "0.002",
         "tiers": [{"above_input_tokens": 100_000, "input_mtok": "2", "output_mtok": "6"}]},
        {"model": "house-*", "input_mtok": "0.30", "output_mtok": "1.20", "starts": "2026-01-01"},
    ]}))
    collector = collector_factory(FAST_BATCH + f"exporters:\n  clickhouse:\n    pricing:\n      overrides_file: {prices}\n")
    client = RawClient(collector.server.address)
    old = int(datetime(2025, 6, 1, 12, tzinfo=UTC).timestamp() * 1e9)
    new = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1e9)
    request, scope = new_request("overrides")
    for name, start, inp, read in (("small-2025", old, 10_000, 2_000), ("big-2025", old, 150_000, 50_000),
                                   ("small-2026", new, 10_000, 2_000)):
        make_span(scope, name, start_ns=start, attributes={"gen_ai.request.model": "house-llm", "gen_ai.usage.input_tokens": inp,
                                                           "gen_ai.usage.output_tokens": 1_000,
                                                           "gen_ai.usage.cache_read.input_tokens": read})
    client.export(request.SerializeToString())
    client.close()
    wait_stored(collector, 3)
    stored = {r["SpanName"]: r["TotalCost"] for r in rows(collector, "SELECT SpanName, TotalCost FROM spanledger.otel_traces")}
    expected = {  # by hand from the sheet above
        "small-2025": Decimal("8000") * Decimal("0.40") / 10**6 + Decimal("2000") * Decimal("0.04") / 10**6
        + Decimal("1000") * Decimal("1.60") / 10**6 + Decimal("0.002"),
        # above the tier: every token at the tier's rates; cache reads keep their own given rate
        "big-2025": Decimal("100000") * 2 / 10**6 + Decimal("50000") * Decimal("0.04") / 10**6 + Decimal("1000") * 6 / 10**6
        + Decimal("0.002"),
        # the 2026 entry: cache reads default to its input rate, no fee
        "small-2026": Decimal("10000") * Decimal("0.30") / 10**6 + Decimal("1000") * Decimal("1.20") / 10**6,
    }
    assert stored == expected
    book = PriceBook.from_file(prices)
    for name, start, usage in (("small-2025", old, TokenUsage(10_000, 1_000, 2_000)), ("big-2025", old, TokenUsage(150_000, 1_000, 50_000)),
                               ("small-2026", new, TokenUsage(10_000, 1_000, 2_000))):
        assert book.cost(None, "house-llm", usage, start).total_usd == expected[name]


def test_several_collectors_on_one_lookup_never_remove_each_others_prices(collector, raw_client) -> None:
    store = collector.store()
    # a second collector on the same server: its own PriceBook and process state, the shared tables
    other = CollectorPricing(store, PriceBook())
    other.publish_pairs({("openai", "gpt-4.1")})
    raw_client.export(_request([("first", "openai", "gpt-4o")]))
    wait_stored(collector, 1)
    # the other one restarts (re-resolving everything) while this one keeps storing
    assert other.refresh() == 0  # same prices and overrides: no row changed
    raw_client.export(_request([("second", "openai", "gpt-4o"), ("third", "openai", "gpt-4.1")]))
    wait_stored(collector, 3)
    assert {r["CostSource"] for r in rows(collector, "SELECT CostSource FROM spanledger.otel_traces")} == {"computed"}
    known = store.query("SELECT joinGet('spanledger.spanledger_prices', 'Known', 'openai', 'gpt-4o'), "
                        "joinGet('spanledger.spanledger_prices', 'Known', 'openai', 'gpt-4.1')").result_rows[0]
    assert known == (1, 1)


def test_spans_an_older_collector_parked_are_stored_priced_at_upgrade(collector) -> None:
    store = collector.store()
    store.command("CREATE TABLE spanledger.spanledger_spans_unpriced AS spanledger.otel_traces ENGINE = MergeTree "
                  "ORDER BY Timestamp")
    store.command("INSERT INTO spanledger.spanledger_spans_unpriced (Timestamp, TraceId, SpanId, SpanName, Provider, Model, "
                  "InputTokens, OutputTokens, CostSource) VALUES (now64(9), 'ab', 'cd', 'parked', 'openai', 'gpt-4o', "
                  "1000, 500, 'pending')")
    assert collector.pricing.adopt_parked_spans() == 1
    got = rows(collector, "SELECT SpanName, CostSource, TotalCost FROM spanledger.otel_traces")
    # 1000 x $2.50/M + 500 x $10/M (OpenAI's published gpt-4o price; changes with genai-prices data)
    assert got == [{"SpanName": "parked", "CostSource": "computed", "TotalCost": Decimal("0.0075")}]
    assert collector.pricing.adopt_parked_spans() == 0  # the table is gone


def test_new_prices_at_restart_apply_to_new_spans_and_never_rewrite_stored_ones(tmp_path, collector_factory) -> None:
    data_dir = tmp_path / "data"
    first = collector_factory(data_dir=data_dir)
    client = RawClient(first.server.address)
    client.export(_request([("before", "openai", "gpt-4o")]))
    client.close()
    wait_stored(first, 1)
    stored_before = rows(first, "SELECT TotalCost FROM spanledger.otel_traces")[0]["TotalCost"]
    first.stop()
    # new price data (here: an override; a `pip install -U genai-prices` takes the same path)
    prices = tmp_path / "prices.toml"
    prices.write_text('[[models]]\nmodel = "gpt-4o"\ninput_mtok = "1"\noutput_mtok = "2"\n')
    again = collector_factory(FAST_BATCH + f"exporters:\n  clickhouse:\n    pricing:\n      overrides_file: {prices}\n",
                              data_dir=data_dir)
    assert again.pricing.refresh() == 0  # start-up already re-resolved it; a second pass finds nothing new
    client = RawClient(again.server.address)
    client.export(_request([("after", "openai", "gpt-4o")]))
    client.close()
    wait_stored(again, 2)
    got = {r["SpanName"]: r["TotalCost"] for r in rows(again, "SELECT SpanName, TotalCost FROM spanledger.otel_traces")}
    assert got["before"] == stored_before  # never rewritten
    # 8,000 uncached + 4,000 cache reads at $1/M (cache defaults to input) + 900 out at $2/M
    assert got["after"] == Decimal("0.0138")
