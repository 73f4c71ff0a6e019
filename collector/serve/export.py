"""GET /v1/export: activities as CSV or JSON lines, or spans as OTLP/JSON, for a time range and filters.

Streamed: rows are read and written one block at a time, so an export of any
size never sits in memory.  Filters are the shared ones (``since``, ``until``,
field parameters, ``where=``; see collector/query/filters.py); a tenant token
exports only its tenant's rows.  ``format=otlp`` writes one OTLP/JSON
ExportTraceServiceRequest per line; each line can be POSTed to another
collector's /v1/traces as is.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from ..errors import QueryBusy, QueryLimitExceeded, QueryRefused
from ..query.export import FORMATS, export_chunks
from ..query.filters import FilterError
from .deps import Caller, require_caller

router = APIRouter()

_MEDIA = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson", "otlp": "application/x-ndjson"}
_BLOCK_ROWS = 10_000


@router.get("/v1/export", summary="Export activities (csv, jsonl) or spans (otlp: OTLP/JSON lines), streamed")
def export(request: Request, format: str = "jsonl", caller: Caller = Depends(require_caller)):  # noqa: A002
    from ..store import StoreUnavailable

    params = {k: request.query_params.getlist(k) for k in request.query_params.keys()}
    params.pop("format", None)
    if format not in FORMATS:
        return JSONResponse({"error": f"format: {format!r} is not one of {', '.join(FORMATS)}"}, 400)
    try:
        chunks = export_chunks(request.app.state.collector, params, tenant=caller.tenant, fmt=format,
                               block_rows=_BLOCK_ROWS)
    except (FilterError, QueryRefused) as exc:
        return JSONResponse({"error": str(exc)}, 400)
    except QueryLimitExceeded as exc:
        return JSONResponse({"error": f"{exc}: narrow the time range or the filters"}, 400)
    except QueryBusy as exc:
        return JSONResponse({"error": str(exc)}, 429, headers={"Retry-After": str(max(1, int(exc.retry_after_s)))})
    except StoreUnavailable as exc:
        return JSONResponse({"error": str(exc)}, 503, headers={"Retry-After": "5"})
    filename = f"spanledger-export.{'csv' if format == 'csv' else 'jsonl'}"
    return StreamingResponse(chunks, media_type=_MEDIA[format],
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})
