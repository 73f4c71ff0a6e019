"""The write-ahead log: an accepted request is on disk before it is acknowledged.

A segment file is a stream of length-delimited ``WalRecord`` messages
(schema/otlp_wal.proto): each record is the client's ExportTraceServiceRequest
bytes followed by two fields of our own, the tenant and a CRC-32.  That makes a
sealed segment *directly* readable by ClickHouse (``FORMAT Protobuf``), so the
collector never decodes spans in Python to store them.

Segment life cycle::

    NNNNNNNNNNNN.open  --seal-->  NNNNNNNNNNNN.wal  --stored-->  NNNNNNNNNNNN.done  --expire--> deleted

``.done`` segments are kept for a while so that, after a restart, a client's
retry of a request that was stored but whose answer was lost is still
recognised as a duplicate (see ``RecentRequests``).

The parts: ``record_format`` (the bytes of a record, pure), ``files`` (private
files, instance id), ``segment`` (a sealed segment, the append errors),
``recovery`` (start-up), ``log`` (the running ``WriteAheadLog``).
"""

from .files import DIR_MODE, FILE_MODE, INSTANCE_ID_FILE, instance_id, private_dir, write_private
from .log import WriteAheadLog
from .record_format import Record, ScanResult, _varint, encode_record, read_varint, request_fingerprint, scan
from .segment import Segment, WalFull, WalWriteError

__all__ = [
    "DIR_MODE", "FILE_MODE", "INSTANCE_ID_FILE", "Record", "ScanResult", "Segment", "WalFull", "WalWriteError",
    "WriteAheadLog", "encode_record", "instance_id", "private_dir", "read_varint", "request_fingerprint", "scan",
    "write_private",
]  # fmt: skip
