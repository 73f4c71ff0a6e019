"""Query latency at 1M / 10M spans: the questions users ask most.

Fill: spans go through the real schema.  The first (up to) 1M spans take the
store's own load path (WAL-format segments of bench.payloads requests, their
timestamps spread over the last 30 days, decoded/normalized/priced by the
ingest pipeline); larger stores are made by re-inserting those rows into
``otel_traces`` with new trace ids (``INSERT ... SELECT``), which still feeds
the trace-id lookup table and the rollups through their materialized views.

Caches: every repetition binds different parameters (another trace id, time
bounds moved by a few ms), so the engine's query-condition cache and query
result cache can never answer; on the direct engine they are also switched
off (use_query_condition_cache=0, use_query_cache=0, use_uncompressed_cache=0).
The mark cache and the OS page cache stay warm, as on a running collector.
The API runs go through the collector's POST /v1/sql (read-only: settings
cannot be changed there, hence the moving parameters).
"""

from __future__ import annotations

import random
import shutil
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

DB = "spanledger"
NO_CACHE = {"use_query_condition_cache": 0, "use_query_cache": 0, "use_uncompressed_cache": 0}

QUERIES = {
    "one_trace_tree": (
        f"WITH (SELECT (min(Start), max(End)) FROM {DB}.otel_traces_trace_id_ts WHERE TraceId = {{tid:String}}) AS b "
        f"SELECT SpanId, ParentSpanId, Timestamp, SpanName, Duration, StatusCode, AgentName, Model, "
        f"InputTokens, OutputTokens, TotalCost FROM {DB}.otel_traces "
        f"WHERE TraceId = {{tid:String}} AND Timestamp >= b.1 AND Timestamp <= b.2 + INTERVAL 1 SECOND ORDER BY Timestamp",
        "target <= 50 ms at 10M"),
    "spend_by_model_agent_day_raw": (
        f"SELECT toDate(Timestamp) AS day, Model, AgentName, count() AS calls, sum(InputTokens), sum(OutputTokens), "
        f"sum(TotalCost) AS cost FROM {DB}.otel_traces WHERE Timestamp >= {{start:DateTime64(3)}} AND Model != '' "
        f"GROUP BY day, Model, AgentName ORDER BY day, cost DESC",
        "raw spans over 30 days: target <= 500 ms at 10M"),
    "spend_by_model_agent_day_rollup": (
        f"SELECT toDate(Hour) AS day, Model, AgentName, sum(LlmCalls), sum(InputTokens), sum(OutputTokens), "
        f"sum(TotalCost) AS cost FROM {DB}.spanledger_usage_hourly WHERE Hour >= {{start:DateTime64(3)}} AND Model != '' "
        f"GROUP BY day, Model, AgentName ORDER BY day, cost DESC",
        "from the hourly rollup: target <= 10 ms at 10M"),
    "spend_by_model_day_rollup": (
        f"SELECT Day, Model, sum(TotalCost) AS cost, sum(InputTokens), sum(OutputTokens) FROM {DB}.spanledger_cost_daily "
        f"WHERE Day >= toDate({{start:DateTime64(3)}}) GROUP BY Day, Model ORDER BY Day, cost DESC",
        "from the daily rollup: target <= 10 ms at 10M"),
    "duration_p50_p95_by_agent": (
        f"SELECT AgentName, count(), quantile(0.5)(Duration) / 1e6 AS p50_ms, quantile(0.95)(Duration) / 1e6 AS p95_ms "
        f"FROM {DB}.otel_traces WHERE Timestamp >= {{start:DateTime64(3)}} AND Operation = 'invoke_agent' "
        f"GROUP BY AgentName ORDER BY p95_ms DESC",
        "agent runs over 30 days: target <= 500 ms at 10M"),
    "costliest_traces_last_day": (
        f"SELECT TraceId, sum(TotalCost) AS cost, count() AS spans, min(Timestamp) AS started, any(ServiceName) "
        f"FROM {DB}.otel_traces WHERE Timestamp >= {{day_start:DateTime64(3)}} GROUP BY TraceId ORDER BY cost DESC LIMIT 10",
        "last 24 h: target <= 500 ms at 10M"),
}


def _params(name: str, i: int, trace_ids: list[str], now: datetime) -> dict:
    jitter = timedelta(milliseconds=i)  # a new condition every repetition: no cache can answer
    return {"tid": trace_ids[i % len(trace_ids)], "start": (now - timedelta(days=30) + jitter).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            "day_start": (now - timedelta(days=1) + jitter).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]}


def _used(sql: str, params: dict) -> dict:
    return {k: v for k, v in params.items() if "{" + k + ":" in sql}


def build_tree(rows: list[list]) -> int:
    """Parent links -> children lists; returns the depth (what a UI does with the answer)."""
    children: dict[str, list[str]] = {}
    for r in rows:
        children.setdefault(r[1], []).append(r[0])

    def depth(sid: str) -> int:
        return 1 + max((depth(c) for c in children.get(sid, [])), default=0)
    return max((depth(r[0]) for r in rows if r[1] == ""), default=0)


def _stats(samples: list[float]) -> dict:
    s = sorted(samples)
    return {"p50_ms": round(statistics.median(s), 2), "p95_ms": round(s[min(len(s) - 1, int(round(len(s) * 0.95)) - 1)], 2),
            "min_ms": round(s[0], 2), "runs": len(s)}


def run_queries(execute, trace_ids: list[str], repeats: int, now: datetime) -> dict:
    """``execute(sql, params) -> rows``; one warm-up run, then ``repeats`` timed ones per query."""
    out = {}
    for name, (sql, _) in QUERIES.items():
        execute(sql, _used(sql, _params(name, 10_000, trace_ids, now)))
        samples, rows = [], []
        for i in range(repeats):
            p = _used(sql, _params(name, i, trace_ids, now))
            t0 = time.perf_counter()
            rows = execute(sql, p)
            if name == "one_trace_tree":
                build_tree(rows)
            samples.append((time.perf_counter() - t0) * 1e3)
        out[name] = {**_stats(samples), "rows": len(rows)}
    return out


# --- filling a store (runs in its own process: it opens the embedded engine) -----
def fill_and_query_direct(data_dir: str, n_spans: int, repeats: int, seed: int = 3) -> dict:
    from spanledger.collector.pricing.lookup import CollectorPricing
    from spanledger.collector.pricing.pairs import model_pairs
    from spanledger.collector.store import Store, StoreConfig, migrate
    from spanledger.collector.wal import encode_record
    from spanledger.pricing import default_price_book

    from bench.payloads import make_pool
    from bench.references import _segment_limits

    data = Path(data_dir)
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    store = Store(StoreConfig(data_dir=data))
    migrate(store.writer, store.options)
    pricing = CollectorPricing(store, default_price_book())
    now = datetime.now(UTC).replace(tzinfo=None)
    rng = random.Random(seed)
    pool = make_pool(16, 1000, seed, start_ns=time.time_ns() - 3600 * 10**9)
    max_spans, _ = _segment_limits()
    base = min(n_spans, 1_000_000)
    t0 = time.perf_counter()
    seg, seg_spans, done, n, copy_id = [], 0, 0, 0, 0
    seg_path = data / "fill.wal"
    while done < base:
        tpl = pool[copy_id % len(pool)]
        copy_id += 1
        seg.append(encode_record(tpl.stamp(copy_id, -int(rng.random() * 30 * 86400e9)), ""))
        seg_spans += tpl.spans
        done += tpl.spans
        if seg_spans + 1000 > max_spans or done >= base:
            seg_path.write_bytes(b"".join(seg))
            pricing.publish_pairs(model_pairs(seg_path.read_bytes()))  # as the collector does before each load
            store.load_segment(seg_path, f"fill-{n}")
            n += 1
            seg, seg_spans = [], 0
    seg_path.unlink(missing_ok=True)
    pipeline_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    k = 1
    cols = [r[0] for r in store.write_query(
        f"SELECT name FROM system.columns WHERE database = '{DB}' AND table = 'otel_traces' "
        "AND default_kind NOT IN ('MATERIALIZED', 'ALIAS') ORDER BY position").result_rows]
    while done < n_spans:  # copies of the pipeline's rows with new trace ids, through the same views
        # (explicit columns: an INSERT ... SELECT * REPLACE stored nothing through the chDB client here)
        exprs = {"TraceId": f"concat(leftPad(lower(hex(toUInt32({k}))), 8, '0'), substring(TraceId, 9))",
                 "Timestamp": f"Timestamp - toIntervalSecond({k * 97})"}
        select = ", ".join(exprs.get(c, f"`{c}`") for c in cols)
        store.command(
            f"INSERT INTO {DB}.otel_traces ({', '.join(f'`{c}`' for c in cols)}) SELECT {select} "
            f"FROM {DB}.otel_traces WHERE startsWith(TraceId, '00000000')"
            + (f" LIMIT {n_spans - done}" if n_spans - done < base else ""),
            settings={"max_insert_threads": 2})
        done += min(base, n_spans - done)
        k += 1
    copy_s = time.perf_counter() - t1
    time.sleep(5)  # let background merges of the last inserts start; parts are reported below
    q = lambda sql: store.write_query(sql).result_rows
    total = int(q(f"SELECT count() FROM {DB}.otel_traces")[0][0])
    if total != done:
        raise RuntimeError(f"fill stored {total} spans, expected {done}")
    parts = q(f"SELECT count(), sum(bytes_on_disk) FROM system.parts WHERE database = '{DB}' AND table = 'otel_traces' AND active")[0]
    trace_ids = [r[0] for r in q(f"SELECT TraceId FROM {DB}.otel_traces_trace_id_ts ORDER BY cityHash64(TraceId) LIMIT 200")]

    def execute(sql, params):
        return store.writer.query(sql, parameters=params, settings=NO_CACHE).result_rows

    direct = run_queries(execute, trace_ids, repeats, now)
    store.close()
    return {"spans": total, "fill_pipeline_s": round(pipeline_s, 1), "fill_copy_s": round(copy_s, 1),
            "active_parts": int(parts[0]), "bytes_on_disk": int(parts[1] or 0), "trace_ids": trace_ids,
            "now": now.isoformat(), "direct": direct}


def query_via_api(data_dir: Path, trace_ids: list[str], repeats: int, now: datetime) -> dict:
    from bench.collector_proc import Collector

    col = Collector(data_dir).start()
    try:
        return run_queries(lambda sql, p: col.sql(sql, p)["rows"], trace_ids, repeats, now)
    finally:
        col.stop()


def run(sizes: tuple[int, ...] = (1_000_000,), repeats: int = 20, workdir: str = "/tmp/spanledger-bench-queries",
        keep: bool = False) -> dict:
    from bench.references import in_fresh_process

    out = {"cache_policy": "engine result and condition caches off or defeated (new parameters every run); "
                           "mark cache and OS page cache warm", "sizes": {}}
    for size in sizes:
        d = Path(workdir) / f"store-{size}"
        res = in_fresh_process(fill_and_query_direct, str(d), size, repeats)
        now = datetime.fromisoformat(res["now"])
        try:
            res["api"] = query_via_api(d, res.pop("trace_ids"), repeats, now)
        except Exception as exc:  # report what we have
            res["api_error"] = str(exc)[:500]
        out["sizes"][str(size)] = res
        if not keep:
            shutil.rmtree(d, ignore_errors=True)
    return out


def table(res: dict) -> list[tuple[str, str, str]]:
    rows = []
    for size, r in res["sizes"].items():
        rows.append((f"store: {int(size):,} spans", f"{r['bytes_on_disk'] / 2**20:,.0f} MiB",
                     f"{r['active_parts']} parts; filled in {r['fill_pipeline_s'] + r['fill_copy_s']:.0f}s"))
        for name, (_, target) in QUERIES.items():
            d, a = r["direct"][name], r.get("api", {}).get(name)
            api = f"{a['p50_ms']:.1f} / {a['p95_ms']:.1f}" if a else "-"
            rows.append((f"  {name} p50/p95 ms (API | engine)", f"{api} | {d['p50_ms']:.1f} / {d['p95_ms']:.1f}",
                         f"{d['rows']} rows; {target}"))
    return rows
