"""The steps every OTLP receiver takes for one Export, whatever the transport.

    authenticate -> admit (memory) -> decode (JSON only) -> check_request -> WalSink.accept (durable) -> answer

gRPC and HTTP differ only in how they read the request and how they spell the
outcome (status codes, headers).  Keeping the steps here means both give the
same answers, count the same things, and make the same durability promise:
nothing is acknowledged before it is in the write-ahead log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..auth import TokenAuth
from ..errors import Overloaded, Unauthenticated
from .validation import Checked, InvalidRequest, TimeBounds, check_request

UNAUTHENTICATED_MESSAGE = ("missing or unknown bearer token: send 'authorization: Bearer <token>' "
                           "with a configured token")


class IngestSink(Protocol):
    def admit(self, size: int) -> int:
        """Reserve memory for a request of ``size`` bytes (raise Overloaded if there is none); returns the reservation."""

    def release(self, reservation: int) -> None: ...

    def accept(self, checked: Checked, original: bytes, tenant: str) -> None:
        """Return once the spans are durable; raise Overloaded if they cannot be taken now."""


@dataclass
class ExportSteps:
    """One Export from bytes to a durable WAL record.  Raises Unauthenticated, Overloaded or InvalidRequest."""

    sink: IngestSink
    auth: TokenAuth = field(default_factory=TokenAuth)
    time_bounds: TimeBounds = field(default_factory=TimeBounds)
    on_rejected: Callable[[int], None] = lambda n: None
    # (transport, outcome, seconds or None) after every request: feeds /metrics.  None: refused
    # before the export steps ran (bad token, too large, wrong content type, too many at once).
    on_finished: Callable[[str, str, float | None], None] = lambda transport, outcome, seconds: None

    def authenticate(self, authorization: str | None, transport: str = "grpc") -> str:
        """The caller's tenant ('' when the token has none)."""
        tenant = self.auth.tenant_for(authorization)
        if tenant is None:
            self.refused(transport, "unauthenticated")
            raise Unauthenticated(UNAUTHENTICATED_MESSAGE)
        return tenant

    def refused(self, transport: str, outcome: str) -> None:
        """Count a request the transport refused before exporting it."""
        self.on_finished(transport, outcome, None)

    def export(self, request: bytes, tenant: str, *, transport: str = "grpc",
               decode: Callable[[bytes], bytes] | None = None) -> Checked:
        """Admit, (decode), check and durably accept ``request``; returns what to answer.

        ``decode`` turns a non-protobuf body (OTLP JSON) into protobuf bytes; it runs
        inside the memory reservation because decoding is what takes the memory."""
        started = time.perf_counter()
        outcome = "error"
        try:
            reservation = self.sink.admit(len(request) * (3 if decode else 1))
            try:
                if decode is not None:
                    request = decode(request)
                checked = check_request(request, self.time_bounds)
                if checked.rejected:
                    self.on_rejected(checked.rejected)
                if checked.accepted:
                    self.sink.accept(checked, request, tenant)
            finally:
                self.sink.release(reservation)
            outcome = "partial" if checked.rejected else "ok"
            return checked
        except InvalidRequest:
            outcome = "invalid"
            raise
        except Overloaded:
            outcome = "refused"
            raise
        finally:
            self.on_finished(transport, outcome, time.perf_counter() - started)
