"""Every named report at 1M spans: p50/p95 engine-side (run_report in the collector's process) and over HTTP.

Fill: bench.queries' fill (the store's own load path: WAL segments of
bench.payloads requests over the last 30 days, decoded, normalized and priced
by the ingest pipeline).  Then a collector is started on that store in a fresh
process with the reports router on uvicorn, and each report runs ``repeats``
times both ways.

Caches: every repetition binds other values -- ``since`` moved by whole hours
(so the rollup can still answer) or another id for timelines -- so the engine's
query-condition and result caches cannot answer.  The mark cache and the page
cache stay warm, as on a running collector.

Targets (the brief): listing/filter <= 50 ms, statistics/analytics <= 200 ms,
dashboard rollups <= 10 ms engine-side.

    .venv/bin/python -m bench.bench_reports [--spans 1000000] [--repeats 15]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

TARGETS = {"spend": ("dashboard rollup", 10), "spend_raw": ("statistics", 200), "top": ("dashboard rollup", 10),
           "top_sessions": ("listing", 50), "project_timeline": ("listing", 50), "conversation": ("listing", 50),
           "ticket_history": ("listing", 50), "session_events": ("listing", 50), "agent_stats": ("statistics", 200),
           "activity_durations": ("statistics", 200), "events_by_type": ("statistics", 200),
           "problems": ("listing", 50), "analytics_summary": ("analytics", 200), "sessions": ("listing", 50)}


def _cases(ids: dict[str, list[str]], now: datetime):
    """name -> (report, params for repetition i)."""
    def since(i, whole_hours=True):
        start = (now - timedelta(days=30) + timedelta(hours=i)).replace(minute=0, second=0, microsecond=0)
        return [(start if whole_hours else start + timedelta(milliseconds=i + 1)).isoformat()]

    def pick(kind, i):
        return [ids[kind][i % len(ids[kind])]] if ids[kind] else ["none"]

    return {
        "spend": ("spend", lambda i: {"group_by": ["model,agent"], "bucket": ["day"], "since": since(i)}),
        "spend_raw": ("spend", lambda i: {"group_by": ["model,session"], "bucket": ["day"], "since": since(i, False),
                                          "limit": ["10000"]}),
        "top": ("top", lambda i: {"key": ["user"], "since": since(i)}),
        "top_sessions": ("top", lambda i: {"key": ["session"], "since": since(i, False)}),
        "project_timeline": ("project_timeline", lambda i: {"id": pick("ProjectId", i)}),
        "conversation": ("conversation", lambda i: {"id": pick("ConversationId", i)}),
        "ticket_history": ("ticket_history", lambda i: {"id": pick("TicketId", i)}),
        "session_events": ("session_events", lambda i: {"id": pick("SessionId", i)}),
        "agent_stats": ("agent_stats", lambda i: {"since": since(i, False)}),
        "activity_durations": ("activity_durations", lambda i: {"since": since(i, False)}),
        "events_by_type": ("events_by_type", lambda i: {"since": since(i, False)}),
        "problems": ("problems", lambda i: {"since": since(i, False)}),
        "analytics_summary": ("analytics_summary", lambda i: {"since": since(i, False)}),
        "sessions": ("sessions", lambda i: {"since": since(i, False)}),
    }


def _stats(samples: list[float]) -> dict:
    s = sorted(samples)
    return {"p50_ms": round(statistics.median(s), 1), "p95_ms": round(s[min(len(s) - 1, round(len(s) * 0.95) - 1)], 1)}


def measure(data_dir: str, repeats: int) -> dict:
    import httpx
    import uvicorn
    from fastapi import FastAPI

    from spanledger.collector.app import Collector, Overrides
    from spanledger.collector.auth import TokenAuth
    from spanledger.collector.config import load_config
    from spanledger.collector.query import run_query
    from spanledger.collector.query.reports import Tables, run_report
    from spanledger.collector.serve.reports import router

    collector = Collector(load_config(), Overrides(grpc_endpoint="127.0.0.1:0", api_endpoint="127.0.0.1:0",
                                                   data_dir=data_dir))
    collector.start()
    app = FastAPI()
    app.include_router(router)
    app.state.collector, app.state.auth = collector, TokenAuth({})
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    try:
        ids = {}
        for column in ("ProjectId", "ConversationId", "TicketId", "SessionId"):
            rows = run_query(collector, f"SELECT DISTINCT {column} FROM spanledger.otel_traces WHERE {column} != '' "
                             "LIMIT 100", tenant=None).result_rows
            ids[column] = [r[0] for r in rows]
        now = datetime.now(UTC)

        def execute(sql, parameters):
            result = run_query(collector, sql, parameters, tenant=None)
            return list(result.column_names), [list(r) for r in result.result_rows]

        out = {}
        # a calibration row: one plain scan through run_query, to compare with MEASURED.md on a busy machine
        scan = []
        for i in range(repeats):
            t0 = time.perf_counter()
            run_query(collector, "SELECT count(), sum(TotalCost) FROM spanledger.otel_traces "
                      "WHERE Timestamp >= {s:DateTime64(3)}", {"s": now - timedelta(days=30, milliseconds=i)},
                      tenant=None)
            scan.append((time.perf_counter() - t0) * 1e3)
        out["_reference_scan"] = _stats(scan)
        client = httpx.Client(timeout=60)
        for name, (report, params) in _cases(ids, now).items():
            run_report(report, params(10_000), execute=execute, price_book=collector.price_book, operator=True,
                       time_zone="UTC", tables=Tables())  # warm-up
            engine, api, rows, source = [], [], 0, ""
            for i in range(repeats):
                t0 = time.perf_counter()
                body = run_report(report, params(i), execute=execute, price_book=collector.price_book, operator=True,
                                  time_zone="UTC", tables=Tables())
                engine.append((time.perf_counter() - t0) * 1e3)
                t0 = time.perf_counter()
                response = client.get(f"{url}/v1/reports/{report}", params=params(i + repeats))
                api.append((time.perf_counter() - t0) * 1e3)
                if response.status_code != 200:
                    raise RuntimeError(f"{name}: {response.status_code} {response.text[:300]}")
                rows, source = len(body["rows"]), body["source"]
            kind, target = TARGETS[name]
            out[name] = {"engine": _stats(engine), "api": _stats(api), "rows": rows, "source": source,
                         "target": f"{kind} <= {target} ms"}
        client.close()
        out["_spans"] = run_query(collector, "SELECT count() FROM spanledger.otel_traces", tenant=None).result_rows[0][0]
        return out
    finally:
        server.should_exit = True
        thread.join(10)
        collector.stop()


def main() -> None:
    from bench.queries import fill_and_query_direct
    from bench.references import in_fresh_process

    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--workdir", default="/tmp/spanledger-bench-reports")
    args = parser.parse_args()
    data_dir = str(Path(args.workdir) / f"store-{args.spans}")
    t0 = time.perf_counter()
    in_fresh_process(fill_and_query_direct, data_dir, args.spans, 1)
    fill_s = time.perf_counter() - t0
    try:
        result = in_fresh_process(measure, data_dir, args.repeats)
    finally:
        shutil.rmtree(args.workdir, ignore_errors=True)
    print(f"store: {result.pop('_spans'):,} spans (filled in {fill_s:.0f} s); p50 / p95 ms over {args.repeats} runs; "
          f"reference scan (count + sum over 30 days) {result.pop('_reference_scan')}; load {os.getloadavg()[0]:.1f}")
    print(f"{'report':<20} {'engine-side':>14} {'API':>14}  rows  source / target")
    for name, r in result.items():
        print(f"{name:<20} {r['engine']['p50_ms']:>6} / {r['engine']['p95_ms']:<6} {r['api']['p50_ms']:>6} / "
              f"{r['api']['p95_ms']:<6} {r['rows']:>5}  {r['source'].split('.')[-1]}; {r['target']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
