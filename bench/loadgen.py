"""OTLP/gRPC load generator that can out-run the collector.

Why this shape:
* separate processes (multiprocessing, spawn) so the sender's CPU is never the
  collector's and one GIL does not cap the load;
* raw-bytes unary calls (``channel.unary_unary`` with identity serializers):
  requests are pre-serialized templates re-stamped with fresh ids
  (bench.payloads), never re-encoded;
* backpressure is honoured, not counted as loss: UNAVAILABLE /
  RESOURCE_EXHAUSTED are retried after the server's RetryInfo delay (or an
  exponential backoff when it gives none), and every retry is counted, so
  "acked" means the collector took responsibility for those spans.

Each worker process runs ``concurrency`` threads, each with one request in
flight.  Results are wall-clock based (time.time) so the parent can line them
up with what it polls from the collector.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import random
import threading
import time
from dataclasses import asdict, dataclass, field

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
RETRYABLE = ("UNAVAILABLE", "RESOURCE_EXHAUSTED")


@dataclass
class LoadConfig:
    target: str  # host:port of an OTLP/gRPC receiver
    processes: int = 1
    concurrency: int = 4  # requests in flight per process
    duration_s: float = 10.0  # stop starting new requests after this
    max_requests: int = 0  # 0: unlimited (duration decides); else total over all processes
    spans_per_request: int = 1000
    templates: int = 8
    seed: int = 1
    nonce: int = 0  # high bytes of every trace id: distinct runs into one store never collide
    timeout_s: float = 60.0
    max_attempts: int = 1000  # per request, retries included
    shift_days: float = 0.0  # spread copies' timestamps back over this many days (0: all "now")
    start_ns: int | None = None  # template base time (default: an hour ago)
    retry_past_deadline: bool = True  # False: a request still refused at the deadline is abandoned (peer runs)


@dataclass
class LoadResult:
    requests_acked: int = 0
    spans_acked: int = 0
    requests_sent: int = 0  # distinct requests attempted at least once
    attempts: int = 0
    retries: int = 0  # attempts answered retryable (UNAVAILABLE/RESOURCE_EXHAUSTED) and sent again
    retry_wait_s: float = 0.0
    deadline_retries: int = 0
    rejected_requests: int = 0  # answered a non-retryable error (or gave up): never acknowledged
    rejected_spans: int = 0
    errors: dict = field(default_factory=dict)
    first_send: float = 0.0
    last_ack: float = 0.0
    latencies_ms: list = field(default_factory=list)

    def merge(self, other: LoadResult) -> None:
        for name in ("requests_acked", "spans_acked", "requests_sent", "attempts", "retries", "retry_wait_s",
                     "deadline_retries", "rejected_requests", "rejected_spans"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for k, v in other.errors.items():
            self.errors[k] = self.errors.get(k, 0) + v
        self.first_send = min(x for x in (self.first_send, other.first_send) if x) if (self.first_send or other.first_send) else 0.0
        self.last_ack = max(self.last_ack, other.last_ack)
        self.latencies_ms.extend(other.latencies_ms)

    def summary(self) -> dict:
        d = asdict(self)
        lat = sorted(d.pop("latencies_ms"))
        if lat:
            d["latency_p50_ms"] = round(lat[len(lat) // 2], 2)
            d["latency_p95_ms"] = round(lat[int(len(lat) * 0.95)], 2)
        span = self.last_ack - self.first_send
        d["send_window_s"] = round(span, 3)
        d["acked_spans_per_s"] = round(self.spans_acked / span, 1) if span > 0 else 0.0
        return d


def _retry_delay(err) -> float | None:
    """The server's RetryInfo delay in seconds, if it sent one."""
    try:
        from google.rpc import error_details_pb2
        from grpc_status import rpc_status

        status = rpc_status.from_call(err)
        if status is None:
            return None
        for detail in status.details:
            if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info = error_details_pb2.RetryInfo()
                detail.Unpack(info)
                return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    except Exception:  # malformed details: fall back to backoff
        return None
    return None


def _worker(cfg: LoadConfig, index: int, templates: list[bytes], go, out) -> None:
    import grpc

    from bench.payloads import Template

    pool = [Template(t) for t in templates]
    channel = grpc.insecure_channel(cfg.target, options=[("grpc.max_send_message_length", 64 << 20),
                                                           ("grpc.max_receive_message_length", 64 << 20)])
    export = channel.unary_unary(EXPORT_METHOD, request_serializer=None, response_deserializer=None)
    result = LoadResult()
    lock = threading.Lock()
    counter = itertools.count()
    quota = (cfg.max_requests // cfg.processes + (index < cfg.max_requests % cfg.processes)) if cfg.max_requests else 0
    rng = random.Random(cfg.seed * 7919 + index)
    go.wait()
    deadline = time.time() + cfg.duration_s

    def one_thread() -> None:
        while True:
            n = next(counter)
            if (quota and n >= quota) or (not quota and time.time() >= deadline):
                return
            copy_id = 1 + index + cfg.processes * n  # unique over the run, < 2**32
            tpl = pool[n % len(pool)]
            shift = -int(rng.random() * cfg.shift_days * 86400e9) if cfg.shift_days else 0
            body = tpl.stamp(copy_id, shift, nonce=cfg.nonce)
            attempts, backoff = 0, 0.05
            with lock:
                result.requests_sent += 1
                if not result.first_send:
                    result.first_send = time.time()
            while True:
                attempts += 1
                t0 = time.time()
                try:
                    export(body, timeout=cfg.timeout_s)
                    t1 = time.time()
                    with lock:
                        result.attempts += 1
                        result.requests_acked += 1
                        result.spans_acked += tpl.spans
                        result.last_ack = max(result.last_ack, t1)
                        result.latencies_ms.append((t1 - t0) * 1e3)
                    break
                except grpc.RpcError as err:
                    code = err.code().name if err.code() else "UNKNOWN"
                    retry = code in RETRYABLE or code == "DEADLINE_EXCEEDED"
                    delay = _retry_delay(err) if retry else None
                    with lock:
                        result.attempts += 1
                        result.errors[code] = result.errors.get(code, 0) + 1
                        if retry and attempts < cfg.max_attempts:
                            result.retries += 1
                            result.deadline_retries += code == "DEADLINE_EXCEEDED"
                        else:
                            result.rejected_requests += 1
                            result.rejected_spans += tpl.spans
                    if retry and not cfg.retry_past_deadline and time.time() >= deadline:
                        with lock:
                            result.retries -= 1
                            result.rejected_requests += 1
                            result.rejected_spans += tpl.spans
                            result.errors["ABANDONED_AT_DEADLINE"] = result.errors.get("ABANDONED_AT_DEADLINE", 0) + 1
                        break
                    if not retry or attempts >= cfg.max_attempts:
                        break
                    wait = delay if delay is not None else backoff
                    backoff = min(backoff * 2, 2.0)
                    with lock:
                        result.retry_wait_s += wait
                    time.sleep(wait)

    threads = [threading.Thread(target=one_thread, daemon=True) for _ in range(cfg.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    channel.close()
    out.put(result)


def build_templates(cfg: LoadConfig) -> list[bytes]:
    from bench.payloads import make_pool

    return [t.data for t in make_pool(cfg.templates, cfg.spans_per_request, cfg.seed, cfg.start_ns)]


def run(cfg: LoadConfig, templates: list[bytes] | None = None, on_start=None) -> LoadResult:
    """Run the load to completion from ``cfg.processes`` fresh processes; ``on_start()`` fires at the go signal."""
    templates = templates or build_templates(cfg)
    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(cfg, i, templates, go, out), daemon=True) for i in range(cfg.processes)]
    for p in procs:
        p.start()
    time.sleep(0.5 + 0.3 * cfg.processes)  # let workers import grpc and index templates before the clock starts
    if on_start:
        on_start()
    go.set()
    total = LoadResult()
    for _ in procs:
        total.merge(out.get())
    for p in procs:
        p.join()
    return total


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", required=True)
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--max-requests", type=int, default=0)
    ap.add_argument("--spans-per-request", type=int, default=1000)
    a = ap.parse_args(argv)
    res = run(LoadConfig(a.target, a.processes, a.concurrency, a.duration, a.max_requests, a.spans_per_request))
    print(json.dumps(res.summary(), indent=2))


if __name__ == "__main__":
    main()
