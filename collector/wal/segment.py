"""A sealed segment waiting to be stored, and the two refusals an append can meet."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class WalFull(Exception):
    """The log holds its configured maximum of unstored bytes; the client should retry later."""


class WalWriteError(Exception):
    """The disk refused a write (full, read-only, I/O error); nothing of the batch was acknowledged."""


@dataclass
class Segment:
    """A sealed segment waiting to be stored."""

    seq: int
    path: Path
    size: int
    spans: int
    requests: int
    content_crc: int = 0  # CRC-32 of the segment's bytes
    instance: str = ""  # the collector's instance id (see ``instance_id``)
    # (provider, model) pairs its spans may be priced under (collector/pricing/pairs.py),
    # noted as requests arrived; None when unknown (recovered at start): then rescanned
    pairs: frozenset | None = None

    @property
    def dedup_token(self) -> str:
        # Deterministic per segment: a replay after a crash between "stored" and
        # "marked .done" re-sends the same token and ClickHouse drops it.  Unique
        # otherwise: the instance id separates collectors on one server, the
        # content hash separates a segment from one that reused its number
        # after a restart (nothing of the old one retained).
        return f"spanledger-wal-{self.instance}-{self.seq}-{self.size}-{self.content_crc:08x}"
