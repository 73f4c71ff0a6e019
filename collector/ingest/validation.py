"""Check an OTLP trace request span by span before it is acknowledged.

The OTLP rule: a request that cannot be parsed is ``INVALID_ARGUMENT``; a
parsable request with some bad spans stores the good ones and reports the
others in ``partial_success`` with an English message.  What ClickHouse can
make right by itself (too many attributes, over-long values) is truncated
there and counted on the row, not rejected here.

This is the only per-span Python work on the ingest path, so it reads a few
fields per span and walks attributes only when a byte-level scan of the whole
request finds something that could be a bad number (see ``_may_hold_bad_numbers``).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from . import lenient_proto

# Numeric attributes that must be finite and >= 0 (tokens and money).
NON_NEGATIVE_KEYS = frozenset({
    "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens",
    "llm.token_count.prompt", "llm.token_count.completion", "llm.token_count.total",
    "llm.usage.prompt_tokens", "llm.usage.completion_tokens",
    "spanledger.cost.input_usd", "spanledger.cost.output_usd", "spanledger.cost.total_usd",
    "llm.cost.total", "llm.cost.prompt", "llm.cost.completion", "gen_ai.usage.cost",
})
_MAX_MESSAGES = 10  # examples quoted in error_message

# Byte patterns that the bad numbers we check for produce in the encoded
# request: a negative int64 varint above -2**35 ends in ff ff ff ff 01; NaN and
# +-infinity as Python (and most SDKs) encode them are a double field (0x21)
# of six zero bytes, then f8 or f0, then 7f or ff.
# Rarer spellings that slip past (a NaN with a payload, a huge negative) are
# harmless downstream: the ingest pipeline reads them as "no value", never as
# a negative count or cost.  Costs travel as decimal strings after keys
# ending in "_usd" or "llm.cost.*" and are checked one by one.
# Each pattern is one pass over the request (~0.25 µs per span), so there are
# as few as can tell: NaN and infinities share two prefixes, the llm.cost.*
# keys one.
_NEGATIVE_VARINT = b"\xff\xff\xff\xff\x01"
_NON_FINITE_PREFIXES = (b"\x21\x00\x00\x00\x00\x00\x00\xf8", b"\x21\x00\x00\x00\x00\x00\x00\xf0")
_NON_FINITE_LAST = (0x7F, 0xFF)
_LLM_COST_KEYS = (b"total\x12", b"prompt\x12", b"completion\x12")
_NUMERIC_COST = b"gen_ai.usage.cost\x12"  # then AnyValue length 9, double_value tag 0x21, 8 bytes
# after a cost key: AnyValue length (1 byte), string_value tag, text length (1..127), a digit first
_PLAIN_DECIMAL_VALUE = re.compile(rb"[\x00-\x7f]\x0a[\x01-\x7f][0-9]")


class InvalidRequest(Exception):
    """The request is not a valid ExportTraceServiceRequest (answer INVALID_ARGUMENT)."""


@dataclass(frozen=True)
class TimeBounds:
    """Span times outside these are absurd (clock at zero, nanoseconds mistaken for seconds...)."""

    earliest_ns: int = 946_684_800 * 10**9  # 2000-01-01
    future_slack_ns: int = 24 * 3600 * 10**9  # up to one day ahead of the collector's clock


@dataclass
class Checked:
    """What to store and what to answer."""

    payload: bytes  # the request as it goes to the WAL (rejected spans removed)
    accepted: int
    rejected: int = 0
    problems: list[str] = field(default_factory=list)

    def response(self) -> bytes:
        response = ExportTraceServiceResponse()
        if self.rejected:
            response.partial_success.rejected_spans = self.rejected
            shown = "; ".join(self.problems[:_MAX_MESSAGES])
            more = f" (and {len(self.problems) - _MAX_MESSAGES} more)" if len(self.problems) > _MAX_MESSAGES else ""
            response.partial_success.error_message = (
                f"{self.rejected} of {self.accepted + self.rejected} spans rejected: {shown}{more}. "
                "The other spans were stored."
            )
        return response.SerializeToString()


def check_request(data: bytes, bounds: TimeBounds = TimeBounds()) -> Checked:
    """Parse and check ``data``; raises InvalidRequest if it is not OTLP at all."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(data)
    except DecodeError as exc:
        # Strings that are not UTF-8 make the whole parse fail; find the spans
        # that carry them and reject only those.
        return _check_with_invalid_utf8(data, bounds, exc)
    now_ns = time.time_ns()
    latest = now_ns + bounds.future_slack_ns
    check_numbers = _may_hold_bad_numbers(data)
    problems: list[str] = []
    bad: list[tuple[int, int, int]] = []
    accepted = 0
    for r, resource_spans in enumerate(request.resource_spans):
        for s, scope_spans in enumerate(resource_spans.scope_spans):
            for i, span in enumerate(scope_spans.spans):
                problem = _span_problem(span, bounds.earliest_ns, latest, check_numbers)
                if problem is None:
                    accepted += 1
                else:
                    bad.append((r, s, i))
                    problems.append(problem)
    if not bad:
        return Checked(data, accepted)
    for r, s, i in reversed(bad):
        del request.resource_spans[r].scope_spans[s].spans[i]
    return Checked(request.SerializeToString(), accepted, len(bad), problems)


def _may_hold_bad_numbers(data: bytes) -> bool:
    """False only if no token or cost attribute in ``data`` can be negative, NaN or infinite."""
    if _NEGATIVE_VARINT in data:
        return True
    for prefix in _NON_FINITE_PREFIXES:
        pos = data.find(prefix)
        while pos >= 0:
            last = pos + len(prefix)
            if last >= len(data) or data[last] in _NON_FINITE_LAST:
                return True
            pos = data.find(prefix, pos + 1)  # e.g. 1.0 (00.. f0 3f): fine
    pos = data.find(b"_usd\x12")
    while pos >= 0:
        if not _PLAIN_DECIMAL_VALUE.match(data, pos + 5):
            return True  # not a plain decimal string: let the full check judge it
        pos = data.find(b"_usd\x12", pos + 1)
    pos = data.find(b"llm.cost.")
    while pos >= 0:
        rest = pos + 9
        for key in _LLM_COST_KEYS:
            if data.startswith(key, rest):
                if not _PLAIN_DECIMAL_VALUE.match(data, rest + len(key)):
                    return True
                break
        pos = data.find(b"llm.cost.", pos + 1)
    pos = data.find(_NUMERIC_COST)
    while pos >= 0:  # gen_ai.usage.cost is a double: its sign bit is the top bit of its last byte
        v = pos + len(_NUMERIC_COST)
        if data[v:v + 2] != b"\x09\x21" or v + 10 > len(data) or data[v + 9] & 0x80:
            return True  # negative, or not a plain double: let the full check judge it
        pos = data.find(_NUMERIC_COST, pos + 1)
    return False


def _span_problem(span, earliest: int, latest: int, check_numbers: bool = True) -> str | None:
    if len(span.trace_id) != 16 or span.trace_id == b"\0" * 16:
        return f"span {_name(span)}: trace_id must be 16 bytes and not all zero (got {len(span.trace_id)} bytes)"
    if len(span.span_id) != 8 or span.span_id == b"\0" * 8:
        return f"span {_name(span)}: span_id must be 8 bytes and not all zero (got {len(span.span_id)} bytes)"
    if span.parent_span_id and len(span.parent_span_id) != 8:
        return f"span {_name(span)}: parent_span_id must be empty or 8 bytes (got {len(span.parent_span_id)} bytes)"
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    if end < start:
        return f"span {_name(span)}: end_time_unix_nano is before start_time_unix_nano"
    if start < earliest or end > latest:
        return f"span {_name(span)}: timestamps {start}..{end} are outside 2000-01-01..now+1d (are they nanoseconds?)"
    if not check_numbers:
        return None
    for kv in span.attributes:
        if kv.key in NON_NEGATIVE_KEYS:
            problem = _numeric_problem(kv)
            if problem:
                return f"span {_name(span)}: attribute {kv.key} {problem}"
    return None


def _numeric_problem(kv) -> str | None:
    value = kv.value
    kind = value.WhichOneof("value")
    if kind == "int_value":
        return "is negative" if value.int_value < 0 else None
    if kind == "double_value":
        v = value.double_value
        if math.isnan(v) or math.isinf(v):
            return "is not a finite number"
        return "is negative" if v < 0 else None
    if kind == "string_value":
        text = value.string_value.strip()
        try:
            v = float(text)
        except ValueError:
            return f"is not a number ({text[:40]!r})"
        if math.isnan(v) or math.isinf(v):
            return "is not a finite number"
        return "is negative" if v < 0 else None
    return None


def _name(span) -> str:
    name = span.name if isinstance(span.name, str) else span.name.decode("utf-8", "replace")
    return f"{name[:60]!r} ({bytes(span.span_id).hex() or 'no span_id'})"


def _check_with_invalid_utf8(data: bytes, bounds: TimeBounds, original: DecodeError) -> Checked:
    try:
        lenient = lenient_proto.parse(data)
    except DecodeError:
        raise InvalidRequest(f"the request body is not a valid OTLP ExportTraceServiceRequest: {original}") from original
    problems: list[str] = []
    rejected = 0
    for resource_spans in lenient.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            keep = []
            for span in scope_spans.spans:
                where = lenient_proto.first_invalid_utf8(span)
                if where is None:
                    keep.append(span)
                else:
                    rejected += 1
                    problems.append(f"span {_name(span)}: {where} is not valid UTF-8")
            del scope_spans.spans[:]
            scope_spans.spans.extend(keep)
    if lenient_proto.first_invalid_utf8_outside_spans(lenient) is not None:
        raise InvalidRequest(
            "the request has strings that are not UTF-8 in its resource or scope: "
            f"{lenient_proto.first_invalid_utf8_outside_spans(lenient)}; OTLP strings must be UTF-8"
        )
    cleaned = lenient.SerializeToString()
    checked = check_request(cleaned, bounds)
    checked.rejected += rejected
    checked.problems = problems + checked.problems
    return checked
