"""Who is calling the HTTP API, decided once per request from its bearer token (never from session state).

Routes declare what they need with FastAPI dependencies::

    @router.get("/v1/things")
    def things(caller: Caller = Depends(require_caller)): ...      # any valid token (or auth off)
    def admin(caller: Caller = Depends(require_operator)): ...     # an operator token only

``caller.tenant`` is None for an operator (or when auth is off) and the
tenant's name for a tenant token; pass it straight to ``run_query``.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPBearer

_bearer = HTTPBearer(auto_error=False, description="a token from extensions.bearertokenauth (none when auth is off)")


@dataclass(frozen=True)
class Caller:
    tenant: str | None  # None: operator, sees every tenant

    @property
    def is_operator(self) -> bool:
        return self.tenant is None


def require_caller(request: Request, _documented=Depends(_bearer)) -> Caller:
    """The caller from ``Authorization: Bearer``; ``_bearer`` only declares the scheme in /openapi.json."""
    auth = request.app.state.auth
    tenant = auth.tenant_for(request.headers.get("authorization"))
    if tenant is None:
        raise HTTPException(401, "missing or unknown bearer token: send 'Authorization: Bearer <token>'",
                            headers={"WWW-Authenticate": "Bearer"})
    return Caller(tenant or None)


def require_operator(request: Request, _documented=Depends(_bearer)) -> Caller:
    caller = require_caller(request)
    if not caller.is_operator:
        raise HTTPException(403, "this endpoint needs an operator token, not a tenant token")
    return caller
