"""End-to-end ingest: spans committed to the store per second, beside its references.

What is measured, all in one run (the machine drifts ~35% between runs, so
only ratios taken within one run are compared):

1. the collector as shipped (``spanledger collector``, durability on) on a
   fresh data directory, fed by bench.loadgen from separate processes;
   rate = spans acknowledged / (last row committed - first send), where
   "committed" is ``count()`` on ``otel_traces`` polled through the SQL API;
   collector CPU (from /proc, split by thread name) and peak RSS (VmHWM);
2. the references of bench.references on the same templates: decode-only,
   the store's load path without the collector (pipeline insert), and the raw
   insert of the same rows (flat insert);
3. the load generator against a null receiver (bench.standin): proof that the
   sender is not what limits the collector.

Then it checks that every acknowledged span is stored exactly once.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import loadgen, references
from bench.collector_proc import Collector, free_port, proc_status, process_cpu, thread_cpu

TRACES = "spanledger.otel_traces"


def _poll_committed(col: Collector, stop: threading.Event, timeline: list, interval: float = 0.5) -> None:
    while not stop.is_set():
        try:
            timeline.append((time.time(), int(col.scalar(f"SELECT count() FROM {TRACES}"))))
        except Exception as exc:  # an overloaded API answers late; keep polling
            timeline.append((time.time(), None, str(exc)[:200]))
        stop.wait(interval)


def _sample_resources(pid: int, stop: threading.Event, samples: list, interval: float = 1.0) -> None:
    while not stop.is_set():
        try:
            samples.append({"t": time.time(), "cpu_s": process_cpu(pid), **proc_status(pid)})
        except FileNotFoundError:
            return
        stop.wait(interval)


def null_receiver_rate(cfg: loadgen.LoadConfig, templates: list[bytes], seconds: float) -> dict:
    """The load generator against bench.standin (accepts and drops): its own ceiling."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.standin", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        proc.stdout.readline()
        c = loadgen.LoadConfig(**{**cfg.__dict__, "target": f"127.0.0.1:{port}", "duration_s": seconds, "max_requests": 0})
        return loadgen.run(c, templates).summary()
    finally:
        proc.terminate()
        proc.wait(10)


def collector_run(cfg: loadgen.LoadConfig, templates: list[bytes], data_dir: Path, drain_timeout_s: float = 600,
                  profile_s: float = 0, collector_args: list[str] | None = None) -> dict:
    """Run the load against a fresh collector; return rates, resources, and the end-of-run checks."""
    shutil.rmtree(data_dir, ignore_errors=True)
    col = Collector(data_dir, collector_args).start()
    try:
        cfg = loadgen.LoadConfig(**{**cfg.__dict__, "target": col.grpc})
        base_rows = int(col.scalar(f"SELECT count() FROM {TRACES}"))
        cpu_before, threads_before = process_cpu(col.pid), thread_cpu(col.pid)
        stop, timeline, samples = threading.Event(), [], []
        pollers = [threading.Thread(target=_poll_committed, args=(col, stop, timeline), daemon=True),
                   threading.Thread(target=_sample_resources, args=(col.pid, stop, samples), daemon=True)]
        for t in pollers:
            t.start()
        spy = None
        if profile_s:
            spy_out = data_dir.parent / "py-spy.txt"
            spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(col.pid), "-d",
                                    str(int(profile_s)), "-r", "50", "-f", "raw", "-o", str(spy_out), "--threads",
                                    "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        load = loadgen.run(cfg, templates)
        acked = load.spans_acked
        # drain: wait until every acknowledged span is a committed row
        deadline, last_commit = time.time() + drain_timeout_s, None
        while time.time() < deadline:
            rows = int(col.scalar(f"SELECT count() FROM {TRACES}")) - base_rows
            if rows >= acked:
                last_commit = time.time()
                break
            time.sleep(0.25)
        stop.set()
        cpu_after, threads_after = process_cpu(col.pid), thread_cpu(col.pid)
        status = proc_status(col.pid)
        stats = col.stats()
        check = col.sql(f"SELECT count(), uniqExact(TraceId, SpanId), countIf(CostSource = 'unknown_model'), "
                        f"countIf(CostSource = 'computed'), countIf(CostSource = 'provided'), sum(TotalCost) FROM {TRACES}")["rows"][0]
        try:  # the parking table of the backflow design (before schema 020); gone since
            unpriced = col.scalar("SELECT count() FROM spanledger.spanledger_spans_unpriced")
        except Exception:  # noqa: BLE001 - no such table: nothing can be left unpriced
            unpriced = 0
        lookup = _trace_lookups(col)
        if spy:
            spy.wait(profile_s + 60)
    finally:
        exit_code = col.stop()
    window = (last_commit or time.time()) - load.first_send
    per_thread = {k: round(threads_after.get(k, 0) - threads_before.get(k, 0), 2) for k in threads_after}
    per_thread = dict(sorted(((k, v) for k, v in per_thread.items() if v > 0.05), key=lambda kv: -kv[1]))
    cpu = cpu_after - cpu_before
    t0 = load.first_send
    return {
        "spans_acked": acked,
        "rows_committed": int(check[0]) - base_rows,
        "unique_ids": int(check[1]),
        "all_stored_once": int(check[0]) - base_rows == acked and int(check[1]) == int(check[0]),
        "left_unpriced": int(unpriced), "cost_sources": {"unknown_model": int(check[2]), "computed": int(check[3]), "provided": int(check[4])},
        "drained": last_commit is not None,
        "seconds_first_send_to_last_commit": round(window, 3),
        "drain_after_last_ack_s": round((last_commit or time.time()) - load.last_ack, 3),
        "committed_spans_per_s": round(acked / window, 1) if last_commit else None,
        "acked_spans_per_s": load.summary()["acked_spans_per_s"],
        "load": load.summary(),
        "collector_cpu_s": round(cpu, 2), "collector_cores": round(cpu / window, 2),
        "collector_cpu_us_per_span": round(cpu / max(acked, 1) * 1e6, 2),
        "collector_cpu_by_thread_s": per_thread,
        "collector_peak_rss_mib": round(status["VmHWM"] / 2**20, 1),
        "collector_threads": status.get("Threads"),
        "collector_exit_code": exit_code,
        "one_trace_api": lookup,
        "collector_stats": stats,
        "timeline": [(round(p[0] - t0, 2), p[1]) for p in timeline if p[1] is not None],
        "rss_mib_timeline": [(round(s["t"] - t0, 1), round(s["VmRSS"] / 2**20)) for s in samples],
    }


def _trace_lookups(col: Collector, n: int = 20) -> dict:
    """One trace with its tree through the API, on the store the run just filled (for the peer table)."""
    from bench.queries import QUERIES, _stats, build_tree

    sql = QUERIES["one_trace_tree"][0]
    tids = [r[0] for r in col.sql(f"SELECT TraceId FROM {TRACES}_trace_id_ts ORDER BY cityHash64(TraceId) LIMIT {n}")["rows"]]
    samples, spans = [], []
    for tid in tids:
        t0 = time.perf_counter()
        rows = col.sql(sql, {"tid": tid})["rows"]
        build_tree(rows)
        samples.append((time.perf_counter() - t0) * 1e3)
        spans.append(len(rows))
    return {**(_stats(samples) if samples else {}), "spans_per_trace_avg": round(sum(spans) / max(len(spans), 1), 1)}


def summarize_profile(path: Path, top: int = 15) -> dict:
    """py-spy raw (collapsed) stacks -> share of Python samples per thread entry point and per leaf function."""
    by_thread, by_leaf, total = {}, {}, 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        entry = next((f for f in frames if not f.startswith("thread (") and "threading.py" not in f), frames[0])
        by_thread[entry] = by_thread.get(entry, 0) + n
        by_leaf[frames[-1]] = by_leaf.get(frames[-1], 0) + n
    share = lambda d: {k: round(v / total, 3) for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:top]}
    return {"samples": total, "by_thread": share(by_thread), "by_leaf": share(by_leaf)}


def run(duration_s: float = 60, processes: int = 1, concurrency: int = 8, spans_per_request: int = 1000,
        templates: int = 8, ref_requests: int = 300, null_s: float = 5, profile_s: float = 0, workdir: str | None = None,
        collector_config: str | None = None) -> dict:
    work = Path(workdir or tempfile.mkdtemp(prefix="spanledger-bench-"))
    cfg = loadgen.LoadConfig(target="", processes=processes, concurrency=concurrency, duration_s=duration_s,
                             spans_per_request=spans_per_request, templates=templates)
    tpls = loadgen.build_templates(cfg)
    out = {"config": {k: v for k, v in cfg.__dict__.items() if k != "target"},
           "request_bytes_avg": round(sum(map(len, tpls)) / len(tpls)), "workdir": str(work)}
    out["collector_config"] = collector_config
    out["collector"] = collector_run(cfg, tpls, work / "collector", profile_s=profile_s,
                                     collector_args=["--config", collector_config] if collector_config else None)
    if profile_s and (work / "py-spy.txt").exists():
        out["collector_profile"] = summarize_profile(work / "py-spy.txt")
    out["ref_decode_only"] = references.in_fresh_process(references.decode_only, tpls, max(ref_requests, 200))
    pipe = references.in_fresh_process(references.pipeline_insert, tpls, ref_requests, str(work / "ref-pipeline"))
    native = pipe.pop("native_files")
    out["ref_pipeline_insert"] = pipe
    out["ref_flat_insert"] = references.in_fresh_process(references.flat_insert, native, str(work / "ref-flat"))
    if null_s:
        out["loadgen_null_receiver"] = null_receiver_rate(cfg, tpls, null_s)
    ingest = out["collector"]["committed_spans_per_s"] or 0
    flat, pipe_rate = out["ref_flat_insert"]["spans_per_s"], out["ref_pipeline_insert"]["spans_per_s"]
    out["ratios"] = {
        "ingest_over_flat_insert": round(ingest / flat, 3),
        "collector_overhead_vs_flat_insert": round(1 - ingest / flat, 3),
        "ingest_over_pipeline_insert": round(ingest / pipe_rate, 3),
        "receive_and_wal_overhead": round(1 - ingest / pipe_rate, 3),
        "ingest_over_decode_only": round(ingest / out["ref_decode_only"]["spans_per_s"], 4),
    }
    if null_s:
        out["ratios"]["loadgen_null_over_ingest"] = round(out["loadgen_null_receiver"]["acked_spans_per_s"] / max(ingest, 1), 2)
    shutil.rmtree(work / "ref-pipeline", ignore_errors=True)
    shutil.rmtree(work / "ref-flat", ignore_errors=True)
    return out


def table(res: dict) -> list[tuple[str, str, str]]:
    """(figure, value, note) rows for the printed table."""
    c, r = res["collector"], res["ratios"]
    rows = [
        ("ingest: spans committed/s (collector, e2e)", f"{c['committed_spans_per_s'] or 0:,.0f}",
         f"{c['spans_acked']:,} spans over {c['seconds_first_send_to_last_commit']:.1f}s; target >= 100,000"),
        ("  acked spans/s (sender view)", f"{c['acked_spans_per_s']:,.0f}",
         f"retries {c['load']['retries']}, rejected {c['load']['rejected_spans']}, p50 call {c['load'].get('latency_p50_ms', '-')} ms"),
        ("  all acked spans stored exactly once", str(c["all_stored_once"]), f"rows {c['rows_committed']:,}, unique {c['unique_ids']:,}"),
        ("  collector CPU (cores) / µs per span", f"{c['collector_cores']} / {c['collector_cpu_us_per_span']}", "of 2 cores"),
        ("  collector peak RSS MiB", f"{c['collector_peak_rss_mib']:,.0f}", "target <= 1024"),
        ("ref: decode-only spans/s (ParseFromString)", f"{res['ref_decode_only']['spans_per_s']:,.0f}", "1 process"),
        ("ref: pipeline insert spans/s (store path, no collector)", f"{res['ref_pipeline_insert']['spans_per_s']:,.0f}",
         f"{res['ref_pipeline_insert']['cpu_us_per_span']} µs CPU/span"),
        ("ref: raw insert spans/s (same rows, Native)", f"{res['ref_flat_insert']['spans_per_s']:,.0f}",
         f"{res['ref_flat_insert']['cpu_us_per_span']} µs CPU/span"),
        *[(f"  pipeline part: {k.replace('_', ' ')} spans/s", f"{v['spans_per_s']:,.0f}", f"{v['cpu_us_per_span']} µs CPU/span")
          for k, v in res["ref_pipeline_insert"].get("breakdown", {}).items()],
        ("ratio ingest / raw insert", f"{r['ingest_over_flat_insert']:.2f}",
         f"overhead {r['collector_overhead_vs_flat_insert']:.0%}; target overhead <= 30%"),
        ("ratio ingest / pipeline insert", f"{r['ingest_over_pipeline_insert']:.2f}", f"receive+WAL overhead {r['receive_and_wal_overhead']:.0%}"),
        ("ratio ingest / decode-only", f"{r['ingest_over_decode_only']:.3f}", ""),
    ]
    if "loadgen_null_receiver" in res:
        rows.append(("loadgen vs null receiver spans/s", f"{res['loadgen_null_receiver']['acked_spans_per_s']:,.0f}",
                     f"{r['loadgen_null_over_ingest']}x the collector's rate"))
    return rows
