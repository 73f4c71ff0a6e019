"""GET /v1/budgets: each budget the caller may see, with its spend in the current window.

Operators see every budget; a tenant token only the budgets scoped to its
tenant (``scope: {tenant: ...}``), and their spend is read through the
tenant's own confined handle.  See docs/budgets.md for the fields and the
projection.
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ..errors import QueryBusy, QueryLimitExceeded, QueryRefused
from ..store import StoreUnavailable
from .deps import Caller, require_caller

router = APIRouter(tags=["budgets"])


@router.get("/v1/budgets", summary="Budgets with spent, remaining, window and projected spend")
def list_budgets(request: Request, caller: Caller = Depends(require_caller)):
    evaluator = request.app.state.collector.budgets
    now = dt.datetime.now(dt.timezone.utc)
    try:
        budgets = evaluator.statuses(caller.tenant, now)
    except StoreUnavailable as exc:
        return JSONResponse({"error": f"{exc}"}, status_code=503, headers={"Retry-After": "1"})
    except QueryBusy as exc:
        return JSONResponse({"error": str(exc)}, status_code=429,
                            headers={"Retry-After": str(max(1, round(exc.retry_after_s)))})
    except (QueryRefused, QueryLimitExceeded) as exc:
        return JSONResponse({"error": f"reading budget spend failed: {exc}"}, status_code=500)
    return {"budgets": budgets, "time_zone": evaluator.zone_name,
            "evaluated_at": now.isoformat().replace("+00:00", "Z")}
