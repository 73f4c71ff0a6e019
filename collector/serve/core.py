"""The API's base routes: health, read-only SQL, the schema a caller may read, and ingest stats."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from starlette.concurrency import run_in_threadpool

from ..query import cancel_query, describe_schema, run_query
from .deps import Caller, require_caller, require_operator
from .json_encoding import json_default, result_to_json

router = APIRouter()

SQL_EXAMPLE = 'the body must be JSON like {"query": "SELECT ... {name:Type}", "parameters": {"name": value}}'


class SqlRequest(BaseModel):
    query: str = Field(description="one read-only SELECT; values as {name:Type} placeholders")
    parameters: dict[str, Any] = Field(default_factory=dict, description="values bound by the engine")


class SqlResult(BaseModel):
    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    elapsed_ms: float


class Health(BaseModel):
    status: str
    store_ready: bool


class SchemaTable(BaseModel):
    table: str
    columns: list[dict[str, str]]


class SchemaAnswer(BaseModel):
    tables: list[SchemaTable]


@router.get("/healthz", response_model=Health, tags=["service"],
            summary="Liveness and whether the store is reachable (open even when auth is on)")
def healthz(request: Request) -> dict:
    return {"status": "ok", "store_ready": request.app.state.collector.store() is not None}


def _sql_body(raw: bytes) -> SqlRequest:
    """Any Content-Type is accepted (curl and urllib send form types by default); the body must be the JSON."""
    from fastapi import HTTPException

    try:
        body = json.loads(raw or b"{}")
        if not isinstance(body, dict) or not isinstance(body.get("query"), str) \
                or not isinstance(body.get("parameters") or {}, dict):
            raise TypeError
        return SqlRequest(query=body["query"], parameters=body.get("parameters") or {})
    except (ValueError, TypeError, UnicodeDecodeError):
        raise HTTPException(400, SQL_EXAMPLE) from None


@router.post("/v1/sql", response_model=SqlResult, tags=["query"],
             summary="Run one read-only SELECT with engine-bound parameters",
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": SqlRequest.model_json_schema()}}}})
async def sql(request: Request, caller: Caller = Depends(require_caller)) -> JSONResponse:
    body = _sql_body(await request.body())
    started = time.perf_counter()
    result = await run_cancelling_on_disconnect(request, body.query, body.parameters, caller)
    payload = result_to_json(result)
    payload["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 3)
    return JSONResponse(json.loads(json.dumps(payload, default=json_default)))


async def run_cancelling_on_disconnect(request: Request, query: str, parameters: dict, caller: Caller):
    """Run the query in a worker thread; if the client goes away first, cancel it in the engine.

    A query nobody will read must not keep its slot, its memory or the CPU ingest needs."""
    collector = request.app.state.collector
    query_id = uuid.uuid4().hex
    work = asyncio.ensure_future(run_in_threadpool(run_query, collector, query, parameters,
                                                   tenant=caller.tenant, query_id=query_id))
    while True:
        done, _ = await asyncio.wait({work}, timeout=0.05)
        if done:
            return work.result()
        if await request.is_disconnected():
            await run_in_threadpool(cancel_query, collector, query_id, tenant=caller.tenant)
            return await work


@router.get("/v1/schema", response_model=SchemaAnswer, tags=["query"],
            summary="The tables and columns this caller may read")
def schema(request: Request, caller: Caller = Depends(require_caller)) -> dict:
    return {"tables": describe_schema(request.app.state.collector, tenant=caller.tenant)}


@router.get("/v1/stats", tags=["service"], summary="Ingest counters (operator only)")
def stats(request: Request, caller: Caller = Depends(require_operator)) -> JSONResponse:
    return JSONResponse(json.loads(json.dumps(request.app.state.collector.stats_snapshot(), default=json_default)))
