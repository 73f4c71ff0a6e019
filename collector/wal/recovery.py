"""Start-up: what a previous run (or a crash) left in the log directory, made whole again.

Recovery is apart from the running log because it is the one place that trusts
nothing on disk: it seals segments a crash left open, rewrites those with damaged
records or a torn tail without them, and remembers the fingerprint of every request
found (stored or not) so that a client's retry after a restart is still recognised.
"""

from __future__ import annotations

import logging
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from .files import FILE_MODE, fsync_dir, write_private
from .record_format import encode_record, request_fingerprint, scan
from .segment import Segment

log = logging.getLogger("spanledger.collector.wal")


@dataclass
class Recovered:
    """What the directory held: unstored segments in order, and what recovery had to repair."""

    sealed: list[Segment] = field(default_factory=list)
    unstored_bytes: int = 0
    last_seq: int = 0  # the highest segment number on disk (.wal or .done): new ones are numbered after it
    fingerprints: list[tuple[int, int, int, str]] = field(default_factory=list)
    corrupt_records: int = 0
    torn_tails: int = 0


def recover(directory: Path, instance: str, fsync: bool = True) -> Recovered:
    """Seal what a crash left open, verify every unstored segment, list them in order."""
    found = Recovered()
    for path in sorted(directory.glob("*.tmp")):
        path.unlink()
    paths = sorted(directory.glob("*.open")) + sorted(directory.glob("*.wal"))
    paths.sort(key=lambda p: int(p.stem))
    for path in paths:
        seq = int(path.stem)
        os.chmod(path, FILE_MODE)  # a file written by an older version may be 0644
        data = path.read_bytes()
        result = scan(data)
        found.corrupt_records += result.corrupt
        found.torn_tails += int(result.torn_tail)
        if result.corrupt or result.torn_tail:
            log.warning(
                "write-ahead log segment %s: %d corrupt record(s) skipped, torn tail: %s; %d record(s) recovered",
                path.name, result.corrupt, result.torn_tail, len(result.records),
            )
            data = b"".join(encode_record(r.request, r.tenant) for r in result.records)
            write_private(path, data, fsync=fsync)
        found.fingerprints.extend(request_fingerprint(r.request, r.tenant) for r in result.records)
        sealed = path.with_suffix(".wal")
        if not result.records:
            path.unlink()
            continue
        if path != sealed:
            os.rename(path, sealed)
        found.sealed.append(Segment(seq, sealed, len(data), -1, len(result.records), zlib.crc32(data), instance))
        found.unstored_bytes += len(data)
        found.last_seq = max(found.last_seq, seq)
    for path in sorted(directory.glob("*.done"), key=lambda p: int(p.stem)):
        found.last_seq = max(found.last_seq, int(path.stem))
        found.fingerprints.extend(request_fingerprint(r.request, r.tenant) for r in scan(path.read_bytes()).records)
    fsync_dir(directory, fsync)
    return found
