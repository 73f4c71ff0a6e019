"""Admission control: keep the process under its memory ceiling, like the Collector's memory_limiter."""

from __future__ import annotations

import os
import threading
import time

from ..errors import Overloaded


class AdmissionControl:
    """Keeps the process under its memory ceiling, like the Collector's memory_limiter.

    A request is refused (UNAVAILABLE + RetryInfo) when the process's resident
    memory, sampled at most every ``sample_interval_s``, plus what requests in
    flight will take (a parsed request costs a few times its wire size) would
    pass ``limit_bytes``.  The in-flight part covers the gap between samples.
    """

    OVERHEAD = 4

    def __init__(self, limit_bytes: int, sample_interval_s: float = 0.1) -> None:
        self.limit_bytes = limit_bytes
        self.sample_interval_s = sample_interval_s
        self._in_flight = 0
        self._rss = 0
        self._sampled_at = 0.0
        self._lock = threading.Lock()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def _resident(self) -> int:
        now = time.monotonic()
        if now - self._sampled_at >= self.sample_interval_s:
            try:
                with open("/proc/self/statm", "rb") as f:
                    self._rss = int(f.read().split()[1]) * self._page
            except OSError:  # not Linux: in-flight accounting alone
                self._rss = 0
            self._sampled_at = now
        return self._rss

    def admit(self, size: int) -> int:
        cost = size * self.OVERHEAD
        with self._lock:
            projected = self._resident() + self._in_flight + cost
            if projected > self.limit_bytes:
                raise Overloaded(
                    f"collector memory limit reached ({projected >> 20} MiB with this request, "
                    f"limit {self.limit_bytes >> 20} MiB): retry later", retry_after_s=1.0)
            self._in_flight += cost
        return cost

    def release(self, cost: int) -> None:
        with self._lock:
            self._in_flight -= cost

    def reserve(self, cost: int) -> int:
        """Count memory the store is about to use (a segment insert) without refusing it."""
        with self._lock:
            self._in_flight += cost
        return cost
