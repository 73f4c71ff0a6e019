"""The receivers' sink: admission, duplicate check, then a durable append to the WAL.

Every receiver (gRPC, HTTP) hands checked requests here; ``accept`` returns
only once the request is in the write-ahead log and fsynced, which is when
the client may be told OK.
"""

from __future__ import annotations

import threading
import zlib
from collections import OrderedDict

from ..errors import Overloaded
from ..pricing.pairs import model_pairs
from ..stats import IngestStats
from ..wal import WalFull, WalWriteError, WriteAheadLog, encode_record, request_fingerprint
from .admission import AdmissionControl
from .validation import Checked


class RecentRequests:
    """Fingerprints (``wal.request_fingerprint``) of recently stored requests, to acknowledge
    a client's retry without storing it twice."""

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[tuple, bool] = OrderedDict()
        self._lock = threading.Lock()

    def seen(self, key: tuple) -> bool:
        with self._lock:
            return key in self._seen

    def add(self, key: tuple) -> None:
        with self._lock:
            self._seen[key] = True
            if len(self._seen) > self.capacity:
                self._seen.popitem(last=False)


class WalSink:
    """The receiver's sink: admission, duplicate check, durable append."""

    def __init__(self, wal: WriteAheadLog, admission: AdmissionControl, stats: IngestStats) -> None:
        self.wal = wal
        self.admission = admission
        self.stats = stats
        self.recent = RecentRequests()
        self._in_progress: dict[tuple, threading.Event] = {}
        self._lock = threading.Lock()
        for key in wal.recovered_fingerprints:  # after a restart, requests already in the log are still recognised
            self.recent.add(key)
        wal.recovered_fingerprints.clear()

    def admit(self, size: int) -> int:
        try:
            return self.admission.admit(size)
        except Overloaded:
            self.stats.refused_memory += 1
            raise

    def release(self, reservation: int) -> None:
        self.admission.release(reservation)

    def accept(self, checked: Checked, original: bytes, tenant: str) -> None:
        crc = zlib.crc32(checked.payload)
        key = request_fingerprint(original, tenant, crc if checked.payload is original else None)
        while True:
            with self._lock:
                if self.recent.seen(key):
                    self.stats.duplicate_requests += 1
                    return
                waiting = self._in_progress.get(key)
                if waiting is None:
                    done = self._in_progress[key] = threading.Event()
                    break
            waiting.wait()  # the same request is being written by another call: its outcome decides
        try:
            # the (provider, model) pairs go with the segment, so its prices are resolved before it is loaded
            self.wal.append(encode_record(checked.payload, tenant, crc), checked.accepted, model_pairs(checked.payload))
            self.recent.add(key)
            self.stats.requests_accepted += 1
            self.stats.spans_accepted += checked.accepted
        except WalFull as exc:
            self.stats.refused_wal_full += 1
            raise Overloaded(f"{exc}: storage is behind; retry later", retry_after_s=2.0) from exc
        except WalWriteError as exc:
            self.stats.refused_disk += 1
            raise Overloaded(f"cannot write the write-ahead log ({exc}); retry later", retry_after_s=5.0) from exc
        finally:
            with self._lock:
                self._in_progress.pop(key, None)
            done.set()
