"""One command for the whole suite: ``.venv/bin/python -m bench`` (or ``bench/run.py``).

Runs the chosen parts in one invocation, so every ratio is taken on the same
machine state, prints one table and writes everything (raw figures, timelines,
config, machine) to bench/results/<name>.json.

    python -m bench                                   # ingest 60 s, queries at 1M, Phoenix 60 s
    python -m bench --parts ingest --duration 10      # a smoke test
    python -m bench --parts queries --sizes 1000000,10000000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: bench/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import loadgen  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    from importlib.metadata import version

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    mem = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    versions = {}
    for pkg in ("chdb", "clickhouse-connect", "grpcio", "protobuf", "opentelemetry-proto"):
        try:
            versions[pkg] = version(pkg)
        except Exception:
            versions[pkg] = None
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_gib": round(mem / 2**20, 1), "python": platform.python_version(),
            "kernel": platform.release(), "versions": versions, "commit": commit}


def print_table(rows: list[tuple[str, str, str]]) -> None:
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    for a, b, c in rows:
        print(f"{a:<{w0}}  {b:>{w1}}  {c}")


def peer_rows(res: dict) -> list[tuple[str, str, str]]:
    p = res["peer_phoenix"]
    if "skipped" in p:
        return [("peer: Phoenix", "skipped", p["skipped"])]
    ours = res.get("ingest", {}).get("collector", {})
    ours_rate = ours.get("committed_spans_per_s")
    rows = [("peer: Phoenix stored spans/s", f"{p['stored_spans_per_s']:,.0f}",
             f"{p['spans_stored_in_window']:,} in {p['load_window_s']:.0f}s; {p['load']['retries']} retries; "
             f"{p['cpu_ms_per_stored_span']} ms CPU/span; peak RSS {p['peak_rss_mib']:.0f} MiB")]
    if ours_rate:
        rows.append(("peer: spanledger / Phoenix stored spans/s", f"{ours_rate / max(p['stored_spans_per_s'], 1e-9):,.0f}x",
                     "target >= 20x"))
    rows.append(("peer: Phoenix one trace (REST) p50/p95 ms", f"{p['one_trace_rest'].get('p50_ms')} / {p['one_trace_rest'].get('p95_ms')}",
                 f"store of {p['store_spans_at_lookup']:,} spans"))
    if ours.get("one_trace_api"):
        o = ours["one_trace_api"]
        rows.append(("peer: spanledger one trace (SQL API) p50/p95 ms", f"{o.get('p50_ms')} / {o.get('p95_ms')}",
                     f"store of {ours.get('rows_committed', 0):,} spans"))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description="spanledger benchmark suite (issue 5)")
    ap.add_argument("--parts", default="ingest,queries,peer", help="comma list of: ingest, queries, peer, trace")
    ap.add_argument("--name", default="latest", help="results file: bench/results/<name>.json")
    ap.add_argument("--duration", type=float, default=60, help="ingest: seconds of load")
    ap.add_argument("--processes", type=int, default=1, help="load generator processes")
    ap.add_argument("--concurrency", type=int, default=4, help="requests in flight per load process")
    ap.add_argument("--spans-per-request", type=int, default=1000)
    ap.add_argument("--ref-requests", type=int, default=300, help="requests in the insert references")
    ap.add_argument("--null-seconds", type=float, default=5, help="loadgen vs null receiver (0: skip)")
    ap.add_argument("--profile", type=float, default=0, help="py-spy the collector for this many seconds")
    ap.add_argument("--collector-config", help="ingest: pass this otel-config.yaml to the collector (default: as shipped)")
    ap.add_argument("--sizes", default="1000000", help="queries: store sizes, comma list")
    ap.add_argument("--repeats", type=int, default=20, help="queries: timed runs per query")
    ap.add_argument("--peer-duration", type=float, default=60, help="Phoenix: seconds of load")
    ap.add_argument("--peer-drain", type=float, default=60, help="Phoenix: seconds to watch it drain afterwards")
    ap.add_argument("--workdir", help="scratch directory (default: a fresh /tmp/spanledger-bench-*, removed at the end "
                                      "unless --keep; never share one between concurrent runs)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory (stores, logs)")
    a = ap.parse_args(argv)
    parts = [p.strip() for p in a.parts.split(",") if p.strip()]
    res: dict = {"name": a.name, "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
                 "args": vars(a)}
    rows: list[tuple[str, str, str]] = []
    work = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="spanledger-bench-"))
    res["workdir"] = str(work)
    t0 = time.time()
    if "ingest" in parts:
        from bench import ingest

        res["ingest"] = ingest.run(a.duration, a.processes, a.concurrency, a.spans_per_request, ref_requests=a.ref_requests,
                                   null_s=a.null_seconds, profile_s=a.profile, workdir=str(work / "ingest"),
                                   collector_config=a.collector_config)
        rows += ingest.table(res["ingest"])
    if "queries" in parts:
        from bench import queries

        sizes = tuple(int(s) for s in a.sizes.split(","))
        res["queries"] = queries.run(sizes, a.repeats, workdir=str(work / "queries"))
        rows += queries.table(res["queries"])
    if "trace" in parts:
        from bench import bench_trace

        sizes = tuple(int(s) for s in a.sizes.split(","))
        res["trace"] = bench_trace.run(sizes, max(a.repeats, 50), workdir=str(work / "trace"))
        rows += bench_trace.table(res["trace"])
    if "peer" in parts:
        from bench import peer_phoenix

        cfg = loadgen.LoadConfig(target="", processes=a.processes, concurrency=a.concurrency, duration_s=a.peer_duration,
                                 spans_per_request=a.spans_per_request)
        res["peer_phoenix"] = peer_phoenix.run(cfg, loadgen.build_templates(cfg), work / "phoenix" / "data", a.peer_drain)
        rows += peer_rows(res)
    res["wall_s"] = round(time.time() - t0, 1)
    if not a.keep and not a.workdir:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{a.name}.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(res, indent=1, default=str))
    tmp.replace(out)
    m = res["machine"]
    print(f"\nspanledger bench  {res['date']}  {m['cpu']} x{m['cores']}, {m['mem_gib']} GiB, commit {m['commit']}")
    print_table(rows)
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
