"""Check an OTLP trace request span by span before it is acknowledged.

The OTLP rule: a request that cannot be parsed is ``INVALID_ARGUMENT``; a
parsable request with some bad spans stores the good ones and reports the
others in ``partial_success`` with an English message.  What ClickHouse can
make right by itself (too many attributes, over-long values) is truncated
there and counted on the row, not rejected here.

This is the only per-span Python work on the ingest path, so it reads a few
fields per span and walks attributes only when a byte-level scan of the whole
request finds a numeric attribute it cannot vouch for (numbers.py).  What goes
to the WAL is the canonical encoding of what was checked (wire.py), so the
store never reads bytes protobuf tolerated but ClickHouse would refuse.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from . import lenient_proto, numbers, wire

_MAX_MESSAGES = 10  # examples quoted in error_message


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
    payload = wire.canonical(request, data)
    problems: list[str] = []
    bad: list[tuple[int, int, int]] = []
    if payload is not data:
        bad, problems = _misdeclared_spans(data)
    now_ns = time.time_ns()
    latest = now_ns + bounds.future_slack_ns
    check_numbers = numbers.may_hold_bad_numbers(payload)
    accepted = 0
    flagged = set(bad)
    for r, resource_spans in enumerate(request.resource_spans):
        for s, scope_spans in enumerate(resource_spans.scope_spans):
            for i, span in enumerate(scope_spans.spans):
                if (r, s, i) in flagged:
                    continue
                problem = _span_problem(span, bounds.earliest_ns, latest, check_numbers)
                if problem is None:
                    accepted += 1
                else:
                    bad.append((r, s, i))
                    problems.append(problem)
    if not bad:
        return Checked(payload, accepted)
    for r, s, i in sorted(bad, reverse=True):
        del request.resource_spans[r].scope_spans[s].spans[i]
    return Checked(request.SerializeToString(), accepted, len(bad), problems)


def _misdeclared_spans(data: bytes) -> tuple[list[tuple[int, int, int]], list[str]]:
    """Spans of ``data`` with a known field sent with the wrong wire type (unknown fields kept this time)."""
    request = ExportTraceServiceRequest.FromString(data)
    if not wire.has_unknown_fields(request):
        return [], []  # only a non-canonical encoding: nothing to reject
    bad, problems = [], []
    for r, resource_spans in enumerate(request.resource_spans):
        for s, scope_spans in enumerate(resource_spans.scope_spans):
            if not wire.has_unknown_fields(scope_spans):  # e.g. only the request itself carries one
                scope_spans.ClearField("spans")
                continue
            for i, span in enumerate(scope_spans.spans):
                found = wire.misdeclared_field(span)
                if found:
                    bad.append((r, s, i))
                    problems.append(f"span {_name(span)}: {found}")
            scope_spans.ClearField("spans")
    outside = wire.misdeclared_field(request)
    if outside:
        raise InvalidRequest(f"the request is malformed outside its spans: {outside}; fix the exporter's encoding")
    return bad, problems


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
        if kv.key in numbers.NUMERIC_KEYS:
            problem = numbers.attribute_problem(kv.key, kv.value)
            if problem:
                return f"span {_name(span)}: attribute {kv.key} {problem}"
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
