"""Reading activities over HTTP: GET /v1/activities (filtered, keyset pages), one activity, one trace as a tree.

The SQL lives in collector/query/activities.py; this module turns query
parameters into its arguments, and its answers and errors into JSON.
Every filter of collector/query/filters.py is a documented query parameter
(the list is built from ``FIELDS``, so a new filter field appears here and in
/openapi.json by itself); a parameter this endpoint does not know is refused
rather than silently ignored.
"""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ..query import activities as q
from ..query.filters import FIELDS, FilterError
from .deps import Caller, require_caller
from .errors import error_response

router = APIRouter(tags=["activities"])

PAGE_PARAMS = {"limit", "cursor", "detailed"}
TIME_PARAMS = {"since", "until", "where"}


class Activity(BaseModel):
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    type: str
    agent: str
    service: str
    operation: str
    model: str
    provider: str
    start_time: str
    duration_ms: float
    status: str
    severity: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    cost_usd: str
    cost_source: str
    user_id: str
    session_id: str
    project_id: str
    ticket_id: str
    conversation_id: str
    environment: str
    tenant: str
    # with detailed=true
    attributes: dict[str, str] | None = None
    content: dict[str, Any] | None = None
    resource: dict[str, str] | None = None
    events: list[dict[str, Any]] | None = None
    links: list[dict[str, Any]] | None = None


class ActivityPage(BaseModel):
    activities: list[Activity]
    next_cursor: str | None
    time_zone: str


class ActivityWithChain(Activity):
    ancestors: list[Activity] | None = None
    descendants: list[Activity] | None = None


class TraceAnswer(BaseModel):
    trace_id: str
    spans: int
    truncated: bool
    totals: dict[str, Any]
    roots: list[dict[str, Any]]


def _filters_dependency():
    """A dependency whose signature declares every filter (for validation and /openapi.json); it returns the
    query string's values as lists, the shape ``build_condition`` takes."""
    def filters(request: Request, **_declared) -> dict[str, list[str]]:
        known = set(FIELDS) | TIME_PARAMS | PAGE_PARAMS
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            raise FilterError(f"unknown parameter {unknown[0]!r}; the filters are: {', '.join(sorted(FIELDS))}, "
                              "since, until, where; paging: limit, cursor, detailed")
        return {k: request.query_params.getlist(k) for k in set(request.query_params) - PAGE_PARAMS}

    parameters = [inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request)]
    for name, spec in FIELDS.items():
        parameters.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=list[str] | None,
                                            default=Query(None, description=spec.doc or f"{name} equals (repeat for any of)")))
    for name, doc in (("since", "from this time on (ISO 8601 or Unix s/ms), inclusive"),
                      ("until", "before this time (ISO 8601 or Unix s/ms)"),
                      ("where", "an expression: agent:planner AND (model:gpt-4o OR NOT status:error)")):
        parameters.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=str | None,
                                            default=Query(None, description=doc, max_length=4000)))
    filters.__signature__ = inspect.Signature(parameters)
    return filters


activity_filters = _filters_dependency()


def cursor_signer(request: Request) -> q.CursorSigner:
    """The key that signs cursors: kept in the data dir, so cursors survive a restart of the collector."""
    signer = getattr(request.app.state, "cursor_signer", None)
    if signer is None:
        signer = q.CursorSigner(q.cursor_key(getattr(request.app.state.collector, "data_dir", None)))
        request.app.state.cursor_signer = signer
    return signer


def read_errors(exc: Exception) -> JSONResponse:
    if isinstance(exc, q.NotFound):
        return error_response(404, str(exc))
    return error_response(400, str(exc))


@router.get("/v1/activities", response_model=ActivityPage, summary="Activities, newest first, filtered and paged")
async def list_activities(request: Request, caller: Caller = Depends(require_caller),
                          filters: dict = Depends(activity_filters),
                          limit: int = Query(q.DEFAULT_LIMIT, ge=1, le=q.MAX_LIMIT, description="page size"),
                          cursor: str | None = Query(None, max_length=200,
                                                     description="next_cursor of the previous page"),
                          detailed: bool = Query(False, description="add attributes, resource, events, links, content")):
    signer = cursor_signer(request)
    scope = signer.scope(filters, caller.tenant, detailed)
    try:
        after = signer.decode(cursor, scope) if cursor else None
        rows, next_key = await run_in_threadpool(q.list_activities, request.app.state.collector, filters,
                                                 tenant=caller.tenant, limit=limit, after=after, detailed=detailed)
    except (q.CursorError, q.BadId) as exc:
        return read_errors(exc)
    next_cursor = signer.encode(*next_key, scope) if next_key else None
    return JSONResponse({"activities": rows, "next_cursor": next_cursor, "time_zone": "UTC"})


@router.get("/v1/activities/{span_id}", response_model=ActivityWithChain,
            summary="One activity with everything stored about it (include_chain adds ancestors and descendants)")
async def get_activity(request: Request, span_id: str, caller: Caller = Depends(require_caller),
                       include_chain: bool = Query(False, description="add ancestors (root first) and descendants")):
    collector = request.app.state.collector
    try:
        activity = await run_in_threadpool(q.get_activity, collector, span_id, tenant=caller.tenant)
        if include_chain:
            spans, _ = await run_in_threadpool(q.trace_spans, collector, activity["trace_id"], tenant=caller.tenant)
            activity.update(q.chain(spans, activity["span_id"]))
    except (q.NotFound, q.BadId) as exc:
        return read_errors(exc)
    return JSONResponse(activity)


@router.get("/v1/traces/{trace_id}", response_model=TraceAnswer, tags=["traces"],
            summary="A trace as a tree: each node with its own and its subtree's tokens and cost")
async def get_trace(request: Request, trace_id: str, caller: Caller = Depends(require_caller)):
    try:
        spans, truncated = await run_in_threadpool(q.trace_spans, request.app.state.collector, trace_id,
                                                   tenant=caller.tenant)
    except (q.NotFound, q.BadId) as exc:
        return read_errors(exc)
    roots = q.trace_tree(spans)
    totals = q.subtree_totals(roots)
    return JSONResponse({"trace_id": trace_id.strip().lower(), "spans": len(spans), "truncated": truncated,
                         "totals": totals, "roots": roots})
