"""Isolate what the store refuses in a segment, store the rest, quarantine the remainder.

Validation keeps out everything we know the store cannot take, so this is the
backstop for what we do not know yet.  When the store refuses a segment for
its data (a permanent error code), the segment is bisected: first over its
records (one client request each), then, inside a refused record, over its
spans, until each refused piece is a single record that does not decode or a
single span.  Every piece that goes in is stored with a token derived from the
segment's token and the piece's range, and bisection is deterministic, so a
crash in the middle and a second split of the same segment re-send the same
tokens: nothing is stored twice.

A transient error on any piece (the store went away) aborts the split; the
segment stays in the WAL and is split again later, its stored pieces dropped
by ClickHouse as duplicates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ..errors import StoreError
from ..wal import Record, encode_record

log = logging.getLogger(__name__)

Load = Callable[[bytes, str], None]  # (segment bytes, dedup token) -> stored, or raises StoreError


@dataclass
class SplitOutcome:
    """What a split stored and what it set aside."""

    pieces_stored: int = 0
    refused: list[Record] = field(default_factory=list)  # the records (or single-span records) the store refused
    refused_spans: int = 0
    reasons: list[str] = field(default_factory=list)

    def reason_text(self, segment_name: str, first_error: StoreError) -> str:
        lines = [f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} segment {segment_name}: the store refused "
                 f"it (code {first_error.code}): {first_error}",
                 f"{len(self.refused)} record(s) with {self.refused_spans} span(s) kept here; "
                 f"{self.pieces_stored} piece(s) of the rest were stored."]
        lines += self.reasons[:20]
        return "\n".join(lines) + "\n"


def refused(exc: StoreError, escalated: bool) -> bool:
    """Does ``exc`` mean "the store will not take these bytes" (as opposed to "not now")?"""
    return exc.permanent or (escalated and not exc.transient)


def split_and_store(records: list[Record], token: str, load: Load, escalated: bool = False) -> SplitOutcome:
    """Store what the store takes of ``records``; raises StoreError if the store fails transiently."""
    outcome = SplitOutcome()
    _store_records(records, 0, len(records), token, load, escalated, outcome)
    return outcome


def _try_piece(load: Load, data: bytes, token: str, escalated: bool, outcome: SplitOutcome) -> StoreError | None:
    """Store one piece: None if it went in, the refusal if the store will not take it (raises if "not now")."""
    try:
        load(data, token)
    except StoreError as exc:
        if not refused(exc, escalated):
            raise
        return exc
    outcome.pieces_stored += 1
    return None


def _store_records(records, lo: int, hi: int, token: str, load: Load, escalated: bool, outcome: SplitOutcome) -> None:
    data = b"".join(encode_record(r.request, r.tenant) for r in records[lo:hi])
    error = _try_piece(load, data, f"{token}/r{lo}-{hi}", escalated, outcome)
    if error is None:
        return
    if hi - lo > 1:
        mid = (lo + hi) // 2
        _store_records(records, lo, mid, token, load, escalated, outcome)
        _store_records(records, mid, hi, token, load, escalated, outcome)
        return
    _store_spans(records[lo], f"{token}/r{lo}", error, load, escalated, outcome)


def _store_spans(record: Record, token: str, error: StoreError, load: Load, escalated: bool,
                 outcome: SplitOutcome) -> None:
    try:
        request = ExportTraceServiceRequest.FromString(record.request)
    except DecodeError:
        outcome.refused.append(record)
        outcome.reasons.append(f"a record that does not decode as OTLP (code {error.code}): {error}"[:500])
        return
    places = [(r, s, i) for r, rs in enumerate(request.resource_spans)
              for s, ss in enumerate(rs.scope_spans) for i in range(len(ss.spans))]
    if len(places) <= 1:
        outcome.refused.append(record)
        outcome.refused_spans += len(places)
        outcome.reasons.append(_span_reason(request, places, error))
        return
    bad: list[tuple[int, int, int]] = []
    _bisect_spans(request, places, 0, len(places), record.tenant, token, error, load, escalated, outcome, bad)
    if bad:
        outcome.refused.append(Record(_sub_request(request, bad).SerializeToString(), record.tenant))
        outcome.refused_spans += len(bad)


def _bisect_spans(request, places, lo, hi, tenant, token, error, load, escalated, outcome, bad) -> None:
    piece = encode_record(_sub_request(request, places[lo:hi]).SerializeToString(), tenant)
    error = _try_piece(load, piece, f"{token}/s{lo}-{hi}", escalated, outcome)
    if error is None:
        return
    if hi - lo == 1:
        bad.append(places[lo])
        outcome.reasons.append(_span_reason(request, places[lo:hi], error))
        return
    mid = (lo + hi) // 2
    _bisect_spans(request, places, lo, mid, tenant, token, error, load, escalated, outcome, bad)
    _bisect_spans(request, places, mid, hi, tenant, token, error, load, escalated, outcome, bad)


def _sub_request(request, places) -> ExportTraceServiceRequest:
    """A request with only the spans at ``places``, under their own resource and scope."""
    wanted: dict[tuple[int, int], list[int]] = {}
    for r, s, i in places:
        wanted.setdefault((r, s), []).append(i)
    out = ExportTraceServiceRequest()
    current_r, out_rs = None, None
    for (r, s), indexes in wanted.items():
        source_rs = request.resource_spans[r]
        if r != current_r:
            out_rs = out.resource_spans.add()
            out_rs.resource.CopyFrom(source_rs.resource)
            out_rs.schema_url = source_rs.schema_url
            current_r = r
        source_ss = source_rs.scope_spans[s]
        out_ss = out_rs.scope_spans.add()
        out_ss.scope.CopyFrom(source_ss.scope)
        out_ss.schema_url = source_ss.schema_url
        for i in indexes:
            out_ss.spans.add().CopyFrom(source_ss.spans[i])
    return out


def _span_reason(request, places, error: StoreError) -> str:
    if not places:
        return f"a record without spans (code {error.code}): {error}"[:500]
    r, s, i = places[0]
    span = request.resource_spans[r].scope_spans[s].spans[i]
    return (f"span {span.name[:60]!r} trace {span.trace_id.hex()} span {span.span_id.hex()}: "
            f"code {error.code}: {str(error)[:300]}")
