"""Memory ceiling and a full disk: UNAVAILABLE with RetryInfo, never OK-then-drop, never a crash."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import grpc
from collector_support import RawClient, make_span, new_request


def _spawn(tmp_path: Path, config: str, preexec=None) -> tuple[subprocess.Popen, dict]:
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    (data_dir / "collector.json").unlink(missing_ok=True)
    (tmp_path / "c.yaml").write_text(config)
    proc = subprocess.Popen([sys.executable, "-m", "spanledger.collector.cli", "--log-level", "error", "collector",
                             "--config", str(tmp_path / "c.yaml"), "--data-dir", str(data_dir),
                             "--grpc-endpoint", "127.0.0.1:0", "--api-endpoint", "127.0.0.1:0"],
                            preexec_fn=preexec, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (data_dir / "collector.json").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()
        time.sleep(0.05)
    return proc, json.loads((data_dir / "collector.json").read_text())


def _count(api: str) -> int:
    body = json.dumps({"query": "SELECT count() FROM spanledger.otel_traces"}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{api}/v1/sql", data=body), timeout=30) as response:
        return json.loads(response.read())["rows"][0][0]


def _wait_count(api: str, expected: int, timeout: float = 90) -> int:
    deadline = time.monotonic() + timeout
    while (n := _count(api)) < expected and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    return _count(api)


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def _payload(spans: int, blob: int) -> bytes:
    request, scope = new_request("flood")
    for _ in range(spans):
        make_span(scope, "flood", attributes={"blob": os.urandom(blob // 2).hex()})
    return request.SerializeToString()


def _send_with_retries(address: str, payloads: list[bytes], outcome: dict, lock: threading.Lock) -> None:
    client = RawClient(address)
    for payload in payloads:
        while True:
            try:
                client.export(payload, timeout=60)
                with lock:
                    outcome["ok"] += 1
                break
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.UNAVAILABLE, err
                trailers = dict(err.trailing_metadata() or ())
                assert "google.rpc.retryinfo-bin" in trailers
                with lock:
                    outcome["unavailable"] += 1
                time.sleep(0.05)


def test_memory_flood_is_refused_with_retry_info_and_nothing_is_lost(tmp_path):
    probe, _ = _spawn(tmp_path, "processors: {batch: {timeout: 100ms}}\n")
    baseline = _peak_rss_mib(probe.pid)  # an idle collector: the engine, gRPC, Python
    probe.send_signal(signal.SIGTERM)
    probe.wait(timeout=60)
    limit = int(baseline) + 120
    proc, info = _spawn(tmp_path, f"processors: {{batch: {{timeout: 100ms}}, memory_limiter: {{limit_mib: {limit}, check_interval: 10ms}}}}\n"
                                  "receivers: {otlp: {protocols: {grpc: {max_concurrent_streams: 16}}}}\n")
    try:
        payloads = [_payload(400, 4000) for _ in range(48)]  # ~1.6 MB each, 48 in flight from 12 clients
        outcome, lock = {"ok": 0, "unavailable": 0}, threading.Lock()
        threads = [threading.Thread(target=_send_with_retries, args=(info["grpc"], payloads[k::12], outcome, lock))
                   for k in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert outcome["ok"] == len(payloads) and outcome["unavailable"] > 0
        assert _wait_count(info["api"], len(payloads) * 400) == len(payloads) * 400
        # Bounded, not exact: grpc receives a whole message before the handler can refuse it,
        # and freed memory is not returned to the OS at once.  Measured overshoot: 150-210 MiB
        # with 12 clients sending 1.6 MB requests (without the limiter the same flood is unbounded).
        assert _peak_rss_mib(proc.pid) < limit + 250, (baseline, limit, _peak_rss_mib(proc.pid))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (3 << 20, 3 << 20))


def test_a_full_disk_answers_unavailable_and_every_acknowledged_span_survives(tmp_path):
    config = "processors: {batch: {timeout: 3s}}\n"
    proc, info = _spawn(tmp_path, config, preexec=_limit_file_size)
    acked, refused = 0, 0
    try:
        client = RawClient(info["grpc"])
        for _ in range(12):
            try:
                client.export(_payload(100, 4000), timeout=30)  # ~400 KB: a 3 MiB segment fills after ~7
                acked += 1
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.UNAVAILABLE and "write-ahead log" in err.details()
                refused += 1
        assert acked >= 5 and refused >= 1 and proc.poll() is None  # refused, not crashed
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    proc, info = _spawn(tmp_path, config)  # the disk has room again
    try:
        assert _wait_count(info["api"], acked * 100) == acked * 100
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
