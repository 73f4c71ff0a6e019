"""Writing activities over HTTP, for clients that do not speak OTLP, and the operator's retention clean-up.

POST /v1/activities (one), POST /v1/activities/batch (up to 1000) and
PUT /v1/activities/{span_id} (complete a started activity) turn JSON into
OTLP spans (collector/ingest/activity_json.py) and hand them to the
collector's one WalSink after the same validation as gRPC spans: an answer
of 2xx means the spans are in the write-ahead log, fsynced.

Bodies are parsed whatever the Content-Type says: a browser's sendBeacon
sends text/plain.  A browser tracker cannot send a bearer token with
sendBeacon, so the batch route also takes ``?ingest_key=`` (a per-site key
from extensions.spanledger_api.ingest_keys) limited to product events, a
smaller body, fewer items and a request rate per key.

DELETE /v1/activities drops old spans (operator only); see
collector/store/retention.py for how.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from ..ingest import activity_json as aj
from ..ingest.validation import InvalidRequest, check_request
from ..query import activities as q
from .deps import Caller, require_caller, require_operator
from .errors import error_response

router = APIRouter(tags=["activities"])

PRODUCT_EVENT_TYPES = frozenset({"product_event"})


class ActivityUpdate(aj.ActivityIn):
    """The completion of a started activity: ``type`` and ids come from the stored start."""

    type: str | None = None  # type: ignore[assignment]


class WrittenItem(BaseModel):
    index: int
    trace_id: str
    span_id: str


class ItemProblem(BaseModel):
    index: int
    error: str


class WriteAnswer(BaseModel):
    accepted: int
    rejected: int
    items: list[WrittenItem]
    errors: list[ItemProblem]


@dataclass(frozen=True)
class Writer:
    """Who is writing: a caller's tenant ('' for an operator), and whether it came with an ingest key."""

    tenant: str
    ingest_key: str | None = None


class RateLimiter:
    """A token bucket per ingest key: ``per_minute`` requests, bursts up to a tenth of that (at least 10)."""

    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(10.0, per_minute / 10.0)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 if allowed now, else the seconds to wait."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate if self.rate else 60.0


def _settings(request: Request):
    from .app import ApiSettings

    return getattr(request.app.state, "settings", None) or ApiSettings()


def _limiter(request: Request) -> RateLimiter:
    limiter = getattr(request.app.state, "ingest_rate_limiter", None)
    if limiter is None:
        limiter = request.app.state.ingest_rate_limiter = RateLimiter(_settings(request).ingest_requests_per_minute)
    return limiter


def batch_writer(request: Request, ingest_key: str | None = Query(
        None, max_length=256, description="a browser tracker's per-site key, instead of a bearer token "
                                          "(product events only)")) -> Writer:
    if ingest_key is None:
        return Writer(require_caller(request).tenant or "")
    found = None
    for key, tenant in _settings(request).ingest_keys.items():  # constant-time over every key, like tokens
        if hmac.compare_digest(ingest_key.encode(), key.encode()):
            found = tenant
    if found is None:
        raise HTTPException(401, "unknown ingest_key: use a key from extensions.spanledger_api.ingest_keys")
    wait = _limiter(request).take(ingest_key)
    if wait:
        raise HTTPException(429, f"this ingest key sent more than {_settings(request).ingest_requests_per_minute} "
                                 "requests a minute; batch events and retry later",
                            headers={"Retry-After": str(max(1, round(wait)))})
    return Writer(found, ingest_key=ingest_key)


def single_writer(request: Request, caller: Caller = Depends(require_caller)) -> Writer:
    if "ingest_key" in request.query_params:
        raise HTTPException(400, "ingest_key is accepted only on POST /v1/activities/batch; "
                                 "send Authorization: Bearer <token> here")
    return Writer(caller.tenant or "")


async def _json_body(request: Request, limit: int | None = None) -> Any:
    raw = await request.body()
    if limit is not None and len(raw) > limit:
        raise HTTPException(413, f"ingest-key requests are limited to {limit} bytes "
                                 "(extensions.spanledger_api.ingest_key_limits.max_body_kib): send smaller batches")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(400, "the body is not JSON: send an activity object like "
                                 '{"type": "product_event", "name": "page_viewed"} (any Content-Type)') from None


def _describe(error: ValidationError) -> str:
    parts = []
    for e in error.errors()[:5]:
        where = ".".join(str(p) for p in e.get("loc", ())) or "activity"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    return "; ".join(parts)


def _parse_items(raw: list, writer: Writer, max_items: int) -> tuple[list[tuple[int, aj.ActivityIn]], list[dict]]:
    if len(raw) > max_items:
        raise HTTPException(413, f"a batch holds at most {max_items} activities, got {len(raw)}: split it")
    good, errors = [], []
    for index, value in enumerate(raw):
        try:
            item = aj.ActivityIn.model_validate(value)
        except ValidationError as exc:
            errors.append({"index": index, "error": _describe(exc)})
            continue
        if writer.ingest_key is not None and item.type not in PRODUCT_EVENT_TYPES:
            errors.append({"index": index, "error": f"type {item.type!r}: an ingest key may send only product "
                                                    "events (type product_event); use a bearer token for others"})
            continue
        good.append((index, item))
    return good, errors


def _store(collector, writer: Writer, indexed: list[tuple[int, aj.ActivityIn]], errors: list[dict],
           ids: dict[int, tuple[bytes, bytes]] | None = None) -> dict:
    """Build one OTLP request of the good items, validate it like a gRPC export, and make it durable."""
    built: list[tuple[int, aj.ActivityIn, tuple[bytes, bytes]]] = []
    now_ns = time.time_ns()
    for index, item in indexed:
        try:
            item_ids = ids[index] if ids else aj.item_ids(item, writer.tenant)
            aj.build_span(Span(), item, *item_ids, now_ns)  # a trial build: per-item errors before the request
        except aj.ItemError as exc:
            errors.append({"index": index, "error": str(exc)})
            continue
        built.append((index, item, item_ids))
    written: list[dict] = []
    if built:
        items = [item for _, item, _ in built]
        request, hex_ids = aj.to_request(items, writer.tenant, now_ns, ids=[i for _, _, i in built])
        payload = request.SerializeToString()
        checked = _validated(payload, built, hex_ids, errors)
        if checked is not None and checked.accepted:
            sink = collector.sink
            if sink is None:
                raise HTTPException(503, "the collector is starting; retry in a second",
                                    headers={"Retry-After": "1"})
            reservation = sink.admit(len(payload))
            try:
                sink.accept(checked, aj.fingerprint_source(items, hex_ids), writer.tenant)
            finally:
                sink.release(reservation)
            rejected_spans = {e["span_id"] for e in errors if "span_id" in e}
            written = [{"index": index, "trace_id": t, "span_id": s}
                       for (index, _, _), (t, s) in zip(built, hex_ids) if s not in rejected_spans]
    for e in errors:
        e.pop("span_id", None)
    errors.sort(key=lambda e: e["index"])
    return {"accepted": len(written), "rejected": len(errors), "items": written, "errors": errors}


def _validated(payload: bytes, built, hex_ids, errors: list[dict]):
    try:
        checked = check_request(payload)
    except InvalidRequest as exc:  # cannot happen for a request built here; answered plainly if it does
        raise HTTPException(400, f"the activities did not make a valid OTLP request: {exc}") from None
    if checked.rejected:
        for (index, _, _), (_, span_id) in zip(built, hex_ids):
            problem = next((p for p in checked.problems if f"({span_id})" in p), None)
            if problem is not None:
                errors.append({"index": index, "error": problem, "span_id": span_id})
    return checked


def _answer(result: dict, created: bool = True) -> JSONResponse:
    if result["accepted"] == 0:
        first = result["errors"][0]["error"] if result["errors"] else "nothing to store"
        return JSONResponse({"error": f"no activity was stored: {first}", **result}, status_code=400)
    return JSONResponse(result, status_code=201 if created else 200)


def _body_schema(schema: dict) -> dict:
    """A request body for /openapi.json: routes read raw bytes (sendBeacon sends text/plain), so it is declared here."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema},
                                                          "text/plain": {"schema": {"type": "string"}}}}}


ACTIVITY_SCHEMA = aj.ActivityIn.model_json_schema()
BATCH_SCHEMA = {"oneOf": [
    {"type": "object", "required": ["activities"], "properties": {
        "activities": {"type": "array", "maxItems": aj.MAX_BATCH, "items": ACTIVITY_SCHEMA}}},
    {"type": "array", "maxItems": aj.MAX_BATCH, "items": ACTIVITY_SCHEMA}]}


@router.post("/v1/activities", response_model=WriteAnswer, status_code=201, summary="Write one activity",
             openapi_extra=_body_schema(ACTIVITY_SCHEMA))
async def write_activity(request: Request, writer: Writer = Depends(single_writer)):
    body = await _json_body(request)
    if not isinstance(body, dict):
        return error_response(400, 'the body must be one activity object, e.g. {"type": "tool_call", "name": "x"}; '
                                   "send several to POST /v1/activities/batch")
    good, errors = _parse_items([body], writer, 1)
    result = await run_in_threadpool(_store, request.app.state.collector, writer, good, errors)
    return _answer(result)


@router.post("/v1/activities/batch", response_model=WriteAnswer, status_code=201,
             summary="Write up to 1000 activities; per-item errors in the answer",
             openapi_extra=_body_schema(BATCH_SCHEMA))
async def write_batch(request: Request, writer: Writer = Depends(batch_writer)):
    settings = _settings(request)
    limit = settings.ingest_max_body_bytes if writer.ingest_key else None
    body = await _json_body(request, limit)
    raw = body.get("activities") if isinstance(body, dict) else body
    if not isinstance(raw, list):
        return error_response(400, 'the body must be {"activities": [ ... ]} or a JSON array of activities')
    max_items = min(settings.ingest_max_items, aj.MAX_BATCH) if writer.ingest_key else aj.MAX_BATCH
    good, errors = _parse_items(raw, writer, max_items)
    result = await run_in_threadpool(_store, request.app.state.collector, writer, good, errors)
    return _answer(result)


@router.put("/v1/activities/{span_id}", response_model=WriteAnswer,
            summary="Complete a started activity: the same span, written again with its final status",
            openapi_extra=_body_schema(ActivityUpdate.model_json_schema()))
async def complete_activity(request: Request, span_id: str, writer: Writer = Depends(single_writer)):
    collector = request.app.state.collector
    body = await _json_body(request)
    if not isinstance(body, dict):
        return error_response(400, 'the body must be an object, e.g. {"status": "completed", "output_tokens": 12}')
    try:
        update = ActivityUpdate.model_validate(body)
    except ValidationError as exc:
        return error_response(422, f"the request is not valid: {_describe(exc)}")
    try:
        stored = await run_in_threadpool(q.get_activity, collector, span_id, tenant=writer.tenant or None)
    except (q.NotFound, q.BadId) as exc:
        return error_response(404 if isinstance(exc, q.NotFound) else 400, str(exc))
    if stored["status"] not in aj.OPEN_STATUSES:
        return error_response(409, f"activity {stored['span_id']} is already {stored['status'] or 'finished'}; "
                                   "only a started or in_progress activity can be completed")
    for fixed in ("trace_id", "span_id", "parent_span_id", "type", "id"):
        if getattr(update, fixed) not in (None, stored.get(fixed)):
            return error_response(400, f"{fixed} cannot change when completing an activity; leave it out")
    try:
        merged = completion(stored, update)
    except (ValidationError, aj.ItemError) as exc:
        message = _describe(exc) if isinstance(exc, ValidationError) else str(exc)
        return error_response(400, f"the completed activity is not valid: {message}")
    ids = {0: (bytes.fromhex(stored["trace_id"]), bytes.fromhex(stored["span_id"]))}
    owner = Writer(stored["tenant"])  # an operator completing a tenant's activity writes it as the tenant's
    result = await run_in_threadpool(_store, collector, owner, [(0, merged)], [], ids)
    return _answer(result, created=False)


_CARRIED = ("name", "agent", "service", "operation", "model", "provider", "user_id", "session_id", "project_id",
            "ticket_id", "conversation_id", "environment", "severity", "input_tokens", "output_tokens",
            "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")


def completion(stored: dict, update: ActivityUpdate) -> aj.ActivityIn:
    """The completed span: the stored start's fields, overlaid with the update; ends now unless told."""
    fields: dict[str, Any] = {k: stored[k] for k in _CARRIED if stored.get(k) not in (None, "", 0)}
    attributes = {k: v for k, v in {**stored.get("attributes", {}), **{
        k: v if isinstance(v, str) else json.dumps(v) for k, v in stored.get("content", {}).items()}}.items()}
    fields.update(type=stored["type"] or "activity", start_time=stored["start_time"],
                  parent_span_id=stored["parent_span_id"] or None, attributes=attributes)
    if stored["cost_source"] == "provided" and stored["cost_usd"] != "0":
        fields["cost_usd"] = stored["cost_usd"]
    given = update.model_dump(exclude_none=True, exclude={"type"})
    fields.update(given)
    fields.setdefault("status", "completed")
    if fields["status"] in aj.OPEN_STATUSES:
        fields["status"] = "completed"
    if "end_time" not in given and "duration_ms" not in given:
        fields["end_time"] = time.time()
    if "attributes" in given:
        fields["attributes"] = {**attributes, **given["attributes"]}
    return aj.ActivityIn.model_validate(fields)


class RetentionAnswer(BaseModel):
    older_than: str
    tenant: str | None
    dropped_partitions: list[str]
    deleted_rows: int


@router.delete("/v1/activities", response_model=RetentionAnswer, tags=["retention"],
               summary="Delete activities older than a time (operator only): whole days by dropping partitions")
async def delete_old(request: Request, caller: Caller = Depends(require_operator),
                     older_than: str = Query(..., max_length=64, description="ISO 8601, Unix s/ms, or an age: 30d, 12h"),
                     tenant: str | None = Query(None, max_length=256, description="only this tenant's spans")):
    from ..query.filters import FilterError
    from ..store import retention

    unknown = sorted(set(request.query_params) - {"older_than", "tenant"})
    if unknown:
        raise FilterError(f"unknown parameter {unknown[0]!r}: DELETE /v1/activities takes older_than and tenant")
    cutoff = retention.parse_cutoff(older_than)
    result = await run_in_threadpool(retention.delete_older_than, request.app.state.collector, cutoff, tenant)
    return JSONResponse(result)
