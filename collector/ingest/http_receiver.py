"""OTLP/HTTP receiver: ``POST /v1/traces`` with protobuf or JSON bodies, on its own uvicorn server.

Same steps as gRPC (export_steps.py: token, memory admission, check_request,
WalSink.accept -> WAL), spelled in the OTLP/HTTP status codes:

  200  accepted (``partial_success`` says which spans were rejected and why)
  400  body is not OTLP (bad protobuf/JSON, truncated gzip)      google.rpc.Status body
  401  missing or unknown bearer token
  413  body over ``max_request_body_size``, before or after decompression (gzip bombs)
  415  Content-Type is neither application/x-protobuf nor application/json
  408  the body took longer than ``read_timeout`` to arrive
  429  more requests in flight than ``max_concurrent_requests``  Retry-After
  503  memory ceiling reached, WAL full, disk failing            Retry-After

Error bodies are a ``google.rpc.Status`` in the request's content type
(protobuf for protobuf, JSON otherwise); the JSON one also carries the message
under ``error``, like every other spanledger HTTP error.  The body is read in
chunks and decompressed incrementally, so no request makes the process hold
more than the limit.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from dataclasses import dataclass, field

import anyio
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import Overloaded, Unauthenticated
from .export_steps import ExportSteps
from .otlp_json import otlp_json_to_protobuf
from .validation import InvalidRequest

PROTOBUF, JSON = "application/x-protobuf", "application/json"
_DECOMPRESSORS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": 32 + zlib.MAX_WBITS}
# Headers a browser sender needs whatever is configured (the Collector allows these too).
_ALWAYS_ALLOWED_HEADERS = ("content-type", "content-encoding", "accept", "x-requested-with")


@dataclass(frozen=True)
class HttpReceiverSettings:
    endpoint: str = "localhost:4318"
    traces_url_path: str = "/v1/traces"
    max_request_body_bytes: int = 4 << 20
    max_concurrent_requests: int = 16
    read_timeout_s: float = 30.0  # a body that takes longer is answered 408 (slow senders cannot hold every slot)
    cors_allowed_origins: tuple[str, ...] = ()
    cors_allowed_headers: tuple[str, ...] = ()
    cors_max_age_s: int = 0
    tls_cert_file: str = ""
    tls_key_file: str = ""


class _Refused(Exception):
    def __init__(self, status: int, code: int, message: str, outcome: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.outcome, self.headers = status, code, outcome, headers or {}


def _status_response(status: int, code: int, message: str, content_type: str, headers: dict | None = None) -> Response:
    body = status_pb2.Status(code=code, message=message)
    if content_type == PROTOBUF:
        return Response(body.SerializeToString(), status, headers=headers, media_type=PROTOBUF)
    document = json_format.MessageToDict(body)
    document["error"] = message
    return Response(json.dumps(document), status, headers=headers, media_type=JSON)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_body(request: Request, limit: int) -> bytes:
    """The (decompressed) body, never holding more than ``limit`` bytes of it; _Refused otherwise."""
    too_large = _Refused(413, code_pb2.RESOURCE_EXHAUSTED,
                         f"the request body is over max_request_body_size ({limit} bytes, after decompression): "
                         "send smaller batches (e.g. lower the exporter's max_export_batch_size)", "too_large")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in _DECOMPRESSORS and encoding not in ("identity", ""):
        raise _Refused(415, code_pb2.INVALID_ARGUMENT, f"Content-Encoding {encoding!r} is not supported: "
                       "send gzip, deflate or an uncompressed body", "unsupported_encoding")
    wbits = _DECOMPRESSORS.get(encoding)
    decompressor = zlib.decompressobj(wbits) if wbits else None
    received = 0
    out = bytearray()
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise too_large
        if decompressor is None:
            out += chunk
            continue
        while chunk:
            try:
                out += decompressor.decompress(chunk, limit + 1 - len(out))
            except zlib.error as exc:
                raise _Refused(400, code_pb2.INVALID_ARGUMENT, f"the {encoding} body cannot be decompressed ({exc})",
                               "invalid") from None
            if len(out) > limit:
                raise too_large
            chunk = decompressor.unconsumed_tail
            if decompressor.eof and decompressor.unused_data:  # gzip allows several members back to back
                chunk = decompressor.unused_data
                decompressor = zlib.decompressobj(wbits)
    if decompressor is not None and not decompressor.eof and received:
        raise _Refused(400, code_pb2.INVALID_ARGUMENT, f"the {encoding} body is truncated", "invalid")
    return bytes(out)


def build_app(steps: ExportSteps, settings: HttpReceiverSettings) -> Starlette:
    """The receiver's ASGI app (one route; CORS when origins are configured)."""
    in_flight = 0  # only touched on the event loop thread

    async def export_traces(request: Request) -> Response:
        nonlocal in_flight
        media = _media_type(request)
        answer_in = PROTOBUF if media == PROTOBUF else JSON
        try:
            tenant = steps.authenticate(request.headers.get("authorization"), transport="http")
            if media not in (PROTOBUF, JSON):
                raise _Refused(415, code_pb2.INVALID_ARGUMENT,
                               f"Content-Type {media or '(none)'!r} is not supported: send application/x-protobuf "
                               "or application/json", "unsupported_media_type")
            if in_flight >= settings.max_concurrent_requests:
                raise _Refused(429, code_pb2.RESOURCE_EXHAUSTED, "too many export requests at once; retry after "
                               "the Retry-After delay", "busy", {"Retry-After": "1"})
            in_flight += 1
            try:
                try:
                    with anyio.fail_after(settings.read_timeout_s):
                        body = await read_body(request, settings.max_request_body_bytes)
                except TimeoutError:
                    raise _Refused(408, code_pb2.DEADLINE_EXCEEDED, f"the request body did not arrive within "
                                   f"read_timeout ({settings.read_timeout_s:g}s); send it faster or in smaller "
                                   "requests", "timeout") from None
                decode = otlp_json_to_protobuf if media == JSON else None
                checked = await run_in_threadpool(steps.export, body, tenant, transport="http", decode=decode)
            finally:
                in_flight -= 1
        except Unauthenticated as exc:
            return _status_response(401, code_pb2.UNAUTHENTICATED, str(exc), answer_in, {"WWW-Authenticate": "Bearer"})
        except _Refused as exc:
            steps.refused("http", exc.outcome)
            return _status_response(exc.status, exc.code, str(exc), answer_in, exc.headers)
        except InvalidRequest as exc:
            return _status_response(400, code_pb2.INVALID_ARGUMENT, str(exc), answer_in)
        except Overloaded as exc:
            retry_after = str(max(1, math.ceil(exc.retry_after_s)))
            return _status_response(503, code_pb2.UNAVAILABLE, str(exc), answer_in, {"Retry-After": retry_after})
        except ClientDisconnect:
            steps.refused("http", "disconnected")
            return Response(status_code=400)
        if answer_in == PROTOBUF:
            return Response(checked.response(), 200, media_type=PROTOBUF)
        response = ExportTraceServiceResponse.FromString(checked.response())
        return Response(json_format.MessageToJson(response, indent=None), 200, media_type=JSON)

    async def not_found(request: Request, exc) -> Response:
        return _status_response(404, code_pb2.NOT_FOUND, f"no route {request.url.path}: OTLP traces go to POST "
                                f"{settings.traces_url_path}", JSON)

    async def not_allowed(request: Request, exc) -> Response:
        return _status_response(405, code_pb2.UNIMPLEMENTED, f"{request.method} is not allowed here: POST "
                                "an ExportTraceServiceRequest", JSON, {"Allow": "POST"})

    middleware = []
    if settings.cors_allowed_origins:
        middleware.append(Middleware(CORSMiddleware, **cors_options(settings)))
    return Starlette(routes=[Route(settings.traces_url_path, export_traces, methods=["POST"])],
                     middleware=middleware, exception_handlers={404: not_found, 405: not_allowed})


def cors_options(settings: HttpReceiverSettings) -> dict:
    """CORSMiddleware options from the Collector's cors keys ('*' wildcards inside an origin allowed)."""
    exact = [o for o in settings.cors_allowed_origins if "*" not in o or o == "*"]
    patterns = [o for o in settings.cors_allowed_origins if "*" in o and o != "*"]
    regex = "|".join(re.escape(p).replace(r"\*", "[^/]*") for p in patterns) or None
    return {"allow_origins": exact, "allow_origin_regex": f"^(?:{regex})$" if regex else None,
            "allow_methods": ["POST"], "allow_credentials": False, "max_age": settings.cors_max_age_s or 600,
            "allow_headers": sorted({*_ALWAYS_ALLOWED_HEADERS, *(h.lower() for h in settings.cors_allowed_headers)})}


@dataclass
class OtlpHttpServer:
    """The receiver app on its own uvicorn server thread."""

    steps: ExportSteps
    settings: HttpReceiverSettings = field(default_factory=HttpReceiverSettings)

    def __post_init__(self) -> None:
        from ..serve.uvicorn_thread import UvicornThread

        self._server = UvicornThread(build_app(self.steps, self.settings), self.settings.endpoint,
                                     name="spanledger-otlp-http", ssl_certfile=self.settings.tls_cert_file or None,
                                     ssl_keyfile=self.settings.tls_key_file or None)

    @property
    def address(self) -> str:
        return self._server.address

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> None:
        self._server.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._server.stop(timeout_s)
