"""Where one destination has got to in the WAL: the next segment and the next record in it.

Written after every delivered batch (write + rename: survives a process crash)
and fsynced at each segment boundary and at stop, so a restart resends at most
the batch in flight when the process died (at least once; a spanledger
destination recognises such a resend by its fingerprint and counts it as a
duplicate).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Cursor:
    path: Path
    next_seq: int = 0  # 0: never written
    next_record: int = 0

    @classmethod
    def load(cls, directory: Path, destination: str) -> Cursor:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / (re.sub(r"[^A-Za-z0-9_.-]", "_", destination) + ".cursor.json")
        try:
            data = json.loads(path.read_text())
            return cls(path, int(data["next_seq"]), int(data["next_record"]))
        except (OSError, ValueError, KeyError, TypeError):
            return cls(path)

    def save(self, durable: bool = False) -> None:
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump({"next_seq": self.next_seq, "next_record": self.next_record}, f)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, self.path)
        if durable:
            fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
