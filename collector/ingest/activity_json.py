"""JSON activities (from clients that do not speak OTLP) as OTLP spans, with the attribute names the SDK writes.

``POST /v1/activities`` and ``/v1/activities/batch`` take activities shaped
like the listing's; each becomes one span of an ExportTraceServiceRequest
built here, which then goes through the same validation, WalSink.accept, WAL
and pipeline as a span that came over gRPC.  The attribute names are those of
the Python SDK (spanledger.semconv, docs/attributes.md), so the pipeline's
normalizer and pricing treat both alike.

Idempotency: an activity with a client-chosen ``id`` gets a trace id and span
id derived from (tenant, id), so a retry maps onto the same span.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import os
import re
import time
from typing import Any, Literal

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from spanledger import semconv as sc

MAX_BATCH = 1000
MAX_ATTRIBUTES = 128
MAX_TOKENS = 10**12  # far above any real call, far below what overflows the cost decimals
MAX_COST_USD = decimal.Decimal(10**6)
HEX = re.compile(r"^[0-9a-fA-F]+$")
OPEN_STATUSES = ("started", "in_progress")
FINAL_STATUSES = ("completed", "paused", "failed", "conflict", "ok", "error", "cancelled")
FAILED_STATUSES = ("failed", "error")
SCOPE = "spanledger.http_api"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
# ISO 8601 with up to nine fraction digits (what the listing returns) and an optional zone
ISO_TIME = re.compile(r"^(\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d)?)(?:\.(\d{1,9}))?(Z|[+-]\d\d:?\d\d)?$")

Scalar = str | int | float | bool
Text = Field(default=None, max_length=1000)


class ActivityIn(BaseModel):
    """One activity as a client writes it; every field but ``type`` is optional."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$",
                      description="activity type, e.g. agent_run, llm_call, tool_call, product_event")
    id: str | None = Field(default=None, min_length=1, max_length=128,
                           description="your id for it: a retry with the same id is the same span")
    name: str | None = Field(default=None, max_length=256, description="span name (default: the type)")
    trace_id: str | None = Field(default=None, min_length=32, max_length=32, description="32 hex digits")
    span_id: str | None = Field(default=None, min_length=16, max_length=16, description="16 hex digits")
    parent_span_id: str | None = Field(default=None, min_length=16, max_length=16, description="16 hex digits")
    start_time: str | float | None = Field(default=None, description="ISO 8601 or Unix seconds/ms (default now)")
    end_time: str | float | None = Field(default=None, description="default: start_time + duration_ms")
    duration_ms: float | None = Field(default=None, ge=0, le=366 * 86400 * 1000)
    status: str | None = Field(default=None, max_length=32, pattern=r"^[a-z_]+$",
                               description="started, in_progress, completed, failed, ...")
    severity: Literal["info", "success", "warning", "error", "critical"] | None = None
    description: str | None = Field(default=None, max_length=4000)
    agent: str | None = Text
    service: str | None = Field(default=None, max_length=256, description="service.name (default spanledger-api)")
    operation: str | None = Field(default=None, max_length=64)
    tool: str | None = Text
    model: str | None = Field(default=None, max_length=256)
    provider: str | None = Field(default=None, max_length=64)
    input_tokens: int | None = Field(default=None, ge=0, le=MAX_TOKENS)
    output_tokens: int | None = Field(default=None, ge=0, le=MAX_TOKENS)
    cache_read_tokens: int | None = Field(default=None, ge=0, le=MAX_TOKENS)
    cache_write_tokens: int | None = Field(default=None, ge=0, le=MAX_TOKENS)
    reasoning_tokens: int | None = Field(default=None, ge=0, le=MAX_TOKENS)
    cost_usd: str | None = Field(default=None, max_length=40, description="exact decimal string, e.g. '0.0125'")
    user_id: str | None = Text
    session_id: str | None = Text
    project_id: str | None = Text
    ticket_id: str | None = Text
    conversation_id: str | None = Text
    environment: str | None = Field(default=None, max_length=64)
    # product events (seed-style trackers)
    event_type: str | None = Field(default=None, max_length=128, description="product events: e.g. project_created")
    category: str | None = Field(default=None, max_length=128)
    action: str | None = Field(default=None, max_length=128)
    entity_type: str | None = Field(default=None, max_length=128)
    entity_id: str | None = Field(default=None, max_length=256)
    device_type: str | None = Field(default=None, max_length=32)
    metadata: dict[str, Scalar] | None = Field(default=None, description="product events: flat key -> value")
    attributes: dict[str, Scalar | list[Scalar]] | None = Field(default=None, description="more span attributes")

    @field_validator("trace_id", "span_id", "parent_span_id")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is not None:
            if not HEX.match(value) or set(value) == {"0"}:
                raise ValueError("must be hex digits, not all zero")
            return value.lower()
        return value

    @field_validator("cost_usd")
    @classmethod
    def _cost(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            cost = decimal.Decimal(value)
        except decimal.InvalidOperation:
            raise ValueError("must be a decimal number as a string, e.g. '0.0125'") from None
        if not cost.is_finite() or cost < 0 or cost > MAX_COST_USD:
            raise ValueError(f"must be a finite decimal between 0 and {MAX_COST_USD}")
        return format(cost, "f")

    @field_validator("metadata", "attributes")
    @classmethod
    def _bounded(cls, value: dict | None) -> dict | None:
        if value is None:
            return value
        if len(value) > MAX_ATTRIBUTES:
            raise ValueError(f"at most {MAX_ATTRIBUTES} entries")
        for key, item in value.items():
            if not key or len(key) > 256:
                raise ValueError("keys must be 1 to 256 characters")
            for v in item if isinstance(item, list) else [item]:
                if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
                    raise ValueError(f"{key}: numbers must be finite")
                if isinstance(v, str) and len(v) > 65536:
                    raise ValueError(f"{key}: values are at most 65536 characters")
            if isinstance(item, list) and len(item) > 128:
                raise ValueError(f"{key}: at most 128 items")
        return value


class ItemError(ValueError):
    """One activity of a batch cannot become a span; the message says which field and why."""


def derived_ids(tenant: str, client_id: str) -> tuple[bytes, bytes]:
    """The trace and span id a client's activity id stands for: stable per (tenant, id), never all zero."""
    digest = hashlib.sha256(f"spanledger-activity\0{tenant}\0{client_id}".encode()).digest()
    trace_id, span_id = digest[:16], digest[16:24]
    return trace_id, span_id if any(span_id) else b"\x01" * 8


def time_ns(value: str | float | None, field: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool):
        raise ItemError(f"{field}: give ISO 8601 or Unix seconds/ms, not true/false")
    if isinstance(value, (int, float)):
        if value != value or value in (float("inf"), float("-inf")) or value < 0 or value > 1e14:
            raise ItemError(f"{field}: {value!r} is not a Unix time in seconds or milliseconds")
        seconds = value / 1000 if value > 1e11 else value
        return int(decimal.Decimal(repr(seconds)) * 1_000_000_000)
    match = ISO_TIME.match(value.strip())
    try:
        if not match:
            raise ValueError
        parsed = dt.datetime.fromisoformat(match.group(1) + (match.group(3) or "").replace("Z", "+00:00"))
    except ValueError:
        raise ItemError(f"{field}: {value[:40]!r} is not ISO 8601 (2026-12-01T09:30:00.123Z)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    whole = parsed - EPOCH
    fraction = int((match.group(2) or "").ljust(9, "0"))
    return (whole.days * 86400 + whole.seconds) * 1_000_000_000 + fraction


def _put(span_or_resource, key: str, value: Any) -> None:
    if value is None or value == "":
        return
    set_any_value(span_or_resource.attributes.add(key=key).value, value)


def set_any_value(any_value, value: Any) -> None:
    """Fill an OTLP ``AnyValue`` from a Python value: bool, int, float, a list/tuple (an array of
    these), anything else as its text.  Public because tests build OTLP spans with it too."""
    if isinstance(value, bool):
        any_value.bool_value = value
    elif isinstance(value, int):
        any_value.int_value = value
    elif isinstance(value, float):
        any_value.double_value = value
    elif isinstance(value, (list, tuple)):
        for item in value:
            set_any_value(any_value.array_value.values.add(), item)
    else:
        any_value.string_value = str(value)


def span_attributes(item: ActivityIn) -> list[tuple[str, Any]]:
    """The SDK's attribute names for the activity's fields, then the client's own attributes (which cannot
    override the named fields)."""
    pairs: list[tuple[str, Any]] = [
        (sc.ACTIVITY_TYPE, item.type), (sc.STATUS, item.status), (sc.SEVERITY, item.severity),
        (sc.ACTIVITY_DESCRIPTION, item.description), (sc.GEN_AI_AGENT_NAME, item.agent),
        (sc.GEN_AI_OPERATION_NAME, item.operation), (sc.GEN_AI_TOOL_NAME, item.tool),
        (sc.GEN_AI_REQUEST_MODEL, item.model), (sc.GEN_AI_PROVIDER_NAME, item.provider),
        (sc.GEN_AI_USAGE_INPUT_TOKENS, item.input_tokens), (sc.GEN_AI_USAGE_OUTPUT_TOKENS, item.output_tokens),
        (sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, item.cache_read_tokens),
        (sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, item.cache_write_tokens),
        (sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, item.reasoning_tokens),
        (sc.COST_TOTAL_USD, item.cost_usd), (sc.COST_SOURCE, "provided" if item.cost_usd is not None else None),
        (sc.USER_ID, item.user_id), (sc.SESSION_ID, item.session_id), (sc.PROJECT_ID, item.project_id),
        (sc.TICKET_ID, item.ticket_id), (sc.GEN_AI_CONVERSATION_ID, item.conversation_id),
    ]
    if item.type == "product_event" or item.event_type:
        event_type = item.event_type or item.name or "event"
        words = event_type.split("_")
        pairs += [(sc.EVENT_TYPE, event_type), (sc.EVENT_CATEGORY, item.category or words[0]),
                  (sc.EVENT_ACTION, item.action or words[-1]), (sc.ENTITY_TYPE, item.entity_type),
                  (sc.ENTITY_ID, item.entity_id), (sc.DEVICE_TYPE, item.device_type),
                  (sc.DURATION_MS, item.duration_ms)]
        pairs += [(f"{sc.EVENT_METADATA_PREFIX}.{k}", v) for k, v in (item.metadata or {}).items()]
    named = {k for k, v in pairs if v is not None}
    pairs += [(k, v) for k, v in (item.attributes or {}).items() if k not in named and k != sc.TENANT_ID]
    return pairs


def to_request(items: list[ActivityIn], tenant: str, now_ns: int | None = None,
               ids: list[tuple[bytes, bytes]] | None = None) -> tuple[ExportTraceServiceRequest, list[tuple[str, str]]]:
    """One OTLP request holding every item (one ResourceSpans per service/environment), and each item's
    (trace_id, span_id) in hex, in order.  Raises ItemError(index, ...) via ``build_span`` for a bad item."""
    now_ns = now_ns or time.time_ns()
    request = ExportTraceServiceRequest()
    scopes: dict[tuple[str, str], Any] = {}
    out_ids = []
    for index, item in enumerate(items):
        key = (item.service or "spanledger-api", item.environment or "")
        if key not in scopes:
            resource_spans = request.resource_spans.add()
            _put(resource_spans.resource, "service.name", key[0])
            _put(resource_spans.resource, "deployment.environment.name", key[1])
            scope = resource_spans.scope_spans.add()
            scope.scope.name = SCOPE
            scopes[key] = scope
        span = scopes[key].spans.add()
        trace_id, span_id = ids[index] if ids else item_ids(item, tenant)
        build_span(span, item, trace_id, span_id, now_ns)
        out_ids.append((trace_id.hex(), span_id.hex()))
    return request, out_ids


def item_ids(item: ActivityIn, tenant: str) -> tuple[bytes, bytes]:
    """Explicit ids win; else ids derived from the client's ``id``; else random ones."""
    if item.id is not None:
        trace_id, span_id = derived_ids(tenant, item.id)
    else:
        trace_id, span_id = os.urandom(16), os.urandom(8)
    if item.trace_id:
        trace_id = bytes.fromhex(item.trace_id)
    if item.span_id:
        span_id = bytes.fromhex(item.span_id)
    return trace_id, span_id


def build_span(span, item: ActivityIn, trace_id: bytes, span_id: bytes, now_ns: int) -> None:
    start = time_ns(item.start_time, "start_time", now_ns)
    if item.end_time is not None:
        end = time_ns(item.end_time, "end_time", start)
    elif item.duration_ms is not None:
        end = start + int(item.duration_ms * 1_000_000)
    else:
        end = start
    if end < start:
        raise ItemError("end_time is before start_time")
    span.trace_id, span.span_id = trace_id, span_id
    if item.parent_span_id:
        span.parent_span_id = bytes.fromhex(item.parent_span_id)
    span.name = item.name or item.event_type or item.type
    span.kind = 1  # INTERNAL
    span.start_time_unix_nano, span.end_time_unix_nano = start, end
    if item.status in FAILED_STATUSES:
        span.status.code = Status.STATUS_CODE_ERROR
    elif item.status in ("completed", "ok"):
        span.status.code = Status.STATUS_CODE_OK
    for key, value in span_attributes(item):
        _put(span, key, value)


def fingerprint_source(items: list[ActivityIn], ids: list[tuple[str, str]]) -> bytes:
    """What identifies a batch for the duplicate check: the client's items as sent, plus the ids of items that
    have no client ``id`` (random, so two id-less batches are never taken for one another)."""
    parts = [item.model_dump(exclude_none=True) | ({} if item.id or item.span_id else {"_ids": ids[i]})
             for i, item in enumerate(items)]
    return b"spanledger-activities\0" + json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()
