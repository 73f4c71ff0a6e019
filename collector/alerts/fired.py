"""Which threshold crossings have fired, kept in a file so each fires once per window across restarts.

Each crossing is written (``fired``, not yet ``delivered``) before its webhook
is sent, and marked ``delivered`` once the receiver answered 2xx.  At start a
crossing that fired but was never delivered is sent again (same event id, so
a receiver that did get it before a crash can tell); one that was delivered is
never sent again.  The file is JSON in the data directory, mode 0600, replaced
atomically (write, fsync, rename).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
from pathlib import Path

log = logging.getLogger(__name__)

KEEP_DAYS = 62  # crossings of windows that started longer ago are forgotten


def crossing_key(budget: str, window_key: str, threshold: str) -> str:
    return f"{budget}|{window_key}|{threshold}"


class FiredLog:
    """Crossings by key -> {"fired_at", "delivered", "failed", "payload"}; thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._entries: dict[str, dict] = {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            self._entries = dict(data.get("crossings", {}))
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:  # a damaged file must not stop the collector; say so
            log.error("budget alerts: cannot read %s (%s); starting with no record of fired crossings", path, exc)

    def has(self, key: str) -> bool:
        with self._lock:
            return key in self._entries

    def record(self, key: str, payload: dict) -> bool:
        """Record a crossing; False if it had already fired (then nothing changes)."""
        with self._lock:
            if key in self._entries:
                return False
            self._entries[key] = {"fired_at": payload.get("crossed_at"), "delivered": False, "failed": False,
                                  "payload": payload}
            self._save()
            return True

    def forget(self, key: str) -> None:
        """Re-arm a rolling window's threshold once spend has fallen back below it."""
        with self._lock:
            if self._entries.pop(key, None) is not None:
                self._save()

    def mark(self, key: str, *, delivered: bool = False, failed: bool = False) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry["delivered"] = entry["delivered"] or delivered
                entry["failed"] = failed and not entry["delivered"]
                self._save()

    def undelivered(self) -> list[tuple[str, dict]]:
        with self._lock:
            return [(k, e["payload"]) for k, e in self._entries.items() if not e["delivered"] and not e["failed"]]

    def fired_thresholds(self, budget: str, window_key: str) -> list[str]:
        prefix = f"{budget}|{window_key}|"
        with self._lock:
            return [k[len(prefix):] for k in self._entries if k.startswith(prefix)]

    def prune(self, now: dt.datetime) -> None:
        cutoff = now - dt.timedelta(days=KEEP_DAYS)
        with self._lock:
            stale = [k for k, e in self._entries.items() if _before(e.get("fired_at"), cutoff)]
            for k in stale:
                del self._entries[k]
            if stale:
                self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"crossings": self._entries}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        os.chmod(self.path, 0o600)


def _before(text: str | None, cutoff: dt.datetime) -> bool:
    try:
        return dt.datetime.fromisoformat(text) < cutoff if text else False
    except ValueError:
        return True
