"""One trace through GET /v1/traces/{id}: the trace-rows read against the spans-table read, in one run (issue 13).

Fill: bench.queries' fill (the store's own load path for the first 1M spans:
WAL segments of bench.payloads requests over the last 30 days, ~13-span
agent traces, decoded/normalized/priced by the ingest pipeline; beyond 1M,
``INSERT ... SELECT`` copies with new trace ids, through the same views).

Then, in a fresh process, a collector on that store with the whole API app
(create_app: middleware, auth dependency) on a real uvicorn (port 0) and a
real HTTP client (httpx, keep-alive).  For each of ``repeats`` random trace
ids, interleaved so both paths see the same machine load:

* ``new``: the shipped path, ``trace_spans`` on the trace rows (schema/070);
* ``old``: ``trace_spans_from_spans`` (trace-id lookup, then the spans
  table), swapped into the route for its requests only.

Each path is timed three ways: the API (request to parsed JSON), the read in
the collector's process (``trace_spans`` wall time, no HTTP), and the engine's
own time (``elapsed_ns`` the engine reports for each query the read ran,
summed).  Every repetition reads another trace, so no query cache answers;
the mark and page caches stay warm, as on a running collector.

    .venv/bin/python -m bench.bench_trace [--spans 1000000] [--repeats 200]
    .venv/bin/python -m bench --parts trace --sizes 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _stats(samples: list[float]) -> dict:
    s = sorted(samples)
    return {"p50_ms": round(statistics.median(s), 2), "p95_ms": round(s[min(len(s) - 1, round(len(s) * 0.95) - 1)], 2),
            "runs": len(s)}


def measure(data_dir: str, repeats: int, seed: int = 13) -> dict:
    import httpx

    from spanledger.collector.app import Collector, Overrides
    from spanledger.collector.auth import TokenAuth
    from spanledger.collector.config import load_config
    from spanledger.collector.query import activities as q
    from spanledger.collector.serve import activities as route
    from spanledger.collector.serve.app import ApiSettings, ApiServer, create_app

    collector = Collector(load_config(), Overrides(grpc_endpoint="127.0.0.1:0", api_endpoint="127.0.0.1:0",
                                                   data_dir=data_dir))
    collector.start()  # runs the migrations: a store filled before schema/070 gets its trace rows here
    store = collector.store()
    engine_ns: list[int] = []
    plain_read = store.read

    def read(sql, parameters, settings):  # the engine's own time of each query, as the engine reports it
        result = plain_read(sql, parameters, settings)
        engine_ns.append(int((result.summary or {}).get("elapsed_ns", 0)))
        return result

    store.read = read
    server = ApiServer(create_app(collector, TokenAuth({})), "127.0.0.1:0", ApiSettings())
    server.start()
    paths = {"new": q.trace_spans, "old": q.trace_spans_from_spans}
    try:
        rows = store.query("SELECT TraceId FROM spanledger.otel_traces_trace_id_ts GROUP BY TraceId "
                           "ORDER BY cityHash64(TraceId, {seed:UInt32}) LIMIT {n:UInt32}",
                           {"seed": seed, "n": 4 * (repeats + 10)}).result_rows
        trace_ids = [r[0] for r in rows]
        random.Random(seed).shuffle(trace_ids)
        fresh = iter(trace_ids)  # every read another trace: the query-condition cache cannot answer
        client = httpx.Client(base_url=server.url, timeout=60)
        out: dict = {name: {"api": [], "api_engine": [], "read": [], "engine": [], "spans": []} for name in paths}
        for i in range(-10, repeats):  # 10 warm-up rounds, not recorded
            for name in (("new", "old") if i % 2 else ("old", "new")):  # alternate which goes first
                engine_ns.clear()
                t0 = time.perf_counter()
                spans, _ = paths[name](collector, next(fresh), tenant=None)
                read_ms = (time.perf_counter() - t0) * 1e3
                engine_ms = sum(engine_ns) / 1e6
                trace_id = next(fresh)
                route.q.trace_spans = paths[name]  # the route looks the function up per request
                try:
                    engine_ns.clear()
                    t0 = time.perf_counter()
                    response = client.get(f"/v1/traces/{trace_id}")
                    body = response.json()
                    api_ms = (time.perf_counter() - t0) * 1e3
                    api_engine_ms = sum(engine_ns) / 1e6
                finally:
                    route.q.trace_spans = paths["new"]
                if response.status_code != 200 or not body["spans"]:
                    raise RuntimeError(f"{name} {trace_id}: {response.status_code} {str(body)[:300]}")
                if i >= 0:
                    rec = out[name]
                    rec["api"].append(api_ms)
                    rec["api_engine"].append(api_engine_ms)
                    rec["read"].append(read_ms)
                    rec["engine"].append(engine_ms)
                    rec["spans"].append(len(spans))
        # the same trace answers the same on both paths (shape and every value)
        same = 0
        for trace_id in trace_ids[-20:]:
            new, old = (sorted(p(collector, trace_id, tenant=None)[0], key=lambda s: s["span_id"]) for p in paths.values())
            if new != old:
                raise RuntimeError(f"trace {trace_id}: the trace rows and the spans table disagree")
            same += 1
        client.close()
        result = {name: {"api": _stats(r["api"]), "engine_during_api": _stats(r["api_engine"]),
                         "read_in_process": _stats(r["read"]), "engine": _stats(r["engine"]),
                         "spans_per_trace_p50": statistics.median(r["spans"])} for name, r in out.items()}
        result["traces_compared_equal"] = same
        result["spans"] = int(store.query("SELECT count() FROM spanledger.otel_traces").result_rows[0][0])
        parts = store.query("SELECT table, count(), sum(rows), sum(bytes_on_disk) FROM system.parts "
                            "WHERE database = 'spanledger' AND active AND table IN "
                            "('otel_traces', 'otel_traces_trace_id_ts', 'otel_traces_trace_rows') GROUP BY table").result_rows
        result["tables"] = {t: {"parts": int(n), "rows": int(r), "bytes": int(b)} for t, n, r, b in parts}
        result["load_average"] = round(os.getloadavg()[0], 1)
        return result
    finally:
        server.stop()
        collector.stop()


def run(sizes: tuple[int, ...] = (1_000_000,), repeats: int = 200, workdir: str = "/tmp/spanledger-bench-trace",
        keep: bool = False) -> dict:
    from bench.queries import fill_and_query_direct
    from bench.references import in_fresh_process

    out: dict = {"sizes": {}}
    for size in sizes:
        data_dir = str(Path(workdir) / f"store-{size}")
        t0 = time.perf_counter()
        in_fresh_process(fill_and_query_direct, data_dir, size, 1)
        fill_s = time.perf_counter() - t0
        try:
            res = in_fresh_process(measure, data_dir, repeats)
        finally:
            if not keep:
                shutil.rmtree(data_dir, ignore_errors=True)
        res["fill_s"] = round(fill_s, 1)
        out["sizes"][str(size)] = res
    return out


def table(res: dict) -> list[tuple[str, str, str]]:
    rows = []
    for size, r in res["sizes"].items():
        rows.append((f"one trace at {int(size):,} spans", "p50 / p95 ms", f"load {r['load_average']}"))
        for name, label in (("old", "spans table (before)"), ("new", "trace rows (now)")):
            p = r[name]
            rows.append((f"  {label}", f"API {p['api']['p50_ms']} / {p['api']['p95_ms']}",
                         f"in-process {p['read_in_process']['p50_ms']} / {p['read_in_process']['p95_ms']}; "
                         f"engine {p['engine']['p50_ms']} / {p['engine']['p95_ms']}"))
        rows.append(("  old ÷ new (API p50)", f"{r['old']['api']['p50_ms'] / r['new']['api']['p50_ms']:.1f}x",
                     f"engine p50 {r['old']['engine']['p50_ms'] / r['new']['engine']['p50_ms']:.1f}x"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", default="1000000", help="store sizes, comma list")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--workdir", default="/tmp/spanledger-bench-trace")
    parser.add_argument("--name", default="trace", help="results file: bench/results/<name>.json")
    parser.add_argument("--keep", action="store_true", help="keep the filled stores")
    args = parser.parse_args()
    result = run(tuple(int(s) for s in args.spans.split(",")), args.repeats, args.workdir, args.keep)
    result["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    for row in table(result):
        print(f"{row[0]:<34} {row[1]:<24} {row[2]}")


if __name__ == "__main__":
    main()
