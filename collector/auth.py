"""Bearer-token authentication shared by every listener (gRPC, HTTP): who is calling, and as which tenant."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TokenAuth:
    """Bearer tokens, each optionally bound to a tenant.  Empty = no authentication."""

    tenants_by_token: dict[str, str] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return bool(self.tenants_by_token)

    def tenant_for(self, authorization: str | None) -> str | None:
        """The caller's tenant ('' when the token has none), or None if not authenticated."""
        if not self.enabled:
            return ""
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        presented = authorization[7:].strip().encode()
        found = None
        for token, tenant in self.tenants_by_token.items():
            # compare against every token, in constant time, so timing reveals nothing
            if hmac.compare_digest(presented, token.encode()):
                found = tenant
        return found
