"""HTTP routes of the named reports: GET /v1/reports, GET /v1/reports/{name}, and the aliases users expect.

Every route takes the caller from its bearer token (deps.require_caller) and
runs the report through ``run_query`` with the caller's tenant, so a tenant
token reads only its own rows whatever it sends.  Query parameters are
checked by the report registry before anything runs: an unknown name, a bad
value or a tenant filter from a tenant token is a 400 with a message, never a
partial answer.  Decimals are JSON strings (exact), times ISO 8601.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from ..errors import QueryBusy, QueryLimitExceeded, QueryRefused, SpanledgerError
from ..query import run_query
from ..query.reports import ReportError, Tables, describe_reports, run_report
from ..store import StoreUnavailable
from .deps import Caller, require_caller
from .json_encoding import json_default

router = APIRouter(tags=["reports"])

DEFAULT_TIME_ZONE = "UTC"


def _json(status: int, body: dict, headers: dict | None = None) -> Response:
    return Response(json.dumps(body, default=json_default), status_code=status, media_type="application/json",
                    headers=headers)


def deployment_time_zone(collector) -> str:
    """extensions.spanledger_api.time_zone (checked at start-up), UTC when unset."""
    config = getattr(collector, "config", None)
    try:
        return config.get("extensions.spanledger_api.time_zone") or DEFAULT_TIME_ZONE
    except (AttributeError, KeyError):
        return DEFAULT_TIME_ZONE


def answer(request: Request, caller: Caller, name: str, extra: dict[str, list[str]] | None = None) -> Response:
    """Run report ``name`` with the request's query string (plus ``extra`` from the path) for ``caller``."""
    collector = request.app.state.collector
    raw: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        raw.setdefault(key, []).append(value)
    for key, value in (extra or {}).items():
        if key in raw:
            return _json(400, {"error": f"{key}: it is in the path; leave it out of the query string"})
        raw[key] = value
    store = collector.store()
    if store is None:
        return _json(503, {"error": "the store is not reachable yet; retry shortly"}, {"Retry-After": "2"})
    tables = Tables(store.options.database, store.options.traces_table)

    def execute(sql: str, parameters: dict):
        result = run_query(collector, sql, parameters, tenant=caller.tenant)
        return list(result.column_names), [list(row) for row in result.result_rows]

    try:
        body = run_report(name, raw, execute=execute, price_book=getattr(collector, "price_book", None), operator=caller.is_operator,
                          time_zone=deployment_time_zone(collector), tables=tables)
    except QueryBusy as exc:
        return _json(429, {"error": str(exc)}, {"Retry-After": str(max(1, round(exc.retry_after_s)))})
    except (QueryRefused, QueryLimitExceeded) as exc:
        return _json(400, {"error": str(exc)})
    except StoreUnavailable as exc:
        return _json(503, {"error": str(exc)}, {"Retry-After": "2"})
    except SpanledgerError as exc:  # ReportError, FilterError: the caller's parameters
        return _json(400, {"error": str(exc)})
    return _json(200, body)


@router.get("/v1/reports", summary="List the named reports with their parameters")
def list_reports(caller: Caller = Depends(require_caller)) -> JSONResponse:
    return JSONResponse({"reports": describe_reports()})


@router.get("/v1/reports/{name}", summary="Run one named report (query parameters: see GET /v1/reports)")
def get_report(name: str, request: Request, caller: Caller = Depends(require_caller)) -> Response:
    return answer(request, caller, name)


@router.get("/v1/conversations/{conversation_id}", summary="A conversation in sequence order")
def get_conversation(conversation_id: str, request: Request, caller: Caller = Depends(require_caller)) -> Response:
    return answer(request, caller, "conversation", {"id": [conversation_id]})


@router.get("/v1/projects/{project_id}/timeline", summary="A project's action timeline")
def get_project_timeline(project_id: str, request: Request, caller: Caller = Depends(require_caller)) -> Response:
    return answer(request, caller, "project_timeline", {"id": [project_id]})


@router.get("/v1/tickets/{ticket_id}/history", summary="A ticket's history")
def get_ticket_history(ticket_id: str, request: Request, caller: Caller = Depends(require_caller)) -> Response:
    return answer(request, caller, "ticket_history", {"id": [ticket_id]})


@router.get("/v1/sessions/{session_id}", summary="A session's events")
def get_session(session_id: str, request: Request, caller: Caller = Depends(require_caller)) -> Response:
    return answer(request, caller, "session_events", {"id": [session_id]})


@router.get("/v1/agents/stats", summary="Per-agent statistics")
def get_agent_stats(request: Request, caller: Caller = Depends(require_caller)) -> Response:
    return answer(request, caller, "agent_stats")


@router.get("/v1/analytics/summary", summary="Product analytics summary")
def get_analytics_summary(request: Request, caller: Caller = Depends(require_caller)) -> Response:
    return answer(request, caller, "analytics_summary")


__all__ = ["router", "answer", "deployment_time_zone", "ReportError"]
