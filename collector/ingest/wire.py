"""What reaches the WAL is the canonical encoding of what validation read.

ClickHouse decodes WAL segments itself (FORMAT Protobuf, schema/otlp_wal.proto),
and its reader does not agree with protobuf's on bytes protobuf merely
tolerates: a known field sent with the wrong wire type (protobuf keeps it as an
unknown field, ClickHouse fails the whole segment), fields the WAL itself uses
(1001 tenant, 1002 checksum: a client could choose or drop its tenant),
repeated or out-of-order singular fields.  So the bytes stored are always
protobuf's own serialization of the parsed request with unknown fields
discarded; the client's bytes are kept only when they are already exactly that.

Unknown field *numbers* are dropped silently (a newer OTLP may add fields);
a *known* number with the wrong wire type is a malformed span, rejected in
``partial_success`` (or, outside any span, the request is INVALID_ARGUMENT).
"""

from __future__ import annotations

from google.protobuf.unknown_fields import UnknownFieldSet

_WIRE_TYPES = {0: "varint", 1: "64-bit", 2: "length-delimited", 3: "group start", 4: "group end", 5: "32-bit"}


def canonical(request, data: bytes) -> bytes:
    """The bytes to store for parsed ``request`` (read from ``data``); call ``misdeclared_*`` first."""
    request.DiscardUnknownFields()
    encoded = request.SerializeToString()
    return data if encoded == data else encoded


def misdeclared_field(message) -> str | None:
    """The first field of ``message`` or its sub-messages sent with a number it declares but the wrong wire type."""
    fields = message.DESCRIPTOR.fields_by_number
    try:
        unknown = UnknownFieldSet(message)
    except Exception:  # pragma: no cover - an implementation without unknown-field access
        unknown = ()
    for item in unknown:
        if item.field_number in fields:
            name = fields[item.field_number].name
            return (f"field {name} (number {item.field_number}) of {message.DESCRIPTOR.name} was sent as "
                    f"{_WIRE_TYPES.get(item.wire_type, item.wire_type)}, which is not its declared type")
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        items = value if descriptor.is_repeated else (value,)
        for item in items:
            found = misdeclared_field(item)
            if found:
                return found
    return None


def has_unknown_fields(message) -> bool:
    """Whether ``message`` carries any unknown field, at any depth (ByteSize counts them)."""
    before = message.ByteSize()
    copy = type(message)()
    copy.CopyFrom(message)
    copy.DiscardUnknownFields()
    return copy.ByteSize() != before
