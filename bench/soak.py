"""Soak: load for minutes while the collector is SIGKILLed and restarted at random moments.

The suite's fault tests kill once, briefly; this runs the same check long
enough to hit the rare windows (mid-fsync, mid-seal, mid-insert, between the
insert and the segment's bookkeeping).  Senders behave like the OTel SDK
exporter: a request that got no answer is sent again, identical, until it is
acknowledged.  At the end every acknowledged span must be stored exactly once:
``count() == uniqExact(TraceId, SpanId) == spans acknowledged``.

    .venv/bin/python -m bench.soak --minutes 10 --kill-every 5-20
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import tempfile
import threading
import time
from pathlib import Path

import grpc

from bench.collector_proc import Collector
from bench.payloads import make_pool

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class Sender(threading.Thread):
    """Sends unique requests; retries each until acknowledged, whatever happens to the collector."""

    def __init__(self, target: callable, pool, first_id: int, stride: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.target, self.pool, self.next_id, self.stop_event = target, pool, first_id, stop
        self.stride = stride
        self.acked_spans = 0
        self.retries = 0

    def run(self) -> None:
        while not self.stop_event.is_set():
            template = self.pool[self.next_id % len(self.pool)]
            payload = template.stamp(self.next_id)
            self.next_id += self.stride  # sender k sends copies k, k+n, k+2n...: ids never collide
            while True:
                try:
                    channel = grpc.insecure_channel(self.target())
                    channel.unary_unary(EXPORT)(payload, timeout=30)
                    channel.close()
                    self.acked_spans += template.spans
                    break
                except grpc.RpcError:
                    self.retries += 1
                    time.sleep(0.2)
                except Exception:  # the collector is between lives: no address yet
                    self.retries += 1
                    time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--kill-every", default="5-20", help="seconds between kills, a range (default 5-20)")
    parser.add_argument("--senders", type=int, default=3)
    parser.add_argument("--spans-per-request", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "soak.json")
    args = parser.parse_args(argv)
    low, high = (float(x) for x in args.kill_every.split("-"))

    data_dir = Path(tempfile.mkdtemp(prefix="spanledger-soak-")) / "data"
    pool = make_pool(n_templates=4, spans_per_request=args.spans_per_request)
    collector = Collector(data_dir).start()
    address = {"grpc": collector.grpc}
    stop = threading.Event()
    senders = [Sender(lambda: address["grpc"], pool, i, args.senders, stop) for i in range(args.senders)]
    for sender in senders:
        sender.start()
    kills = 0
    deadline = time.monotonic() + args.minutes * 60
    while time.monotonic() < deadline:
        time.sleep(random.uniform(low, high))
        collector.proc.send_signal(signal.SIGKILL)
        collector.proc.wait()
        kills += 1
        collector = Collector(data_dir).start()
        address["grpc"] = collector.grpc
    stop.set()
    for sender in senders:
        sender.join(120)
    acked = sum(s.acked_spans for s in senders)
    deadline = time.monotonic() + 300
    while collector.scalar("SELECT count() FROM spanledger.otel_traces") < acked and time.monotonic() < deadline:
        time.sleep(1)
    time.sleep(2)
    rows = collector.sql("SELECT count(), uniqExact(TraceId, SpanId) FROM spanledger.otel_traces")["rows"][0]
    collector.stop()
    result = {"minutes": args.minutes, "kills": kills, "acked_spans": acked, "stored": rows[0], "unique": rows[1],
              "retries": sum(s.retries for s in senders), "ok": rows[0] == rows[1] == acked}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
