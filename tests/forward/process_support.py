"""A destination collector in its own process (the embedded engine admits one data directory per process,
so collector A runs in the test process and every destination beside it runs here)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


class CollectorProcess:
    """`spanledger collector` as a subprocess; read through its query API."""

    def __init__(self, directory: Path, config_text: str = "processors:\n  batch:\n    timeout: 100ms\n",
                 grpc_port: int = 0, token: str | None = None) -> None:
        self.directory = directory
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.data_dir = directory / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "collector.json").unlink(missing_ok=True)
        (directory / "config.yaml").write_text(config_text)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "spanledger.collector.cli", "--log-level", "error", "collector",
             "--config", str(directory / "config.yaml"), "--data-dir", str(self.data_dir),
             "--grpc-endpoint", f"127.0.0.1:{grpc_port}", "--http-endpoint", "127.0.0.1:0",
             "--api-endpoint", "127.0.0.1:0"], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 90
        while not (self.data_dir / "collector.json").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"destination collector did not start: {self.proc.stderr.read().decode()}")
            time.sleep(0.05)
        info = json.loads((self.data_dir / "collector.json").read_text())
        self.grpc_address, self.http_url, self.api_url = info["grpc"], info["http"], info["api"]

    def sql(self, query: str) -> list[dict]:
        body = json.dumps({"query": query}).encode()
        with urllib.request.urlopen(urllib.request.Request(f"{self.api_url}/v1/sql", data=body, headers=self.headers), timeout=30) as r:
            result = json.loads(r.read())
        return [dict(zip(result["columns"], row)) for row in result["rows"]]

    def stats(self) -> dict:
        with urllib.request.urlopen(urllib.request.Request(f"{self.api_url}/v1/stats", headers=self.headers), timeout=30) as r:
            return json.loads(r.read())

    def count(self) -> int:
        return self.sql("SELECT count() AS n FROM spanledger.otel_traces")[0]["n"]

    def wait_count(self, expected: int, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while (n := self.count()) < expected:
            assert time.monotonic() < deadline, f"destination has {n} spans, expected {expected}"
            time.sleep(0.1)
        return n

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
