"""Run the real collector as a subprocess and watch it from outside.

Why from outside: the benchmark must measure the collector as shipped (its
CLI, its defaults, durability on), and the embedded store admits one process,
so everything we read goes through its HTTP API.  CPU and memory come from
/proc: total CPU, peak RSS (VmHWM, exact, not sampled) and CPU per thread
name, which splits the work between gRPC, Python and the ClickHouse engine's
own threads without a profiler.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_of(stat_line: str) -> tuple[str, float]:
    """(thread name, user+system seconds) from a /proc/.../stat line."""
    name = stat_line[stat_line.index("(") + 1: stat_line.rindex(")")]
    fields = stat_line[stat_line.rindex(")") + 2:].split()
    return name, (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread name (threads of one name summed; dead threads are lost, see process_cpu)."""
    out: dict[str, float] = defaultdict(float)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name, cpu = _cpu_of((task / "stat").read_text())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
        out[name] += cpu
    return dict(out)


def process_cpu(pid: int) -> float:
    """User+system CPU seconds of the process, threads that already exited included."""
    return _cpu_of(Path(f"/proc/{pid}/stat").read_text())[1]


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (peak RSS) in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "Threads"):
            parts = value.split()
            out[key] = int(parts[0]) * (1024 if len(parts) > 1 else 1)
    return out


class Collector:
    """``spanledger collector`` on loopback ports and a data directory of its own."""

    def __init__(self, data_dir: Path, extra_args: list[str] | None = None, log_path: Path | None = None):
        self.data_dir = Path(data_dir)
        self.grpc_port, self.api_port = free_port(), free_port()
        self.extra_args = extra_args or []
        self.log_path = log_path or self.data_dir.parent / f"{self.data_dir.name}-collector.log"
        self.proc: subprocess.Popen | None = None
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.grpc = f"127.0.0.1:{self.grpc_port}"

    def start(self, timeout_s: float = 120.0) -> Collector:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        info = self.data_dir / "collector.json"
        info.unlink(missing_ok=True)
        cmd = [str(VENV_BIN / "spanledger"), "collector", "--grpc-endpoint", self.grpc,
               "--data-dir", str(self.data_dir), "--api-endpoint", f"127.0.0.1:{self.api_port}", *self.extra_args]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"collector exited with {self.proc.returncode}; see {self.log_path}")
            if info.exists():
                try:
                    meta = json.loads(info.read_text())
                    self.api = meta.get("api", self.api).rstrip("/")
                    self.grpc = meta.get("grpc", self.grpc)
                    break
                except json.JSONDecodeError:
                    pass
            time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError(f"collector not ready after {timeout_s}s; see {self.log_path}")
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _http(self, path: str, body: dict | None = None, timeout: float = 120.0) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.api + path, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())

    def sql(self, query: str, parameters: dict | None = None) -> dict:
        return self._http("/v1/sql", {"query": query, "parameters": parameters or {}})

    def scalar(self, query: str, parameters: dict | None = None):
        return self.sql(query, parameters)["rows"][0][0]

    def stats(self) -> dict:
        return self._http("/v1/stats")

    def stop(self, timeout_s: float = 300.0) -> int | None:
        """SIGTERM (graceful drain); returns the exit code."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self._log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
