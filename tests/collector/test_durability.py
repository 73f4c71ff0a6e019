"""Acknowledged means stored: SIGKILL under load, restart, retries — exact counts, no duplicates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import grpc
from collector_support import RawClient, make_span, new_request

SPANS_PER_REQUEST = 50


def _start(data_dir: Path) -> tuple[subprocess.Popen, dict]:
    (data_dir / "collector.json").unlink(missing_ok=True)
    config = data_dir.parent / "fast.yaml"
    config.write_text("processors:\n  batch:\n    timeout: 50ms\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "spanledger.collector.cli", "--log-level", "warning", "collector", "--config", str(config),
         "--data-dir", str(data_dir), "--grpc-endpoint", "127.0.0.1:0", "--api-endpoint", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (data_dir / "collector.json").exists():
            return proc, json.loads((data_dir / "collector.json").read_text())
        if proc.poll() is not None:
            raise AssertionError(f"collector exited: {proc.stderr.read().decode()}")
        time.sleep(0.05)
    raise AssertionError("collector did not start")


def _sql(api: str, query: str) -> list:
    request = urllib.request.Request(f"{api}/v1/sql", data=json.dumps({"query": query}).encode())
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["rows"]


def _payloads(n: int) -> list[bytes]:
    out = []
    for i in range(n):
        request, scope = new_request("durability")
        trace_id = os.urandom(16)
        for j in range(SPANS_PER_REQUEST):
            make_span(scope, f"r{i}-s{j}", trace_id=trace_id, attributes={"gen_ai.request.model": "gpt-4o",
                      "gen_ai.provider.name": "openai", "gen_ai.usage.input_tokens": 10, "blob": "x" * 200})
        out.append(request.SerializeToString())
    return out


def _wait_count(api: str, expected: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    count = -1
    while time.monotonic() < deadline:
        count = _sql(api, "SELECT count() FROM spanledger.otel_traces")[0][0]
        if count >= expected:
            time.sleep(0.5)  # anything more would be a duplicate: give it time to show up
            return _sql(api, "SELECT count() FROM spanledger.otel_traces")[0][0]
        time.sleep(0.1)
    return count


def test_sigkill_under_load_loses_no_acknowledged_span_and_retries_add_no_duplicates(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    payloads = _payloads(120)
    acked: set[int] = set()
    proc, info = _start(data_dir)
    lock = threading.Lock()

    def sender(indices):
        client = RawClient(info["grpc"])
        for i in indices:
            try:
                client.export(payloads[i], timeout=10)
                with lock:
                    acked.add(i)
            except grpc.RpcError:
                pass

    threads = [threading.Thread(target=sender, args=(range(k, len(payloads), 4),)) for k in range(4)]
    for t in threads:
        t.start()
    while len(acked) < 40:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)  # mid-load: requests in flight, segments unsealed
    proc.wait()
    for t in threads:
        t.join()
    acked_before_kill = set(acked)
    assert 40 <= len(acked_before_kill) < len(payloads)

    proc, info = _start(data_dir)
    try:
        # every acknowledged span survived the kill
        assert _wait_count(info["api"], len(acked_before_kill) * SPANS_PER_REQUEST) >= len(acked_before_kill) * SPANS_PER_REQUEST
        # clients retry everything they are unsure of — and, to be hard, everything else too
        client = RawClient(info["grpc"])
        for payload in payloads:
            client.export(payload, timeout=30)
        total = len(payloads) * SPANS_PER_REQUEST
        assert _wait_count(info["api"], total) == total
        n, unique = _sql(info["api"], "SELECT count(), uniqExact(TraceId, SpanId) FROM spanledger.otel_traces")[0]
        assert n == unique == total
        # the rollups agree: no duplicate reached them either
        assert _sql(info["api"], "SELECT sum(Spans) FROM spanledger.spanledger_usage_hourly")[0][0] == total
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0  # graceful shutdown exits 0


def test_sigterm_drains_everything_acknowledged(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    proc, info = _start(data_dir)
    client = RawClient(info["grpc"])
    payloads = _payloads(20)
    for payload in payloads:
        client.export(payload)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    assert not list((data_dir / "wal").glob("*.wal")) and not list((data_dir / "wal").glob("*.open"))
    proc, info = _start(data_dir)
    try:
        assert _sql(info["api"], "SELECT count() FROM spanledger.otel_traces")[0][0] == 20 * SPANS_PER_REQUEST
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def test_spans_of_new_models_parked_by_concurrent_writers_are_all_stored_once(collector_factory):
    """Each request brings a model never seen before, so its spans are parked and re-ingested once
    priced, while another writer is loading (and parking) the next segment."""
    from collector_support import rows, wait_stored

    collector = collector_factory("processors: {batch: {timeout: 20ms}}\n"
                                  "exporters: {clickhouse: {sending_queue: {num_consumers: 2}}}\n")
    payloads = []
    for i in range(40):
        request, scope = new_request("new-models")
        for j in range(25):
            make_span(scope, f"m{i}-{j}", attributes={"gen_ai.provider.name": "acme", "gen_ai.request.model": f"acme-model-{i}",
                                                      "gen_ai.usage.input_tokens": 10})
        payloads.append(request.SerializeToString())
    threads = [threading.Thread(target=lambda chunk=payloads[k::4]: [RawClient(collector.server.address).export(p) for p in chunk])
               for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_stored(collector, 1000)
    time.sleep(0.5)
    assert rows(collector, "SELECT count() AS n, uniqExact(TraceId, SpanId) AS u, countIf(CostSource = 'unknown_model') AS unknown "
                           "FROM spanledger.otel_traces")[0] == {"n": 1000, "u": 1000, "unknown": 1000}
    assert rows(collector, "SELECT sum(Spans) AS n FROM spanledger.spanledger_usage_hourly")[0]["n"] == 1000
