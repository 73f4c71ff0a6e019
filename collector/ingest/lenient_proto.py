"""A copy of the OTLP trace messages whose ``string`` fields are ``bytes``.

protobuf refuses a whole message when one string is not UTF-8.  OTLP wants the
other spans of such a request kept, so on that (rare) failure the request is
parsed again with this copy, which accepts any bytes, and the offending spans
are found and dropped one by one.  Field numbers are unchanged, so a message
re-serialized from this copy is a valid OTLP request again.
"""

from __future__ import annotations

from functools import cache

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

_PREFIX = "spanledger.lenient."
_STRING = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
_BYTES = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES


def _relaxed(file_descriptor) -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto()
    file_descriptor.CopyToProto(proto)
    proto.name = _PREFIX + proto.name
    proto.package = _PREFIX + proto.package
    proto.dependency[:] = [_PREFIX + d for d in proto.dependency]
    proto.ClearField("service")

    def relax(message: descriptor_pb2.DescriptorProto) -> None:
        for f in message.field:
            if f.type == _STRING:
                f.type = _BYTES
            if f.type_name.startswith(".opentelemetry."):
                f.type_name = "." + _PREFIX + f.type_name[1:]
        for nested in message.nested_type:
            relax(nested)

    for message in proto.message_type:
        relax(message)
    return proto


@cache
def _request_class():
    pool = descriptor_pool.DescriptorPool()
    for module in (common_pb2, resource_pb2, trace_pb2, trace_service_pb2):
        pool.Add(_relaxed(module.DESCRIPTOR))
    descriptor = pool.FindMessageTypeByName(_PREFIX + "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest")
    return message_factory.GetMessageClass(descriptor)


def parse(data: bytes):
    """Parse an ExportTraceServiceRequest whose strings may be any bytes."""
    message = _request_class()()
    message.ParseFromString(data)
    return message


def _bad(value: bytes) -> bool:
    try:
        value.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


def _bad_in_attributes(attributes, where: str) -> str | None:
    for kv in attributes:
        if _bad(kv.key):
            return f"an attribute key in {where}"
        if _bad_in_value(kv.value):
            return f"the value of attribute {kv.key.decode()!r} in {where}"
    return None


def _bad_in_value(value) -> bool:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return _bad(value.string_value)
    if kind == "array_value":
        return any(_bad_in_value(v) for v in value.array_value.values)
    if kind == "kvlist_value":
        return any(_bad(kv.key) or _bad_in_value(kv.value) for kv in value.kvlist_value.values)
    return False


def first_invalid_utf8(span) -> str | None:
    """Where in ``span`` the first non-UTF-8 string is, or None."""
    if _bad(span.name):
        return "the span name"
    if _bad(span.trace_state):
        return "trace_state"
    if _bad(span.status.message):
        return "status.message"
    found = _bad_in_attributes(span.attributes, "the span")
    if found:
        return found
    for event in span.events:
        if _bad(event.name):
            return "an event name"
        found = _bad_in_attributes(event.attributes, "an event")
        if found:
            return found
    for link in span.links:
        if _bad(link.trace_state):
            return "a link's trace_state"
        found = _bad_in_attributes(link.attributes, "a link")
        if found:
            return found
    return None


def first_invalid_utf8_outside_spans(request) -> str | None:
    for resource_spans in request.resource_spans:
        found = _bad_in_attributes(resource_spans.resource.attributes, "the resource")
        if found:
            return found
        if _bad(resource_spans.schema_url):
            return "a resource schema_url"
        for scope_spans in resource_spans.scope_spans:
            if _bad(scope_spans.scope.name) or _bad(scope_spans.scope.version):
                return "the instrumentation scope name or version"
            found = _bad_in_attributes(scope_spans.scope.attributes, "the instrumentation scope")
            if found:
                return found
    return None
