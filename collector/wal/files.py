"""Private files of the log: 0600 files and 0700 directories whatever the umask, whole-file
writes by rename, and the collector's instance id (kept beside the segments)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

FILE_MODE = 0o600  # spans are private: WAL files, quarantine, instance id
DIR_MODE = 0o700
INSTANCE_ID_FILE = "instance_id"


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make it 0700 whatever the umask."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)
    return path


def write_private(path: Path, data: bytes, fsync: bool = False) -> None:
    """Write ``path`` whole with mode 0600 (whatever the umask), via a temporary file and a rename."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb", closefd=False) as f:
            write_all(f, data)
            f.flush()
            if fsync:
                os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def instance_id(directory: Path) -> str:
    """This collector's id, created once in ``directory`` (0600) and kept: it makes dedup tokens
    unique across collectors that share one ClickHouse server."""
    path = directory / INSTANCE_ID_FILE
    try:
        value = path.read_text().strip()
        if value:
            os.chmod(path, FILE_MODE)
            return value
    except FileNotFoundError:
        pass
    value = secrets.token_hex(8)
    write_private(path, value.encode(), fsync=True)
    return value


def write_all(file, data: bytes) -> None:
    """An unbuffered write may be short (a size limit, a nearly full disk): finish it or raise."""
    view = memoryview(data)
    while view:
        written = file.write(view)
        if not written:
            raise OSError("the write-ahead log file accepted no more bytes")
        view = view[written:]


def fsync_dir(directory: Path, enabled: bool = True) -> None:
    """Make renames and unlinks in ``directory`` durable (a no-op when fsync is off)."""
    if enabled:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
