"""A request with several resources and scopes: every span keeps its own resource, scope, events and links.

Why: the flatten view takes spans apart per field (arrayFlatten of each span field, the resource
and scope repeated over their spans' counts) instead of ARRAY JOIN of whole tuples, so a span
count off by one in any resource or scope would give spans a neighbour's resource or attributes.
The collectors' SDKs send one resource per request, so only a request built by hand covers this:
resources with no scopes, scopes with no spans, and kvlist / nested / bytes / non-finite values
whose text must stay what the OpenTelemetry Collector writes."""

from __future__ import annotations

import math
import pytest
from collector_support import FAST_BATCH, RawClient, make_span, rows, start_collector, wait_stored
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


def _resource(request: ExportTraceServiceRequest, service: str, **extra: str):
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = service
    for key, value in extra.items():
        resource_spans.resource.attributes.add(key=key.replace("_", ".")).value.string_value = value
    return resource_spans


def _scope(resource_spans, name: str, version: str = ""):
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name, scope_spans.scope.version = name, version
    return scope_spans


def _request() -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    a = _resource(request, "svc-a", deployment_environment="prod")
    a1 = _scope(a, "scope-a1", "1.0")
    make_span(a1, "a1-first", attributes={"n": 1})
    make_span(a1, "a1-second", attributes={"n": 2})
    _scope(a, "scope-a-empty")                      # a scope without spans
    make_span(_scope(a, "scope-a3"), "a3-only")
    _resource(request, "svc-b-no-scopes")            # a resource without scopes
    c = _resource(request, "svc-c")
    c1 = _scope(c, "scope-c1", "2.1")
    shaped = make_span(c1, "c1-shaped")
    kv = shaped.attributes.add(key="kv").value.kvlist_value
    kv.values.add(key="z").value.string_value = "last"
    kv.values.add(key="a").value.int_value = 1
    inner = kv.values.add(key="m").value.array_value
    inner.values.add().string_value = "x"
    inner.values.add().double_value = math.inf
    shaped.attributes.add(key="bytes").value.bytes_value = b"\x00\xff"
    shaped.attributes.add(key="inf").value.double_value = math.inf
    shaped.attributes.add(key="empty-array").value.array_value.SetInParent()
    listed = shaped.attributes.add(key="list").value.array_value
    listed.values.add().bool_value = False
    listed.values.add().kvlist_value.values.add(key="k").value.string_value = 'say "hi"'
    for i, name in enumerate(("first-event", "second-event")):
        event = shaped.events.add(name=name, time_unix_nano=shaped.start_time_unix_nano + i)
        event.attributes.add(key="i").value.int_value = i
    link = shaped.links.add(trace_id=bytes(range(16)), span_id=bytes(range(8)), trace_state="ts=1")
    link.attributes.add(key="why").value.string_value = "retry"
    make_span(c1, "c1-plain", attributes={"n": 3})
    make_span(c1, "c1-third")
    return request


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    collector = start_collector(tmp_path_factory.mktemp("layout") / "data", FAST_BATCH)
    try:
        RawClient(collector.server.address).export(_request().SerializeToString())
        wait_stored(collector, 6)
        yield {r["SpanName"]: r for r in rows(collector, "SELECT * FROM spanledger.otel_traces")}
    finally:
        collector.stop()


def test_every_span_has_its_own_resource_and_scope(stored):
    layout = {name: (r["ServiceName"], r["ScopeName"], r["ScopeVersion"], r["Environment"]) for name, r in stored.items()}
    assert layout == {
        "a1-first": ("svc-a", "scope-a1", "1.0", "prod"),
        "a1-second": ("svc-a", "scope-a1", "1.0", "prod"),
        "a3-only": ("svc-a", "scope-a3", "", "prod"),
        "c1-shaped": ("svc-c", "scope-c1", "2.1", ""),
        "c1-plain": ("svc-c", "scope-c1", "2.1", ""),
        "c1-third": ("svc-c", "scope-c1", "2.1", ""),
    }
    assert stored["a3-only"]["ResourceAttributes"] == {"service.name": "svc-a", "deployment.environment": "prod"}
    assert stored["c1-third"]["ResourceAttributes"] == {"service.name": "svc-c"}


def test_attributes_events_and_links_stay_with_their_span(stored):
    assert [stored[n]["SpanAttributes"].get("n") for n in ("a1-first", "a1-second", "c1-plain")] == ["1", "2", "3"]
    assert stored["a3-only"]["SpanAttributes"] == {} and stored["c1-third"]["SpanAttributes"] == {}
    shaped = stored["c1-shaped"]
    assert shaped["Events.Name"] == ["first-event", "second-event"]
    assert shaped["Events.Attributes"] == [{"i": "0"}, {"i": "1"}]
    assert shaped["Events.Timestamp"][0] == shaped["Timestamp"]  # the first event is at the span's start
    assert (shaped["Links.TraceId"], shaped["Links.SpanId"]) == ([bytes(range(16)).hex()], [bytes(range(8)).hex()])
    assert (shaped["Links.TraceState"], shaped["Links.Attributes"]) == (["ts=1"], [{"why": "retry"}])
    assert all(stored[n]["Events.Name"] == [] and stored[n]["Links.TraceId"] == [] for n in stored if n != "c1-shaped")


def test_value_shapes_are_written_as_the_opentelemetry_collector_writes_them(stored):
    attributes = stored["c1-shaped"]["SpanAttributes"]
    assert attributes["kv"] == '{"a":1,"m":["x",null],"z":"last"}'  # keys sorted, non-finite inside as null
    assert attributes["bytes"] == "AP8="
    assert attributes["inf"] == "inf"
    assert attributes["empty-array"] == ""
    assert attributes["list"] == '[false,{"k":"say \\"hi\\""}]'

