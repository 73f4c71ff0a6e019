"""Property-based fuzz of OTLP through the real gRPC receiver into the real store.

Random values on every attribute key the normalization reads (every AnyValue
kind, extreme ints and doubles, numbers as strings, nested arrays and kvlists),
wrong wire types and WAL fields in hand-built bytes, mixed with valid spans.
Properties: every span answered as accepted is stored exactly once, the writer
never stalls (the WAL drains, nothing is split or quarantined), and nothing
negative or beyond the store's ranges is stored.

SPANLEDGER_FUZZ_EXAMPLES sets the number of examples (default 150, ~1 min);
bench/fuzz_ingest.py runs it longer.
"""

from __future__ import annotations

import itertools
import os
import time

import pytest
from collector_support import RawClient, new_request, rows, start_collector
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from spanledger.collector.ingest.numbers import COST_KEYS, MAX_COST_USD, MAX_TOKENS, TOKEN_KEYS
from spanledger.collector.wal import _varint

EXAMPLES = int(os.environ.get("SPANLEDGER_FUZZ_EXAMPLES", "150"))
OTHER_KEYS = ["gen_ai.request.model", "gen_ai.response.model", "gen_ai.system", "gen_ai.provider.name",
              "gen_ai.operation.name", "openinference.span.kind", "traceloop.span.kind", "spanledger.cost.source",
              "spanledger.user.id", "session.id", "fuzz.other"]
KEYS = sorted(TOKEN_KEYS | COST_KEYS) + OTHER_KEYS
EXTREME_INTS = [0, 1, -1, 2**31, 2**32, 2**53 + 1, 2**63 - 1, -2**63, -2**35, MAX_TOKENS, MAX_TOKENS + 1,
                MAX_COST_USD - 1, MAX_COST_USD]
EXTREME_FLOATS = [0.0, -0.0, 1e-300, 5e-324, 1e308, -1e308, float("nan"), float("inf"), float("-inf"),
                  float(MAX_TOKENS), MAX_COST_USD - 1e-6, float(MAX_COST_USD), 0.1, -0.1]

numeric_text = st.one_of(
    st.integers(min_value=-2**70, max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " 5 ", "+7", "1e5", "1E-3", "0x10", "1_000", "nan", "-inf", "Infinity", "00012", "１２",
                     "18446744073709551615", "18446744073709551616", "999999.9999999999999", "-0", ".5", "5.",
                     "1" + "0" * 70, " -0.5", "\t3\n"]),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
)
scalars = st.one_of(
    st.builds(lambda v: ("int", v), st.one_of(st.sampled_from(EXTREME_INTS), st.integers(-2**63, 2**63 - 1))),
    st.builds(lambda v: ("double", v), st.one_of(st.sampled_from(EXTREME_FLOATS), st.floats())),
    st.builds(lambda v: ("string", v), st.one_of(numeric_text, st.text(max_size=20))),
    st.builds(lambda v: ("bool", v), st.booleans()),
    st.builds(lambda v: ("bytes", v), st.binary(max_size=12)),
    st.just(("empty", None)),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.builds(lambda xs: ("array", xs), st.lists(inner, max_size=4)),
                            st.builds(lambda kvs: ("kvlist", kvs),
                                      st.lists(st.tuples(st.text(max_size=6), inner), max_size=4))),
    max_leaves=8,
)
# wrong wire types for known fields, appended to a span's or an attribute value's bytes
SPAN_TAMPER = [bytes([5 << 3 | 0, 1]), bytes([1 << 3 | 5]) + b"abcd", bytes([9 << 3 | 0, 3]),
               bytes([7 << 3 | 2, 1, 0]), bytes([15 << 3 | 0, 2]), bytes([11 << 3 | 1]) + b"12345678"]
VALUE_TAMPER = [bytes([3 << 3 | 2, 1, 0x31]), bytes([1 << 3 | 0, 9]), bytes([4 << 3 | 0, 1]), bytes([6 << 3 | 5]) + b"wxyz"]
TOP_TAMPER = [b"", _varint(1001 << 3 | 2) + b"\x05evil!", b"\xd5\x3e" + b"\x00\x00\x00\x00",
              _varint(1001 << 3 | 2) + b"\x00"]


def _set(any_value: AnyValue, value) -> None:
    kind, v = value
    if kind == "int":
        any_value.int_value = v
    elif kind == "double":
        any_value.double_value = v
    elif kind == "string":
        any_value.string_value = v
    elif kind == "bool":
        any_value.bool_value = v
    elif kind == "bytes":
        any_value.bytes_value = v
    elif kind == "array":
        any_value.array_value.SetInParent()
        for item in v:
            _set(any_value.array_value.values.add(), item)
    elif kind == "kvlist":
        any_value.kvlist_value.SetInParent()
        for key, item in v:
            _set(any_value.kvlist_value.values.add(key=key).value, item)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


spans = st.lists(st.tuples(
    st.lists(st.tuples(st.sampled_from(KEYS), values), max_size=5),
    st.one_of(st.none(), st.sampled_from(SPAN_TAMPER)),
    st.one_of(st.none(), st.sampled_from(VALUE_TAMPER)),
), min_size=1, max_size=6)


@pytest.fixture(scope="module")
def fuzz_collector(tmp_path_factory):
    collector = start_collector(tmp_path_factory.mktemp("fuzz") / "data",
                                "processors:\n  batch:\n    timeout: 200ms\n")
    yield collector
    collector.stop(timeout_s=10)


def test_fuzzed_requests_are_stored_exactly_as_answered(fuzz_collector):
    client = RawClient(fuzz_collector.server.address)
    expected: dict[str, int] = {}
    numbers = itertools.count()

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=False, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(spans=spans, top=st.sampled_from(TOP_TAMPER), valid=st.integers(0, 2))
    def send(spans, top, valid):
        service = f"fuzz-{next(numbers)}"
        request, scope = new_request(service)
        encoded, tampered = [], 0
        for attributes, span_tamper, value_tamper in spans:
            span = scope.spans.add(trace_id=os.urandom(16), span_id=os.urandom(8), name="fuzzed",
                                   start_time_unix_nano=time.time_ns())
            span.end_time_unix_nano = span.start_time_unix_nano + 1000
            for key, value in attributes:
                _set(span.attributes.add(key=key).value, value)
            raw = span.SerializeToString()
            if value_tamper is not None:
                raw += _field(9, _field(1, b"fuzz.tampered") + _field(2, value_tamper))
            if span_tamper is not None:
                raw += span_tamper
            tampered += value_tamper is not None or span_tamper is not None
            encoded.append(raw)
        for _ in range(valid):  # plain spans beside the fuzzed ones
            span = scope.spans.add(trace_id=os.urandom(16), span_id=os.urandom(8), name="valid",
                                   start_time_unix_nano=time.time_ns())
            span.end_time_unix_nano = span.start_time_unix_nano + 1000
            span.attributes.add(key="gen_ai.usage.input_tokens").value.int_value = 12
            encoded.append(span.SerializeToString())
        rs = request.resource_spans[0]
        scope_bytes = _field(1, rs.scope_spans[0].scope.SerializeToString()) + b"".join(_field(2, s) for s in encoded)
        payload = _field(1, _field(1, rs.resource.SerializeToString()) + _field(2, scope_bytes)) + top
        response = client.export(payload)
        rejected = response.partial_success.rejected_spans
        assert rejected >= tampered, response.partial_success.error_message
        assert rejected <= len(encoded) - valid, response.partial_success.error_message  # valid spans are kept
        expected[service] = len(encoded) - rejected

    send()
    client.close()

    deadline = time.monotonic() + 60
    total = sum(expected.values())
    stored: dict[str, int] = {}
    while time.monotonic() < deadline:
        if fuzz_collector.wal.unstored_bytes == 0:
            stored = {r["ServiceName"]: r["n"] for r in rows(
                fuzz_collector, "SELECT ServiceName, count() AS n FROM spanledger.otel_traces "
                                "WHERE ServiceName LIKE 'fuzz-%' GROUP BY ServiceName")}
            if sum(stored.values()) >= total:
                break
        time.sleep(0.2)
    stats = fuzz_collector.stats_snapshot()
    assert (stats["segments_split"], stats["segments_quarantined"], stats["store_failures"]) == (0, 0, 0), stats
    assert fuzz_collector.wal.unstored_bytes == 0, "the writer stalled"
    assert {k: v for k, v in stored.items()} == {k: v for k, v in expected.items() if v}

    [bounds] = rows(fuzz_collector, """
        SELECT min(InputCost) AS min_in, min(OutputCost) AS min_out, min(TotalCost) AS min_total,
               max(TotalCost) AS max_total, max(greatest(InputTokens, OutputTokens)) AS max_tokens,
               countIf(TenantId != '') AS foreign_tenant
        FROM spanledger.otel_traces WHERE ServiceName LIKE 'fuzz-%'""")
    assert bounds["min_in"] >= 0 and bounds["min_out"] >= 0 and bounds["min_total"] >= 0
    assert bounds["max_total"] < MAX_COST_USD
    assert bounds["max_tokens"] <= 3 * MAX_TOKENS  # input counts its cached parts, output its reasoning
    assert bounds["foreign_tenant"] == 0  # field 1001 in client bytes never sets the tenant


@settings(max_examples=EXAMPLES * 10, deadline=None, database=None)
@given(attributes=st.lists(st.tuples(st.sampled_from(KEYS), values), min_size=1, max_size=4))
def test_the_byte_scan_never_passes_a_number_the_full_check_refuses(attributes):
    """The fast path (numbers.may_hold_bad_numbers) may only say "all plain" when the walk agrees."""
    from spanledger.collector.ingest.numbers import NUMERIC_KEYS, attribute_problem, may_hold_bad_numbers

    request, scope = new_request("scan")
    span = scope.spans.add(trace_id=os.urandom(16), span_id=os.urandom(8), name="s", start_time_unix_nano=1)
    for key, value in attributes:
        _set(span.attributes.add(key=key).value, value)
    refused = [kv.key for kv in span.attributes if kv.key in NUMERIC_KEYS and attribute_problem(kv.key, kv.value)]
    if refused:
        assert may_hold_bad_numbers(request.SerializeToString()), refused
