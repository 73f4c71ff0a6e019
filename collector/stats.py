"""Counters the collector keeps about what it received, stored and refused (served at /v1/stats)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class IngestStats:
    """Counters exposed at /v1/stats; written from several threads (int += under the GIL is enough)."""

    requests_accepted: int = 0
    spans_accepted: int = 0
    spans_rejected: int = 0
    duplicate_requests: int = 0
    refused_memory: int = 0
    refused_wal_full: int = 0
    refused_disk: int = 0
    segments_stored: int = 0
    store_failures: int = 0
    segments_quarantined: int = 0
    segments_split: int = 0  # segments the store refused part of, stored piece by piece
    spans_quarantined: int = 0  # spans the store refused, kept in wal/quarantine/ with a .reason
    last_store_error_code: int = 0
    spans_repriced: int = 0
    last_store_error: str = ""
    started_at: float = field(default_factory=time.time)
