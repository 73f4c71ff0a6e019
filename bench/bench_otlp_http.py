"""OTLP/HTTP beside OTLP/gRPC, and forwarding to one destination beside none — one short run, ratios only.

Each phase starts a fresh `spanledger collector` (subprocess, defaults, fsync on), sends the same realistic
1000-span requests (bench/payloads.py) from ``--senders`` threads for ``--duration`` seconds, then waits
until every acknowledged span is committed (and, with a destination, delivered):

  grpc      raw-bytes TraceService/Export                       (the reference)
  http      POST /v1/traces, application/x-protobuf, keep-alive
  forward   gRPC in, plus an otlp/ exporter to bench/standin.py (a TraceService that only counts)

    .venv/bin/python -m bench.bench_otlp_http [--duration 12] [--senders 4]

Figures: committed spans/s = acked spans / (last commit - first send); collector CPU per span from /proc.
The machine drifts by a third between runs: read the ratios printed at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import grpc

from .collector_proc import free_port, process_cpu
from .payloads import make_pool

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class _Proc:
    def __init__(self, workdir: Path, name: str, config: str) -> None:
        self.data = workdir / name
        self.data.mkdir(parents=True)
        (workdir / f"{name}.yaml").write_text(config)
        self.log = open(workdir / f"{name}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "spanledger.collector.cli", "--log-level", "warning", "collector",
             "--config", str(workdir / f"{name}.yaml"), "--data-dir", str(self.data),
             "--grpc-endpoint", "127.0.0.1:0", "--http-endpoint", "127.0.0.1:0", "--api-endpoint", "127.0.0.1:0"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while not (self.data / "collector.json").exists():
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"collector did not start; see {self.log.name}")
            time.sleep(0.1)
        time.sleep(0.2)
        self.info = json.loads((self.data / "collector.json").read_text())

    def api(self, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        with urllib.request.urlopen(urllib.request.Request(self.info["api"] + path, data=data), timeout=120) as r:
            return json.loads(r.read())

    def count(self) -> int:
        return self.api("/v1/sql", {"query": "SELECT count() FROM spanledger.otel_traces"})["rows"][0][0]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(120)
        self.log.close()


def _send_grpc(address: str):
    channel = grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 64 << 20)])
    call = channel.unary_unary(EXPORT)

    def send(body: bytes) -> float | None:
        try:
            call(body, timeout=60)
            return None
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
                return 0.5
            raise
    return send


def _send_http(url: str):
    host_port = url.split("://", 1)[1]
    host, port = host_port.rsplit(":", 1)
    local = threading.local()

    def send(body: bytes) -> float | None:
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection(host, int(port), timeout=60)
        local.conn.request("POST", "/v1/traces", body=body, headers={"Content-Type": "application/x-protobuf"})
        response = local.conn.getresponse()
        response.read()
        if response.status == 200:
            return None
        if response.status in (429, 503):
            return float(response.getheader("Retry-After", "1"))
        raise RuntimeError(f"HTTP {response.status}")
    return send


def _load(make_sender, pool, senders: int, duration: float) -> tuple[int, float]:
    """(spans acknowledged, time of the first send)."""
    acked = [0] * senders
    stop_at = time.time() + duration
    started = time.time()

    def worker(i: int) -> None:
        send = make_sender()
        n = 0
        while time.time() < stop_at:
            template = pool[(i + n) % len(pool)]
            body = template.stamp(copy_id=n * senders + i + 1, nonce=i + 1)
            n += 1
            while (delay := send(body)) is not None:
                time.sleep(delay)
            acked[i] += template.spans

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(acked), started


def _phase(name: str, workdir: Path, pool, senders: int, duration: float, config: str = "",
           transport: str = "grpc", forward_to: str | None = None) -> dict:
    proc = _Proc(workdir, name, config)
    try:
        cpu0 = process_cpu(proc.proc.pid)
        if transport == "grpc":
            make = lambda: _send_grpc(proc.info["grpc"])  # noqa: E731
        else:
            make = lambda: _send_http(proc.info["http"])  # noqa: E731
        acked, started = _load(make, pool, senders, duration)
        sent_done = time.time()
        while proc.count() < acked:
            time.sleep(0.25)
        committed_at = time.time()
        result = {"phase": name, "acked_spans": acked, "send_s": round(sent_done - started, 2),
                  "committed_spans_per_s": round(acked / (committed_at - started))}
        if forward_to:
            while (sent := proc.api("/v1/stats")["forwarding"][forward_to]["spans_sent"]) < acked:
                time.sleep(0.25)
            result["forwarded_spans_per_s"] = round(sent / (time.time() - started))
        result["collector_cpu_us_per_span"] = round((process_cpu(proc.proc.pid) - cpu0) / acked * 1e6, 1)
        return result
    finally:
        proc.stop()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=12.0)
    ap.add_argument("--senders", type=int, default=4)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--forward-compression", choices=("gzip", "none"), default="gzip",
                    help="the destination's compression (gzip is the Collector's default and costs CPU here)")
    args = ap.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="spanledger-bench-http-"))
    pool = make_pool(4)
    standin_port = free_port()
    standin = subprocess.Popen([sys.executable, "-m", "bench.standin", "--port", str(standin_port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    forward = (f"exporters:\n  otlp/standin: {{endpoint: '127.0.0.1:{standin_port}', tls: {{insecure: true}}, "
               f"compression: {args.forward_compression}}}\n"
               "service: {pipelines: {traces: {exporters: [clickhouse, otlp/standin]}}}\n")
    try:
        results = [_phase("grpc", workdir, pool, args.senders, args.duration),
                   _phase("http", workdir, pool, args.senders, args.duration, transport="http"),
                   _phase("forward", workdir, pool, args.senders, args.duration, config=forward,
                          forward_to="otlp/standin")]
    finally:
        standin.terminate()
        standin.wait()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    base = results[0]["committed_spans_per_s"]
    for r in results:
        print(json.dumps(r))
    print(f"http / grpc committed: {results[1]['committed_spans_per_s'] / base:.2f}; "
          f"one destination / none committed: {results[2]['committed_spans_per_s'] / base:.2f}; "
          f"forwarded / committed (with destination): "
          f"{results[2]['forwarded_spans_per_s'] / results[2]['committed_spans_per_s']:.2f}")


if __name__ == "__main__":
    main()
