"""Live feed delay: stored -> delivered, p50/p95, at 10k spans/s of ingest (a short run).

    .venv/bin/python bench/bench_feed.py [--rate 10000] [--duration 15] [--subscribers 20] [--out bench/results/feed.json]

The collector (defaults, durability on) runs in this process so the feed hub's
"segment stored" time (time.monotonic(), CLOCK_MONOTONIC, shared by every
process on the machine) can be read for each event id; the subscribers run in
a separate process over real SSE connections (raw sockets, only the `id:`
lines found, by one regular expression per read, so the client costs little) and record when each event arrived.
Half the subscribers follow everything, half one agent.  Load: pre-encoded
1000-span OTLP requests (bench/payloads.py), paced to ``--rate``.

Reported: stored -> delivered p50/p95/p99/max over every (event, subscriber),
events per subscriber, spans stored, and the collector's feed counters.  The
figure includes the hub's query per round and the client's receive: it is
what a subscriber sees after its span is in the table.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


ID_LINE = re.compile(rb"^id: (\d+)$", re.MULTILINE)


def _subscriber_process(port: int, paths: list[str], go, stop, out) -> None:
    """Open one SSE connection per path; record (event id, arrival monotonic) for each `id:` line."""
    import selectors

    sel = selectors.DefaultSelector()
    got: list[list[tuple[int, float]]] = []
    for i, path in enumerate(paths):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, (i, bytearray()))
        got.append([])
    go.set()
    while not stop.is_set():
        for key, _ in sel.select(0.2):
            index, pending = key.data
            chunk = key.fileobj.recv(1 << 20)
            if not chunk:
                sel.unregister(key.fileobj)
                continue
            now = time.monotonic()
            pending += chunk
            cut = pending.rfind(b"\n") + 1  # a line split across reads waits for its end
            got[index].extend((int(i), now) for i in ID_LINE.findall(pending, 0, cut))
            del pending[:cut]
    out.put(got)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=10_000, help="spans per second offered")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of load")
    parser.add_argument("--subscribers", type=int, default=20)
    parser.add_argument("--out", default="bench/results/feed.json")
    args = parser.parse_args(argv)

    import grpc
    import uvicorn
    from fastapi import FastAPI

    from bench.payloads import make_pool
    from spanledger.collector.app import Collector, Overrides
    from spanledger.collector.auth import TokenAuth
    from spanledger.collector.config import load_config
    from spanledger.collector.serve import feed as feed_router

    workdir = Path(tempfile.mkdtemp(prefix="spanledger-bench-feed-"))
    config = load_config(text="extensions:\n  spanledger_api:\n    feed:\n      replay_buffer: 2000000\n"
                              "      max_subscribers_per_token: 1000\n")
    collector = Collector(config, Overrides(grpc_endpoint="127.0.0.1:0", api_endpoint="127.0.0.1:0",
                                            data_dir=str(workdir / "data")))
    collector.start()
    app = FastAPI()
    app.state.collector, app.state.auth = collector, TokenAuth({})
    app.include_router(feed_router.router)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]

    pool = make_pool(4, 1000)
    agents = ["planner", "coder", "reviewer", "researcher"]  # among bench/payloads.py AGENTS
    paths = [("/v1/feed" if i % 2 == 0 else f"/v1/feed?agent={agents[i // 2 % len(agents)]}")
             for i in range(args.subscribers)]
    ctx = mp.get_context("spawn")
    go, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_subscriber_process, args=(port, paths, go, stop, out), daemon=True)
    proc.start()
    go.wait(60)
    deadline = time.monotonic() + 30
    while collector.feed.subscriber_count() < args.subscribers and time.monotonic() < deadline:
        time.sleep(0.05)

    channel = grpc.insecure_channel(collector.server.address)
    export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
    per_request = pool[0].spans
    interval = per_request / args.rate
    sent = refused = 0
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < args.duration:
        due = start + n * interval
        if due > time.monotonic():
            time.sleep(due - time.monotonic())
        request = pool[n % len(pool)].stamp(n + 1, nonce=7)
        while True:  # as an OTLP client does: UNAVAILABLE (memory limiter, busy) means retry shortly
            try:
                export(request, timeout=60)
                break
            except grpc.RpcError as exc:
                if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
                    raise
                refused += 1
                time.sleep(0.1)
        sent += pool[n % len(pool)].spans
        n += 1
    offered_s = time.monotonic() - start
    time.sleep(3.0)  # the last segments: stored, then delivered
    stop.set()
    got = out.get(timeout=60)
    proc.join(10)

    with collector.feed._lock:
        stored_at = {e.id: e.stored_at for e in collector.feed._buffer}
    delays = [(arrived - stored_at[event_id]) * 1000 for per_sub in got for event_id, arrived in per_sub
              if event_id in stored_at]
    stats = collector.stats_snapshot()
    stored = collector.store().query("SELECT count() FROM spanledger.otel_traces").result_rows[0][0]
    server.should_exit = True
    collector.stop(timeout_s=30)
    delays.sort()

    def pct(p: float) -> float:
        return round(delays[min(len(delays) - 1, int(p * len(delays)))], 1) if delays else float("nan")

    result = {
        "rate_offered_spans_s": args.rate, "rate_achieved_spans_s": round(sent / offered_s),
        "duration_s": args.duration, "subscribers": args.subscribers, "spans_sent": sent, "exports_refused_then_retried": refused, "spans_stored": stored,
        "deliveries": len(delays), "events_per_subscriber": [len(s) for s in got],
        "stored_to_delivered_ms": {"p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99),
                                   "max": round(delays[-1], 1) if delays else None,
                                   "mean": round(statistics.fmean(delays), 1) if delays else None},
        "feed": {k: v for k, v in stats.items() if k.startswith("feed_")},
        "segments_stored": stats["segments_stored"],
    }
    print(json.dumps(result, indent=2))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
