"""The bytes of a segment: length-delimited ``WalRecord`` messages (schema/otlp_wal.proto).

Each record is the client's ExportTraceServiceRequest bytes followed by two fields of
our own, the tenant (field 1001) and a CRC-32 (field 1002), so that ClickHouse reads a
sealed segment directly (``FORMAT Protobuf``).  Encoding and scanning are pure
functions: bytes in, records out, no I/O.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

_TENANT_TAG = bytes([0xCA, 0x3E])  # field 1001, wire type 2 (length-delimited)
_CHECKSUM_TAG = bytes([0xD5, 0x3E])  # field 1002, wire type 5 (fixed32)
_TRAILER_LEN = len(_CHECKSUM_TAG) + 4
_TENANT_FIELD = 1001


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read_varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Decode a protobuf varint at ``pos``; returns (value, position after it)."""
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def encode_record(request: bytes, tenant: str, request_crc: int | None = None) -> bytes:
    """One WAL record, length prefix included.  ``request_crc`` saves re-hashing the request."""
    crc = zlib.crc32(request) if request_crc is None else request_crc
    tenant_bytes = tenant.encode()
    # always written, even empty: the tenant ClickHouse reads is the last field 1001, so it must be ours
    tenant_field = _TENANT_TAG + _varint(len(tenant_bytes)) + tenant_bytes
    crc = zlib.crc32(tenant_field, crc)
    body_len = len(request) + len(tenant_field) + _TRAILER_LEN
    return b"".join((_varint(body_len), request, tenant_field, _CHECKSUM_TAG, crc.to_bytes(4, "little")))


def request_fingerprint(request: bytes, tenant: str, crc: int | None = None) -> tuple[int, int, int, str]:
    """What identifies a request for duplicate detection: CRC-32, Adler-32 and length
    (~64 bits over requests that are nearly always kilobytes long), under the tenant.
    ``crc`` saves re-hashing when the CRC-32 of ``request`` is already known."""
    return (zlib.crc32(request) if crc is None else crc, zlib.adler32(request), len(request), tenant)


@dataclass(frozen=True)
class Record:
    request: bytes
    tenant: str


@dataclass
class ScanResult:
    records: list[Record] = field(default_factory=list)
    corrupt: int = 0  # records skipped because their checksum or framing was wrong
    torn_tail: bool = False  # the last record was cut short (a crash mid-write; never acknowledged)
    valid_bytes: int = 0


def scan(data: bytes) -> ScanResult:
    """Parse a segment, skipping damaged records and resynchronising after them."""
    result = ScanResult()
    pos, end = 0, len(data)
    while pos < end:
        record, next_pos = _parse_at(data, pos)
        if record is not None:
            result.records.append(record)
            pos = next_pos
            result.valid_bytes = pos
            continue
        if next_pos == -1:  # ran past the end: a torn final write
            result.torn_tail = True
            break
        result.corrupt += 1
        pos = _resync(data, pos + 1)
        if pos < 0:
            break
    return result


def _parse_at(data: bytes, pos: int) -> tuple[Record | None, int]:
    try:
        length, body_start = read_varint(data, pos)
    except ValueError:
        return None, -1
    body_end = body_start + length
    if length < _TRAILER_LEN:
        return None, 0
    if body_end > len(data):
        return None, -1
    body = data[body_start:body_end]
    if body[-_TRAILER_LEN:-4] != _CHECKSUM_TAG:
        return None, 0
    if zlib.crc32(body[:-_TRAILER_LEN]) != int.from_bytes(body[-4:], "little"):
        return None, 0
    payload = body[:-_TRAILER_LEN]
    request, tenant = _split_tenant(payload)
    return Record(request, tenant), body_end


def _split_tenant(payload: bytes) -> tuple[bytes, str]:
    """The request and the tenant of a record body: the tenant is the field 1001 that ends it,
    found by walking the top-level fields (never by searching bytes, which a client chooses)."""
    pos = 0
    try:
        while pos < len(payload):
            tag, after_tag = read_varint(payload, pos)
            if tag & 7 != 2:
                break
            length, start = read_varint(payload, after_tag)
            if tag >> 3 == _TENANT_FIELD and start + length == len(payload):
                return bytes(payload[:pos]), payload[start:].decode()
            pos = start + length
    except (ValueError, UnicodeDecodeError):
        pass
    # not a protobuf request (tests, or damage the CRC did not catch): the shortest tenant field that ends it
    for length in range(min(len(payload), 1 << 10)):
        prefix = _TENANT_TAG + _varint(length)
        start = len(payload) - length - len(prefix)
        if start < 0:
            break
        if payload.startswith(prefix, start):
            try:
                return bytes(payload[:start]), payload[start + len(prefix):].decode()
            except UnicodeDecodeError:
                break
    return bytes(payload), ""


def _resync(data: bytes, pos: int, max_attempts: int = 1 << 20) -> int:
    """The next offset at which a whole valid record starts, or -1."""
    attempts = 0
    while pos < len(data) and attempts < max_attempts:
        record, _ = _parse_at(data, pos)
        if record is not None:
            return pos
        pos += 1
        attempts += 1
    return -1
