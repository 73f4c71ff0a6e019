"""The peer run: the same load against Arize Phoenix on the same machine.

Phoenix (``arize-phoenix``, Python, OTLP/gRPC receiver, SQLite) stores ~120
spans/s here (MEASURED.md), so its run is capped (default 60 s of load, then
up to ``drain_s`` more to see what it still stores); its stored spans/s is
spans in its database at the end of the load window / that window.  Phoenix
pins its own OpenTelemetry/protobuf versions, so it lives in its own venv
(``PHOENIX_VENV``, default /work/phoenix-venv); we read its SQLite file
directly (read-only) to count, and time its REST API for one-trace look-ups.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
import urllib.request
from pathlib import Path

from bench import loadgen
from bench.collector_proc import free_port, proc_status, process_cpu
from bench.queries import _stats

PHOENIX_VENV = Path(os.environ.get("PHOENIX_VENV", "/work/phoenix-venv"))


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as c:
            return c.execute("SELECT count(*) FROM spans").fetchone()[0]
    except sqlite3.Error:
        return 0


def _wait_http(url: str, timeout_s: float) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            time.sleep(0.5)
    raise RuntimeError(f"Phoenix did not answer {url} within {timeout_s}s")


def run(cfg: loadgen.LoadConfig, templates: list[bytes], workdir: Path, drain_s: float = 60, lookups: int = 20) -> dict:
    exe = PHOENIX_VENV / "bin" / "phoenix"
    if not exe.exists():
        return {"skipped": f"{exe} not found: python3.11 -m venv {PHOENIX_VENV} && {PHOENIX_VENV}/bin/pip install arize-phoenix"}
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    grpc_port, http_port = free_port(), free_port()
    env = {**os.environ, "PHOENIX_HOST": "127.0.0.1", "PHOENIX_GRPC_PORT": str(grpc_port), "PHOENIX_PORT": str(http_port),
           "PHOENIX_WORKING_DIR": str(workdir), "PHOENIX_TELEMETRY_ENABLED": "false",
           "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false"}
    log = open(workdir.parent / "phoenix.log", "wb")
    proc = subprocess.Popen([str(exe), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{http_port}"
    db = workdir / "phoenix.db"
    try:
        _wait_http(base + "/healthz", 120)
        cpu0 = process_cpu(proc.pid)
        c = loadgen.LoadConfig(**{**cfg.__dict__, "target": f"127.0.0.1:{grpc_port}", "max_requests": 0,
                                  "retry_past_deadline": False, "timeout_s": 30})
        load = loadgen.run(c, templates)
        window = time.time() - load.first_send
        stored = _count(db)
        cpu_window = process_cpu(proc.pid) - cpu0
        t_end, drained = time.time(), stored
        while time.time() - t_end < drain_s:
            time.sleep(2)
            drained = _count(db)
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            tids = [r[0] for r in conn.execute("SELECT trace_id FROM traces ORDER BY random() LIMIT ?", (lookups,))]
        samples, n_spans = [], []
        for tid in tids:
            t0 = time.perf_counter()
            with urllib.request.urlopen(f"{base}/v1/projects/default/spans?trace_id={tid}&limit=1000", timeout=30) as r:
                body = json.loads(r.read())
            samples.append((time.perf_counter() - t0) * 1e3)
            n_spans.append(len(body.get("data", [])))
        status = proc_status(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    return {
        "load": load.summary(),
        "load_window_s": round(window, 2),
        "spans_stored_in_window": stored,
        "stored_spans_per_s": round(stored / window, 1),
        "spans_stored_after_drain": drained, "drain_s": drain_s,
        "acked_not_stored_at_end": load.spans_acked - drained,
        "cpu_cores_in_window": round(cpu_window / window, 2),
        "cpu_ms_per_stored_span": round(cpu_window / max(stored, 1) * 1e3, 2),
        "peak_rss_mib": round(status["VmHWM"] / 2**20, 1),
        "one_trace_rest": {**(_stats(samples) if samples else {}), "spans_per_trace_avg": round(sum(n_spans) / max(len(n_spans), 1), 1)},
        "store_spans_at_lookup": drained,
    }
