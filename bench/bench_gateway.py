"""What the query gateway adds to a query: check + tenant rewrite + limits, against the same SQL run directly.

    .venv/bin/python -m bench.bench_gateway [--spans 1000000] [--repeats 15]

The store is filled as bench/queries.py fills it (the real ingest pipeline, in
a fresh process).  Then, in this process, each question of bench/queries.py
and docs/queries.md runs three ways, interleaved, with the same parameters
and the same per-query settings (the gateway's limits, so engine caches and
limits treat all three alike):

* **direct**: the SQL as written, on a reader connection (``Store.read``);
* **operator**: through the gateway for the operator (allow-list check, no rewrite);
* **tenant**: through the gateway for a tenant (every table becomes a
  tenant-filtered subquery).  The bench data has TenantId '' (the untenanted
  default), so the tenant run binds '' as its tenant: the same rows as direct.

It also times the gateway's Python work alone: a check served by its LRU,
and a cold check (parse, walk, rewrite, generate, re-parse, re-check).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import time
from datetime import datetime
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "queries.md"


def _stats(samples: list[float]) -> dict:
    s = sorted(samples)
    return {"p50_ms": round(statistics.median(s), 3), "p95_ms": round(s[min(len(s) - 1, int(round(len(s) * 0.95)) - 1)], 3)}


def _documented() -> list[tuple[str, str]]:
    text = DOCS.read_text()
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    return [(s.splitlines()[0], sql) for s in sections for sql in re.findall(r"```sql\n(.*?)```", s, flags=re.S)]


def measure(data_dir: Path, trace_ids: list[str], now: datetime, repeats: int) -> dict:
    from bench.queries import QUERIES, _params, _used
    from spanledger.collector.errors import QueryRefused
    from spanledger.collector.query.gateway import QueryGateway, checked, readable_tables
    from spanledger.collector.query.limits import QueryLimits
    from spanledger.collector.query.sql_check import TENANT_PARAMETER, check_query
    from spanledger.collector.store import Store, StoreConfig

    store = Store(StoreConfig(data_dir=data_dir))
    limits = QueryLimits(max_memory_bytes=2 << 30)
    gateway = QueryGateway(limits)
    conversation = store.query("SELECT ConversationId FROM spanledger.otel_traces WHERE ConversationId != '' LIMIT 1").result_rows
    fixed = {"conversation_id": conversation[0][0] if conversation else "", "daily_limit": "1.0",
             "user": "u-1", "project": "p-1"}
    questions = [(name, sql) for name, (sql, _) in QUERIES.items()] + _documented()

    def direct(sql, params):
        return store.read(sql, params, limits.settings(marker="bench-direct")).result_rows

    def operator(sql, params):
        return gateway.run(store, sql, params, tenant=None).result_rows

    def tenant(sql, params):
        query, bound, query_id = gateway.prepare(store, sql, params, "bench", None)
        if TENANT_PARAMETER in bound:
            bound[TENANT_PARAMETER] = ""  # the bench data's tenant (see the module docstring)
        return store.read(query.sql, bound, limits.settings(marker="bench-tenant")).result_rows

    out: dict[str, dict] = {}
    for name, sql in questions:
        def params(i):
            p = {**fixed, **_params(name, i, trace_ids, now)}
            p["trace_id"] = p["tid"]
            return _used(sql, p)

        paths = {"direct": direct, "operator": operator, "tenant": tenant}
        try:
            tenant(sql, params(10_000))
        except QueryRefused as exc:  # the trace-id lookup has no TenantId: operator only
            paths.pop("tenant")
            out.setdefault("_notes", {})[name] = f"tenant: {exc}"[:160]
        samples = {k: [] for k in paths}
        rows = {}
        for k, fn in paths.items():
            fn(sql, params(10_001))  # warm-up
        for i in range(repeats):
            for k, fn in paths.items():
                p = params(i)
                t0 = time.perf_counter()
                rows[k] = len(fn(sql, p))
                samples[k].append((time.perf_counter() - t0) * 1e3)
        entry = {k: _stats(v) for k, v in samples.items()}
        for k in paths:
            if k != "direct":
                entry[f"{k}_added_p50_ms"] = round(entry[k]["p50_ms"] - entry["direct"]["p50_ms"], 3)
        entry["rows"] = rows
        out[name] = entry

    readable = readable_tables(store.options)
    sql = QUERIES["spend_by_model_agent_day_raw"][0]
    t0 = time.perf_counter()
    n = 2000
    for _ in range(n):
        gateway.prepare(store, sql, {"start": "2026-01-01 00:00:00.000"}, "bench", None)
    cached_us = (time.perf_counter() - t0) / n * 1e6
    cold = []
    for name, q in questions:
        t0 = time.perf_counter()
        try:
            check_query(q, readable, tenant_scoped=True)
        except QueryRefused:
            check_query(q, readable, tenant_scoped=False)
        cold.append((time.perf_counter() - t0) * 1e3)
    out["_python"] = {"prepare_cached_us": round(cached_us, 1), "check_cold_ms": _stats(cold),
                      "cache": checked.cache_info()._asdict()}
    store.close()
    return out


def main() -> None:
    from bench.queries import fill_and_query_direct
    from bench.references import in_fresh_process

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--workdir", default="/tmp/spanledger-bench-gateway")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    data = Path(args.workdir) / f"store-{args.spans}"
    t0 = time.perf_counter()
    filled = in_fresh_process(fill_and_query_direct, str(data), args.spans, 1)
    fill_s = time.perf_counter() - t0
    try:
        result = measure(data, filled["trace_ids"], datetime.fromisoformat(filled["now"]), args.repeats)
    finally:
        shutil.rmtree(args.workdir, ignore_errors=True)
    result["_run"] = {"spans": filled["spans"], "fill_s": round(fill_s, 1), "repeats": args.repeats,
                      "at": datetime.now().isoformat(timespec="seconds")}
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    print("\n| question | direct p50 / p95 ms | operator added p50 | tenant added p50 |")
    print("|---|---|---|---|")
    for name, e in result.items():
        if name.startswith("_"):
            continue
        print(f"| {name} | {e['direct']['p50_ms']} / {e['direct']['p95_ms']} | {e.get('operator_added_p50_ms', '')} "
              f"| {e.get('tenant_added_p50_ms', 'operator only')} |")


if __name__ == "__main__":
    main()
