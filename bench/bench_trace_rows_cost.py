"""What the trace-rows view (schema/070) costs the store path on ingest (issue 13).

Why: ``otel_traces_trace_rows_mv`` runs on every insert into the spans table and
writes one more table (each span's API summary as one JSON string), which makes
``GET /v1/traces/{id}`` one single-column read.  A first A/B in two separate
fresh stores was lost in this machine's noise.  Here both variants live in one
engine, in one process, and load the same WAL segments interleaved
(A B, B A, A B, ...), so drift in the machine's load hits both alike:

* **A** ``spanledger``: the pipeline as shipped;
* **B** ``spanledger_noview``: the same migrations, then ``DROP VIEW`` of the
  trace-rows view (its table stays, empty).

Every load gets fresh trace/span ids (bench/payloads.py templates re-stamped
with a new nonce) and its own dedup token, so nothing deduplicates; every model
of the payload is priced before the first load, as the collector publishes
prices before each load.  Segments are as large as
the collector's defaults make them (memory_limiter 1024 MiB, 2 writers).
Prints, and writes to ``--out``: spans/s p50 of each, B/A, the µs/span the view
adds, CPU per span (the whole process, background merges included) and the
on-disk bytes of the spans table and the trace-rows table after the loads.

    .venv/bin/python bench/bench_trace_rows_cost.py [--rounds 240] [--requests N] [--out bench/results/trace-rows-cost.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.payloads import make_pool  # noqa: E402
from spanledger.collector.pricing.lookup import CollectorPricing  # noqa: E402
from spanledger.collector.pricing.pairs import model_pairs  # noqa: E402
from spanledger.collector.store import Store, StoreConfig, migrate  # noqa: E402
from spanledger.collector.store.backend import EngineMemory  # noqa: E402
from spanledger.collector.store.ddl import SchemaOptions  # noqa: E402
from spanledger.collector.wal import encode_record  # noqa: E402
from spanledger.pricing import default_price_book  # noqa: E402

VIEW = "otel_traces_trace_rows_mv"
TABLES = ("otel_traces", "otel_traces_trace_rows")
VARIANTS = {"with_view": "spanledger", "without_view": "spanledger_noview"}


def default_requests() -> int:
    """1000-span requests per segment: what the collector's defaults (1024 MiB ceiling, 2 writers) seal."""
    return max(EngineMemory.for_ceiling(1024).segment_spans(50_000, 2) // 1000, 1)


def open_variant(work: Path, database: str, with_view: bool, pairs: set) -> Store:
    """A migrated store in ``database`` with every model of the payload priced; the view dropped unless ``with_view``."""
    store = Store(StoreConfig(data_dir=work, options=SchemaOptions(database=database)))
    migrate(store.writer, store.options)
    if not with_view:
        store.command(f"DROP VIEW {database}.{VIEW}")
    CollectorPricing(store, default_price_book()).publish_pairs(pairs)
    return store


def write_segment(path: Path, pool, nonce: int) -> int:
    """One WAL segment of every template, ids unique to ``nonce``; returns its span count."""
    path.write_bytes(b"".join(encode_record(t.stamp(i + 1, nonce=nonce), "") for i, t in enumerate(pool)))
    return sum(t.spans for t in pool)


def disk_bytes(store: Store, database: str) -> dict[str, dict[str, int]]:
    """Active parts of the spans table and the trace-rows table: bytes on disk, rows, parts."""
    result = store.write_query(
        "SELECT table, sum(bytes_on_disk), sum(rows), count() FROM system.parts "
        f"WHERE database = '{database}' AND active AND table IN {TABLES} GROUP BY table")
    found = {row[0]: {"bytes_on_disk": int(row[1]), "rows": int(row[2]), "active_parts": int(row[3])}
             for row in result.result_rows}
    return {table: found.get(table, {"bytes_on_disk": 0, "rows": 0, "active_parts": 0}) for table in TABLES}


def commit() -> str:
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=240, help="loads per variant (after one warm-up each)")
    parser.add_argument("--requests", type=int, default=default_requests(), help="1000-span requests per segment")
    parser.add_argument("--templates-seed", type=int, default=13)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args()

    pool = make_pool(args.requests, 1000, seed=args.templates_seed)
    work = Path(tempfile.mkdtemp(prefix="spanledger-trace-rows-cost-"))
    pairs = set().union(*(model_pairs(encode_record(t.data, "")) for t in pool))
    stores = {name: open_variant(work / "store", db, name == "with_view", pairs) for name, db in VARIANTS.items()}
    nonce = 0

    def load(name: str, tag: str) -> tuple[float, float, int]:
        nonlocal nonce
        nonce += 1
        segment = work / f"segment-{nonce}.wal"
        spans = write_segment(segment, pool, nonce)
        cpu0, started = time.process_time(), time.perf_counter()
        stores[name].load_segment(segment, f"trace-rows-cost-{tag}-{nonce}")
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
        segment.unlink()
        return wall, cpu, spans

    for name in stores:  # first insert of each pipeline: analysis, caches
        load(name, "warmup")
    walls: dict[str, list[float]] = {name: [] for name in stores}
    cpus: dict[str, list[float]] = {name: [] for name in stores}
    loads, began = [], time.perf_counter()
    load_before = os.getloadavg()
    spans = 0
    for n in range(args.rounds):
        order = list(stores) if n % 2 == 0 else list(reversed(stores))
        for name in order:
            wall, cpu, spans = load(name, str(n))
            walls[name].append(wall)
            cpus[name].append(cpu)
        loads.append(os.getloadavg()[0])
    elapsed = time.perf_counter() - began
    load_after = os.getloadavg()

    stored = {}
    for name, db in VARIANTS.items():
        store = stores[name]
        count = store.write_query(f"SELECT count() FROM {db}.otel_traces").result_rows[0][0]
        expected = spans * (args.rounds + 1)  # the warm-up load too
        assert count == expected, (name, count, expected)
        stored[name] = int(count)
    rows = stores["with_view"].write_query("SELECT count() FROM spanledger.otel_traces_trace_rows").result_rows[0][0]
    assert rows == stored["with_view"], ("trace rows", rows, stored["with_view"])
    disk = {name: disk_bytes(stores[name], db) for name, db in VARIANTS.items()}

    a, b = statistics.median(walls["with_view"]), statistics.median(walls["without_view"])
    # each round's A and B ran back to back: their difference cancels slow drift of the machine's load
    diffs = [x - y for x, y in zip(walls["with_view"], walls["without_view"])]
    paired = statistics.median(diffs)
    quartiles = statistics.quantiles(diffs, n=4) if len(diffs) > 1 else [paired] * 3
    cpu_a, cpu_b = statistics.median(cpus["with_view"]), statistics.median(cpus["without_view"])
    spans_disk = disk["with_view"]["otel_traces"]["bytes_on_disk"]
    rows_disk = disk["with_view"]["otel_traces_trace_rows"]["bytes_on_disk"]
    figures = {
        "what": "store path (Store.load_segment) with / without otel_traces_trace_rows_mv, one engine, interleaved",
        "commit": commit(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "segment_spans": spans, "rounds_per_variant": args.rounds, "seconds": round(elapsed, 1),
        "load_average": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in load_after],
                         "1min_during_median": round(statistics.median(loads), 2),
                         "1min_during_max": round(max(loads), 2)},
        "spans_per_s_p50": {"with_view": round(spans / a), "without_view": round(spans / b)},
        "segment_ms_p50": {"with_view": round(a * 1000, 1), "without_view": round(b * 1000, 1)},
        "segment_ms_p95": {name: round(statistics.quantiles(w, n=20)[18] * 1000, 1) if len(w) > 1 else None
                           for name, w in walls.items()},
        "ratio_without_over_with": round((spans / b) / (spans / a), 3),
        "view_us_per_span_from_p50s": round((a - b) / spans * 1e6, 2),
        "view_us_per_span_paired_median": round(paired / spans * 1e6, 2),
        "view_us_per_span_paired_quartiles": [round(q / spans * 1e6, 2) for q in (quartiles[0], quartiles[2])],
        "rounds_with_view_slower": sum(d > 0 for d in diffs),
        "cpu_us_per_span_p50": {"with_view": round(cpu_a / spans * 1e6, 2), "without_view": round(cpu_b / spans * 1e6, 2)},
        "stored_spans_per_variant": stored,
        "disk": disk,
        "trace_rows_over_spans_bytes": round(rows_disk / spans_disk, 3) if spans_disk else None,
        "trace_rows_bytes_per_span": round(rows_disk / stored["with_view"], 1),
        "segment_ms": {name: [round(x * 1000, 1) for x in w] for name, w in walls.items()},
    }
    for store in stores.values():
        store.close()
    shutil.rmtree(work, ignore_errors=True)

    print(f"{args.rounds} segments of {spans} spans per variant, interleaved, {elapsed:.0f} s, "
          f"load {figures['load_average']['1min_during_median']} (max {figures['load_average']['1min_during_max']})")
    print(f"  with view    {spans / a:9,.0f} spans/s p50 ({a * 1000:.0f} ms/segment), CPU {cpu_a / spans * 1e6:.1f} µs/span")
    print(f"  without view {spans / b:9,.0f} spans/s p50 ({b * 1000:.0f} ms/segment), CPU {cpu_b / spans * 1e6:.1f} µs/span")
    print(f"  without/with {figures['ratio_without_over_with']:.3f}; the view adds "
          f"{figures['view_us_per_span_from_p50s']:.2f} µs/span (p50s), {figures['view_us_per_span_paired_median']:.2f} "
          f"(median of paired differences; quartiles {figures['view_us_per_span_paired_quartiles']}; "
          f"slower with the view in {figures['rounds_with_view_slower']} of {args.rounds} rounds)")
    print(f"  on disk after the loads: otel_traces {spans_disk / 1e6:.1f} MB, otel_traces_trace_rows "
          f"{rows_disk / 1e6:.1f} MB ({figures['trace_rows_over_spans_bytes']}x, "
          f"{figures['trace_rows_bytes_per_span']} B/span); without the view otel_traces "
          f"{disk['without_view']['otel_traces']['bytes_on_disk'] / 1e6:.1f} MB")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"  written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
