"""GET /metrics: the collector's metrics in the Prometheus text format.

Operator-only when authentication is on (Prometheus sends the token with
``authorization: {type: Bearer, credentials: ...}`` in its scrape config):
the counters describe every tenant's traffic together.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from ..telemetry import CONTENT_TYPE
from .deps import Caller, require_operator

router = APIRouter()


@router.get("/metrics", include_in_schema=True, summary="Prometheus metrics (operator token when auth is on)")
def metrics(request: Request, caller: Caller = Depends(require_operator)) -> Response:
    return Response(request.app.state.collector.metrics.render(), media_type=CONTENT_TYPE)
