"""OTLP/gRPC receiver: ``TraceService/Export`` on grpcio, answered by the OTLP rules.

The servicer is thin: it authenticates, asks admission control for room,
checks the request (validation.py) and hands the bytes to the ingest sink,
which returns only once they are durable.  It never decodes spans for
storage; the request travels as the client's own bytes.

Status codes follow the OTLP specification:
  malformed request            INVALID_ARGUMENT
  over the size limit          RESOURCE_EXHAUSTED (grpc enforces it, after decompression)
  missing/wrong credentials    UNAUTHENTICATED
  memory or WAL full, disk     UNAVAILABLE + RetryInfo (the client should retry after the delay)
  every handler busy           UNAVAILABLE + RetryInfo (answered by ``ConcurrencyLimit``, see below)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from ..auth import TokenAuth
from ..errors import Overloaded
from .validation import Checked, InvalidRequest, TimeBounds, check_request

log = logging.getLogger(__name__)

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


class IngestSink(Protocol):
    def admit(self, size: int) -> int:
        """Reserve memory for a request of ``size`` bytes (raise Overloaded if there is none); returns the reservation."""

    def release(self, reservation: int) -> None: ...

    def accept(self, checked: Checked, original: bytes, tenant: str) -> None:
        """Return once the spans are durable; raise Overloaded if they cannot be taken now."""


@dataclass(frozen=True)
class TlsFiles:
    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None


@dataclass(frozen=True)
class ReceiverSettings:
    endpoint: str = "localhost:4317"
    max_message_bytes: int = 4 << 20
    workers: int = 16
    tls: TlsFiles | None = None
    auth: TokenAuth = field(default_factory=TokenAuth)
    time_bounds: TimeBounds = field(default_factory=TimeBounds)


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str, retry_after_s: float | None = None):
    details = []
    metadata = []
    if retry_after_s is not None:
        info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(
            seconds=int(retry_after_s), nanos=int((retry_after_s % 1) * 1e9)))
        detail = status_pb2.Status().details.add()
        detail.Pack(info)
        details.append(detail)
        # The OTel SDK exporters read RetryInfo from this trailer.
        metadata.append(("google.rpc.retryinfo-bin", info.SerializeToString()))
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=details)
    grpc_status = rpc_status.to_status(status)
    context.abort_with_status(_StatusWithExtraTrailers(grpc_status, tuple(metadata)))


class _StatusWithExtraTrailers(grpc.Status):
    def __init__(self, status: grpc.Status, extra: tuple) -> None:
        self.code = status.code
        self.details = status.details
        self.trailing_metadata = tuple(status.trailing_metadata) + extra


class TraceExportHandler:
    """The Export method, on raw bytes in and out."""

    def __init__(self, sink: IngestSink, settings: ReceiverSettings, on_rejected: Callable[[int], None] | None = None):
        self.sink = sink
        self.settings = settings
        self.on_rejected = on_rejected or (lambda n: None)

    def export(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        tenant = self.settings.auth.tenant_for(_metadata(context, "authorization"))
        if tenant is None:
            _abort(context, grpc.StatusCode.UNAUTHENTICATED,
                   "missing or unknown bearer token: send 'authorization: Bearer <token>' with a configured token")
        try:
            reservation = self.sink.admit(len(request))  # before parsing: parsing is what takes the memory
        except Overloaded as exc:
            _abort(context, grpc.StatusCode.UNAVAILABLE, str(exc), retry_after_s=exc.retry_after_s)
        try:
            return self._export_admitted(request, context, tenant)
        finally:
            self.sink.release(reservation)

    def _export_admitted(self, request: bytes, context: grpc.ServicerContext, tenant: str) -> bytes:
        try:
            checked = check_request(request, self.settings.time_bounds)
        except InvalidRequest as exc:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if checked.rejected:
            self.on_rejected(checked.rejected)
        if checked.accepted == 0:
            return checked.response()
        try:
            self.sink.accept(checked, request, tenant)
        except Overloaded as exc:
            _abort(context, grpc.StatusCode.UNAVAILABLE, str(exc), retry_after_s=exc.retry_after_s)
        return checked.response()


def _metadata(context: grpc.ServicerContext, key: str) -> str | None:
    for k, v in context.invocation_metadata() or ():
        if k == key:
            return v
    return None


class ConcurrencyLimit:
    """At most ``limit`` exports at once; the next one is answered UNAVAILABLE with RetryInfo.

    grpc's own bound (``maximum_concurrent_rpcs``) answers RESOURCE_EXHAUSTED without
    RetryInfo, which OTLP exporters treat as permanent: they drop the batch.  So the
    server runs a few more threads than ``limit``, spare ones that only refuse, and
    grpc's bound sits well above as a backstop."""

    RETRY_AFTER_S = 1.0

    def __init__(self, limit: int, export: Callable) -> None:
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)
        self._export = export
        self.refused = 0

    def __call__(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        if not self._slots.acquire(blocking=False):
            self.refused += 1
            _abort(context, grpc.StatusCode.UNAVAILABLE,
                   f"all {self.limit} export handlers are busy; retry after the delay given in RetryInfo",
                   retry_after_s=self.RETRY_AFTER_S)
        try:
            return self._export(request, context)
        finally:
            self._slots.release()


class OtlpGrpcServer:
    """Owns the grpc server: port, TLS, message limits, thread pool."""

    def __init__(self, handler: TraceExportHandler, settings: ReceiverSettings) -> None:
        self.settings = settings
        options = [
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", 1 << 20),
            ("grpc.so_reuseport", 0),
        ]
        spare = max(2, settings.workers // 4)  # threads that only answer "busy, retry"
        self.limit = ConcurrencyLimit(settings.workers, handler.export)
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=settings.workers + spare, thread_name_prefix="spanledger-grpc"),
            options=options,
            # a backstop far above what the spare threads refuse; bounds request bytes waiting for a thread
            maximum_concurrent_rpcs=(settings.workers + spare) * 4,
        )
        method = grpc.unary_unary_rpc_method_handler(self.limit)  # no (de)serializers: raw bytes
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Export": method}),))
        if settings.tls:
            credentials = grpc.ssl_server_credentials(
                [(settings.tls.key_file.read_bytes(), settings.tls.cert_file.read_bytes())],
                root_certificates=settings.tls.client_ca_file.read_bytes() if settings.tls.client_ca_file else None,
                require_client_auth=settings.tls.client_ca_file is not None,
            )
            self.port = self._server.add_secure_port(settings.endpoint, credentials)
        else:
            self.port = self._server.add_insecure_port(settings.endpoint)
        if self.port == 0:
            raise OSError(f"cannot listen on {settings.endpoint}: the address is in use or not valid")

    @property
    def address(self) -> str:
        host = self.settings.endpoint.rsplit(":", 1)[0]
        return f"{host}:{self.port}"

    def start(self) -> None:
        self._server.start()

    def stop(self, grace_s: float) -> None:
        """Refuse new calls, let calls in flight finish (up to ``grace_s``)."""
        self._server.stop(grace_s).wait(grace_s + 1)
