"""Sending one ExportTraceServiceRequest to a destination, as the official OTLP exporters do.

gRPC: ``TraceService/Export`` with the request's own bytes (no re-encoding),
metadata from ``headers``, gzip when configured.  HTTP: ``POST`` protobuf to
``<endpoint>/v1/traces`` (or ``traces_endpoint``).  Both sort failures the way
the OTLP specification does: retryable (the destination is down, overloaded,
or asks to retry) or permanent (it will never take this request; dropping it
and counting it is the only honest outcome).  An unauthenticated answer is
treated as retryable: a token being rotated should not lose spans, and the
backlog bound still caps what waits.
"""

from __future__ import annotations

import gzip
import http.client
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_RETRYABLE_GRPC = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED,
                   grpc.StatusCode.ABORTED, grpc.StatusCode.CANCELLED, grpc.StatusCode.OUT_OF_RANGE,
                   grpc.StatusCode.DATA_LOSS, grpc.StatusCode.UNAUTHENTICATED}
_RETRYABLE_HTTP = {401, 408, 429, 502, 503, 504}


class SendFailed(Exception):
    def __init__(self, message: str, retryable: bool, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Delivered:
    rejected_spans: int = 0  # the destination's partial_success
    message: str = ""


def _partial(raw: bytes) -> Delivered:
    try:
        response = ExportTraceServiceResponse.FromString(raw)
    except Exception:  # noqa: BLE001 - a 200 with a body we cannot read still delivered the spans
        return Delivered()
    ps = response.partial_success
    return Delivered(ps.rejected_spans, ps.error_message)


def _ssl_context(tls: dict) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=tls["ca_file"] or None)
    if tls["cert_file"]:
        context.load_cert_chain(tls["cert_file"], tls["key_file"] or None)
    if tls["insecure_skip_verify"]:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class GrpcTransport:
    """otlp/NAME: endpoint HOST:PORT (TLS unless ``tls.insecure`` or an http:// scheme, as in the Collector)."""

    def __init__(self, config: dict) -> None:
        endpoint = config["endpoint"]
        insecure = config["tls"]["insecure"]
        if "://" in endpoint:
            scheme, endpoint = endpoint.split("://", 1)
            insecure = insecure or scheme == "http"
        self.target = endpoint.rstrip("/")
        options = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 4 << 20)]
        if insecure:
            self.channel = grpc.insecure_channel(self.target, options=options)
        else:
            tls = config["tls"]
            credentials = grpc.ssl_channel_credentials(
                root_certificates=open(tls["ca_file"], "rb").read() if tls["ca_file"] else None,
                private_key=open(tls["key_file"], "rb").read() if tls["key_file"] else None,
                certificate_chain=open(tls["cert_file"], "rb").read() if tls["cert_file"] else None)
            self.channel = grpc.secure_channel(self.target, credentials, options=options)
        self.call = self.channel.unary_unary(EXPORT)
        self.metadata = tuple((str(k).lower(), str(v)) for k, v in config["headers"].items())
        self.compression = grpc.Compression.Gzip if config["compression"] == "gzip" else grpc.Compression.NoCompression
        self.timeout_s = config["timeout"]

    def send(self, request: bytes) -> Delivered:
        try:
            raw = self.call(request, timeout=self.timeout_s, metadata=self.metadata, compression=self.compression)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
            raise SendFailed(f"{code.name}: {exc.details() if hasattr(exc, 'details') else exc}",
                             retryable=code in _RETRYABLE_GRPC, retry_after_s=_grpc_retry_after(exc)) from None
        return _partial(raw)

    def close(self) -> None:
        self.channel.close()


def _grpc_retry_after(exc) -> float | None:
    from google.rpc import error_details_pb2

    for key, value in (exc.trailing_metadata() or ()) if hasattr(exc, "trailing_metadata") else ():
        if key == "google.rpc.retryinfo-bin":
            info = error_details_pb2.RetryInfo.FromString(value)
            return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    return None


class HttpTransport:
    """otlphttp/NAME: POST application/x-protobuf, one kept-alive connection."""

    def __init__(self, config: dict) -> None:
        url = config["traces_endpoint"] or config["endpoint"].rstrip("/") + "/v1/traces"
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http(s) URL")
        self.url = url
        self.host, self.port, self.https = parts.hostname, parts.port, parts.scheme == "https"
        self.path = parts.path or "/v1/traces"
        self.headers = {str(k): str(v) for k, v in config["headers"].items()}
        self.gzip = config["compression"] == "gzip"
        self.timeout_s = config["timeout"]
        self.context = _ssl_context(config["tls"]) if self.https else None
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            if self.https:
                self._connection = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout_s,
                                                               context=self.context)
            else:
                self._connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        return self._connection

    def send(self, request: bytes) -> Delivered:
        headers = {"Content-Type": "application/x-protobuf", **self.headers}
        body = request
        if self.gzip:
            body = gzip.compress(request, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        try:
            connection = self._connect()
            connection.request("POST", self.path, body=body, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise SendFailed(f"{self.url}: {exc}", retryable=True) from None
        if response.status == 200:
            return _partial(raw)
        retry_after = response.getheader("Retry-After")
        message = f"{self.url} answered {response.status}: {raw[:200].decode('utf-8', 'replace')}"
        raise SendFailed(message, retryable=response.status in _RETRYABLE_HTTP,
                         retry_after_s=float(retry_after) if retry_after and retry_after.isdigit() else None)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def transport_for(name: str, config: dict):
    """GrpcTransport for otlp/..., HttpTransport for otlphttp/..."""
    return HttpTransport(config) if name.split("/", 1)[0] == "otlphttp" else GrpcTransport(config)
