"""OTLP/JSON (the protobuf JSON mapping with OTLP's exceptions) to ExportTraceServiceRequest bytes.

OTLP's JSON differs from protobuf's canonical JSON in one way that matters:
trace and span ids are hex strings, not base64.  Everything else is what
``google.protobuf.json_format`` reads already: lowerCamelCase or original
field names, enums as integers or names, 64-bit integers as strings or
numbers.  Unknown fields are ignored, as the OTLP specification requires of
receivers.  Decoding is a pure function: bytes in, bytes out, no I/O.
"""

from __future__ import annotations

import base64
import binascii
import json

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .validation import InvalidRequest

_ID_FIELDS = ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")


def _key(node: dict, camel: str, snake: str):
    return node.get(camel, node.get(snake))


def _hex_to_base64(node: dict, where: str) -> None:
    for name in _ID_FIELDS:
        value = node.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidRequest(f"{where}.{name}: expected a hex string, got {type(value).__name__}")
        try:
            node[name] = base64.b64encode(bytes.fromhex(value)).decode()
        except ValueError:
            raise InvalidRequest(f"{where}.{name}: {value[:40]!r} is not hex (OTLP/JSON writes ids as hex, "
                                 "e.g. a 32-digit traceId)") from None


def _list(node: dict, camel: str, snake: str, where: str) -> list:
    value = _key(node, camel, snake)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidRequest(f"{where}.{camel}: expected a list")
    return value


def _objects(items: list, where: str):
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidRequest(f"{where}[{i}]: expected an object")
        yield i, item


def otlp_json_to_protobuf(body: bytes) -> bytes:
    """Serialized ExportTraceServiceRequest for an OTLP/JSON body; InvalidRequest says what is wrong."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest(f"the body is not valid JSON ({exc}); send OTLP/JSON or application/x-protobuf") from None
    except RecursionError:
        raise InvalidRequest("the JSON body is nested too deeply") from None
    if not isinstance(document, dict):
        raise InvalidRequest("an OTLP/JSON body is an object with resourceSpans")
    for r, rs in _objects(_list(document, "resourceSpans", "resource_spans", "body"), "resourceSpans"):
        for s, ss in _objects(_list(rs, "scopeSpans", "scope_spans", f"resourceSpans[{r}]"),
                              f"resourceSpans[{r}].scopeSpans"):
            spans_where = f"resourceSpans[{r}].scopeSpans[{s}].spans"
            for i, span in _objects(_list(ss, "spans", "spans", spans_where), spans_where):
                _hex_to_base64(span, f"{spans_where}[{i}]")
                for j, link in _objects(_list(span, "links", "links", f"{spans_where}[{i}]"),
                                        f"{spans_where}[{i}].links"):
                    _hex_to_base64(link, f"{spans_where}[{i}].links[{j}]")
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True, max_recursion_depth=64)
    except json_format.ParseError as exc:
        raise InvalidRequest(f"not a valid OTLP/JSON ExportTraceServiceRequest: {exc}") from None
    except (RecursionError, binascii.Error, ValueError) as exc:
        raise InvalidRequest(f"not a valid OTLP/JSON ExportTraceServiceRequest: {exc}") from None
    return request.SerializeToString()


def protobuf_to_otlp_json(message) -> bytes:
    """OTLP/JSON for a protobuf message (ids as hex), e.g. an ExportTraceServiceRequest or a response."""
    document = json_format.MessageToDict(message, preserving_proto_field_name=False)
    for rs in document.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                _base64_to_hex(span)
                for link in span.get("links", []):
                    _base64_to_hex(link)
    return json.dumps(document, separators=(",", ":")).encode()


def _base64_to_hex(node: dict) -> None:
    for name in ("traceId", "spanId", "parentSpanId"):
        if name in node:
            node[name] = base64.b64decode(node[name]).hex()
