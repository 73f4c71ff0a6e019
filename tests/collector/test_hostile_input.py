"""Hostile shapes are cut to the configured limits and counted; content can be dropped before storage."""

from __future__ import annotations

import grpc
import pytest
from collector_support import RawClient, make_span, new_request, rows, wait_stored

from spanledger.collector.app import Collector, Overrides
from spanledger.collector.config import ConfigError, load_config

LIMITS = """
processors: {batch: {timeout: 100ms}}
receivers: {otlp: {protocols: {grpc: {max_recv_msg_size_mib: 16}}}}
exporters:
  clickhouse:
    limits: {max_attributes: 64, max_attribute_length: 1000, max_events: 20, max_links: 5}
"""


def test_hostile_shapes_are_truncated_counted_and_the_collector_keeps_serving(collector_factory):
    collector = collector_factory(LIMITS)
    client = RawClient(collector.server.address)

    request, scope = new_request()
    wide = make_span(scope, "100k-attributes")
    for i in range(100_000):
        wide.attributes.add(key=f"k{i}").value.int_value = i
    long_value = make_span(scope, "5-MiB-value", attributes={"huge": "é" * (5 << 20 >> 1)})
    events = make_span(scope, "10k-events")
    for i in range(10_000):
        events.events.add(name=f"e{i}", time_unix_nano=events.start_time_unix_nano)
    nested = make_span(scope, "nested-arrays")
    value = nested.attributes.add(key="deep").value
    for _ in range(20):  # deeper than the one level stored; ClickHouse skips the rest
        value = value.array_value.values.add()
    value.string_value = "bottom"
    assert not client.export(request.SerializeToString()).HasField("partial_success")

    wait_stored(collector, 4)
    stored = {r["SpanName"]: r for r in rows(collector, """
        SELECT SpanName, length(SpanAttributes) AS attrs, TruncatedAttributes, TruncatedEvents,
               length(Events.Name) AS events, max(lengthUTF8(v)) AS longest
        FROM spanledger.otel_traces LEFT ARRAY JOIN mapValues(SpanAttributes) AS v GROUP BY ALL""")}
    assert (stored["100k-attributes"]["attrs"], stored["100k-attributes"]["TruncatedAttributes"]) == (64, 100_000 - 64)
    assert (stored["5-MiB-value"]["longest"], stored["5-MiB-value"]["TruncatedAttributes"]) == (1000, 1)
    assert (stored["10k-events"]["events"], stored["10k-events"]["TruncatedEvents"]) == (20, 10_000 - 20)
    assert "nested-arrays" in stored

    # and it still serves an ordinary client
    ok, ok_scope = new_request()
    make_span(ok_scope, "after")
    client.export(ok.SerializeToString())
    wait_stored(collector, 5)


def test_deeper_nesting_than_protobuf_allows_is_invalid_argument(raw_client):
    request, scope = new_request()
    span = make_span(scope, "too-deep")
    value = span.attributes.add(key="deep").value
    for _ in range(200):
        value = value.kvlist_value.values.add(key="k").value
    value.string_value = "x"
    with pytest.raises(grpc.RpcError) as err:
        raw_client.export(request.SerializeToString())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


REDACTION = r"""
processors: {batch: {timeout: 100ms}}
exporters:
  clickhouse:
    content:
      drop_attributes: ['^gen_ai\.(input|output)\.messages$', '^llm\.input_messages\.']
      redact_attributes: ['^gen_ai\.tool\.call\.arguments$']
"""


def test_content_is_dropped_or_redacted_before_storage(collector_factory):
    collector = collector_factory(REDACTION)
    request, scope = new_request()
    span = make_span(scope, "chat gpt-4o", attributes={
        "gen_ai.input.messages": "my password is hunter2", "gen_ai.output.messages": "noted",
        "llm.input_messages.0.message.content": "secret", "gen_ai.tool.call.arguments": '{"card": "4111"}',
        "gen_ai.request.model": "gpt-4o", "gen_ai.provider.name": "openai", "gen_ai.usage.input_tokens": 10})
    span.events.add(name="gen_ai.content", time_unix_nano=span.start_time_unix_nano).attributes.add(
        key="gen_ai.input.messages").value.string_value = "in an event too"
    RawClient(collector.server.address).export(request.SerializeToString())
    wait_stored(collector, 1)
    row = rows(collector, "SELECT SpanAttributes, Events.Attributes AS ev, InputTokens FROM spanledger.otel_traces")[0]
    attributes = row["SpanAttributes"]
    assert "gen_ai.input.messages" not in attributes and "gen_ai.output.messages" not in attributes
    assert "llm.input_messages.0.message.content" not in attributes
    assert attributes["gen_ai.tool.call.arguments"] == "[REDACTED]"
    assert row["ev"] == [{}] and row["InputTokens"] == 10  # promoted columns still read the full span
    raw = collector.store().query("SELECT count() FROM spanledger.otel_traces WHERE "
                                  "arrayExists(v -> v LIKE '%hunter2%' OR v LIKE '%4111%', mapValues(SpanAttributes))")
    assert raw.result_rows == [(0,)]


def test_a_bad_redaction_pattern_stops_start_up(tmp_path):
    config = load_config(text="exporters:\n  clickhouse:\n    content:\n      drop_attributes: ['(unclosed']\n")
    with pytest.raises(ConfigError, match="exporters.clickhouse: redaction pattern '\\(unclosed'"):
        Collector(config, Overrides(data_dir=str(tmp_path)))
