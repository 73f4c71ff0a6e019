"""The (provider, model) pairs a request may be priced under, read from its bytes.

The flatten view (schema/900_ingest_pipeline.sql) takes a span's provider
from the first non-empty of ``gen_ai.provider.name``, ``gen_ai.system``,
``llm.provider``, ``llm.system`` (lower-cased) and its model from the first
of ``gen_ai.response.model``, ``gen_ai.request.model``, ``llm.model_name``,
``llm.response.model``, ``llm.request.model``; the price lookup is keyed by
(provider, lower(model)).

Decoding every span's attributes in Python would cost more than the rest of
the receiver (MEASURED.md), so this reads the protobuf framing directly: two
regular-expression passes (~1 µs per span) find every string attribute with
one of those keys, anywhere in the request.  The pairs returned are the
providers seen (and "") crossed with the models seen: a superset of what the
view will compute for any span, so resolving them all before the segment is
loaded prices every span; the extra pairs cost one lookup row each.
Lower-casing is ASCII-only, as ClickHouse's ``lower`` is.
"""

from __future__ import annotations

import re

from ..wal import read_varint

PROVIDER_KEYS = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
MODEL_KEYS = ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name", "llm.response.model", "llm.request.model")

# KeyValue{key: <one of the keys>, value: AnyValue{string_value: <text>}}: the key bytes, the value's
# tag and length (one byte: < 128), the string_value tag and the text's length (one byte).  A literal
# prefix per pattern lets the engine skip to candidates quickly; the framing before the key is checked
# in Python on each candidate.  Longer or non-string values take the slow path (_string_value).
_GEN_AI = re.compile(rb"gen_ai\.(provider\.name|system|response\.model|request\.model)\x12")
_LLM = re.compile(rb"llm\.(provider|system|model_name|response\.model|request\.model)\x12")
_PROVIDER_SUFFIXES = frozenset({b"provider.name", b"system", b"provider"})
MAX_MODEL_BYTES = 1024  # longer values are not model names; the view would not find them priced either
_ALL_KEYS = frozenset(PROVIDER_KEYS + MODEL_KEYS)
CROSS_PRODUCT_LIMIT = 256  # above this many (provider x model) combinations, read each span's own pair
MAX_PAIRS = 10_000  # a request naming more distinct models than this is priced for the first ones only


def model_pairs(data: bytes) -> frozenset[tuple[str, str]]:
    """(provider, model) keys of the price lookup that spans in ``data`` (OTLP bytes, or WAL segment bytes) can use."""
    raw_providers: set[bytes] = set()
    raw_models: set[bytes] = set()
    size = len(data)
    for pattern in (_GEN_AI, _LLM):
        for match in pattern.finditer(data):
            start, end = match.span()
            # the key must be the whole key field: the KeyValue key tag and its length byte before it
            if start < 2 or data[start - 1] != end - start - 1 or data[start - 2] != 0x0A:
                continue
            if end + 3 <= size and data[end] < 0x80 and data[end + 1] == 0x0A and data[end + 2] < 0x80:
                value = data[end + 3:end + 3 + data[end + 2]]  # the common case: short string
            else:
                value = _string_value(data, end)
                if value is None:
                    continue
            (raw_providers if match.group(1) in _PROVIDER_SUFFIXES else raw_models).add(value)
    providers = {""} | {text for text in map(_text, raw_providers) if text is not None}
    models = {text for text in map(_text, raw_models) if text}
    if len(providers) * len(models) > CROSS_PRODUCT_LIMIT:
        # many providers and models in one request (a gateway, or someone hostile): the cross
        # product would fill the lookup with pairs no span has, so read each span's own pair
        exact = _pairs_per_span(data)
        if exact is not None:
            return frozenset(sorted(exact)[:MAX_PAIRS])
    pairs = frozenset((p, m) for p in providers for m in models)
    return pairs if len(pairs) <= MAX_PAIRS else frozenset(sorted(pairs)[:MAX_PAIRS])


def _pairs_per_span(data: bytes) -> set[tuple[str, str]] | None:
    """Each span's own pairs (decoding the request); None if ``data`` is not one request."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(data)
    except DecodeError:
        return None  # e.g. a whole WAL segment: keep the cross product
    pairs = set()
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                # every value of the keys, not only the first by precedence: a span may repeat a key
                models, providers = set(), {""}
                for kv in span.attributes:
                    if kv.key in _ALL_KEYS and kv.value.WhichOneof("value") == "string_value":
                        raw = kv.value.string_value.encode()
                        if kv.key in PROVIDER_KEYS:
                            providers.add(_text(raw) or "")
                        elif raw and len(raw) <= MAX_MODEL_BYTES:
                            models.add(_text(raw))
                pairs.update((p, m) for p in providers for m in models)
                if len(pairs) > MAX_PAIRS:
                    return pairs
    return pairs


def _text(value: bytes) -> str | None:
    # bytes.lower() is ASCII-only, like ClickHouse's lower(): the keys match byte for byte
    try:
        return value.lower().decode("utf-8")
    except UnicodeDecodeError:
        return None


def _string_value(data: bytes, pos: int) -> bytes | None:
    """The string_value of the AnyValue whose length starts at ``pos``, or None if it holds something else."""
    try:
        _, pos = read_varint(data, pos)
        if pos >= len(data) or data[pos] != 0x0A:  # AnyValue.string_value (field 1, bytes)
            return None
        length, pos = read_varint(data, pos + 1)
    except ValueError:
        return None
    if length > MAX_MODEL_BYTES or pos + length > len(data):
        return None
    return bytes(data[pos:pos + length])
