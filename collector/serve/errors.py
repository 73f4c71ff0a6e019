"""Every error the HTTP API answers is JSON ``{"error": "<what was wrong and what to do>"}``.

FastAPI's own answers (404 for an unknown path, 405, 422 validation) are
rewritten into that shape here; an unexpected exception is logged with its
traceback and answered 500 without internals.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import Overloaded, QueryBusy, QueryCancelled, QueryLimitExceeded, QueryRefused
from ..query.filters import FilterError

log = logging.getLogger(__name__)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 404 and exc.detail == "Not Found":
        message = f"no such endpoint {request.url.path}: the endpoints are listed at /docs and /openapi.json"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"{request.method} is not allowed on {request.url.path}" + (f"; use {allowed}" if allowed else "")
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, message, headers=exc.headers)


def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = []
    for error in exc.errors()[:10]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return error_response(422, "the request is not valid: " + "; ".join(problems) + " (see /docs for the expected shape)")


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error answering %s %s", request.method, request.url.path)
    return error_response(500, "internal error while answering this request; it was logged on the collector. "
                               "Retry, and report it if it persists")


def install_error_handlers(app: FastAPI) -> None:
    from ..store import StoreUnavailable

    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(FilterError, lambda r, e: error_response(400, str(e)))
    app.add_exception_handler(QueryRefused, lambda r, e: error_response(400, str(e)))
    # a result over its size limit is "too large" (413); time, memory and rows read are the query's fault (400)
    app.add_exception_handler(QueryLimitExceeded, lambda r, e: error_response(
        413 if "max_result" in e.limit else 400, str(e)))
    app.add_exception_handler(QueryCancelled, lambda r, e: error_response(409, str(e)))
    app.add_exception_handler(QueryBusy, lambda r, e: error_response(
        429, str(e), headers={"Retry-After": str(max(1, round(e.retry_after_s)))}))
    app.add_exception_handler(Overloaded, lambda r, e: error_response(
        503, str(e), headers={"Retry-After": str(max(1, round(e.retry_after_s)))}))
    app.add_exception_handler(StoreUnavailable, lambda r, e: error_response(
        503, f"{e}", headers={"Retry-After": "2"}))
    app.add_exception_handler(Exception, _unexpected)
