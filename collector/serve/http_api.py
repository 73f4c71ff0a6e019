"""The collector's local HTTP API: read-only SQL, stats, health.

The embedded store admits one process, so while a collector runs, every
reader (``spanledger sql``, reports, Grafana-style tools) goes through here.
Queries go through the query gateway (``query.run_query``: allow-lists, tenant
rewrite, limits) with parameters bound by the engine; nothing in a request body
is ever formatted into SQL text.  A client that disconnects cancels its query.
"""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import json
import logging
import select
import socket
import ssl
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..auth import TokenAuth
from ..errors import QueryBusy, QueryCancelled, QueryLimitExceeded, QueryRefused
from ..query import cancel_query, run_query
from ..store import StoreUnavailable

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20


def json_default(value: Any) -> Any:
    """Decimals stay exact (as strings); times as ISO 8601."""
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, (uuid.UUID, ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(value)
    return str(value)


def result_to_json(result) -> dict[str, Any]:
    return {"columns": list(result.column_names), "types": [t.name for t in result.column_types],
            "rows": [list(r) for r in result.result_rows]}


class _Handler(BaseHTTPRequestHandler):
    server: _ApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet; never logs headers or tokens
        log.debug("api %s %s", self.command, self.path.split("?", 1)[0])

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, default=json_default).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client left (its query was cancelled)
            self.close_connection = True

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._send(status, {"error": message})

    def _tenant(self) -> str | None:
        """'' for an operator (or no auth configured), the tenant's name, or None after answering 401."""
        tenant = self.server.auth.tenant_for(self.headers.get("Authorization"))
        if tenant is None:
            self._error(HTTPStatus.UNAUTHORIZED, "missing or unknown bearer token: send 'Authorization: Bearer <token>'")
        return tenant

    def _authorized(self) -> bool:
        tenant = self._tenant()
        if tenant:
            self._error(HTTPStatus.FORBIDDEN, "stats need an operator token, not a tenant token")
            return False
        return tenant is not None

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            ready = self.server.collector.store() is not None
            self._send(HTTPStatus.OK, {"status": "ok", "store_ready": ready})
        elif path == "/v1/stats":
            if self._authorized():
                self._send(HTTPStatus.OK, self.server.collector.stats_snapshot())
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no such endpoint {path}: try POST /v1/sql, GET /v1/stats, GET /healthz")

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        if path != "/v1/sql":
            self._error(HTTPStatus.NOT_FOUND, f"no such endpoint {path}: POST /v1/sql takes {{\"query\": ...}}")
            return
        tenant = self._tenant()
        if tenant is None:
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"request body over {MAX_BODY_BYTES} bytes")
            return
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            query = body["query"]
            parameters = body.get("parameters") or {}
            if not isinstance(query, str) or not isinstance(parameters, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            self._error(HTTPStatus.BAD_REQUEST,
                        'the body must be JSON like {"query": "SELECT ... {name:Type}", "parameters": {"name": value}}')
            return
        collector = self.server.collector
        started = time.perf_counter()
        query_id = uuid.uuid4().hex
        watch = _DisconnectWatch(self.connection, lambda: cancel_query(collector, query_id, tenant=tenant or None))
        try:
            result = run_query(collector, query, parameters, tenant=tenant or None, query_id=query_id)
        except QueryRefused as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))
            return
        except QueryLimitExceeded as exc:
            too_large = "max_result" in exc.limit
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE if too_large else HTTPStatus.BAD_REQUEST, str(exc))
            return
        except QueryBusy as exc:
            self._send(HTTPStatus.TOO_MANY_REQUESTS, {"error": str(exc)},
                       headers={"Retry-After": str(max(1, round(exc.retry_after_s)))})
            return
        except QueryCancelled as exc:
            self._error(HTTPStatus.CONFLICT, str(exc))
            return
        except StoreUnavailable as exc:
            self._error(HTTPStatus.SERVICE_UNAVAILABLE, str(exc))
            return
        finally:
            watch.stop()
        payload = result_to_json(result)
        payload["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 3)
        self._send(HTTPStatus.OK, payload)


class _DisconnectWatch:
    """Calls ``on_gone`` if the client closes its connection while its query runs.

    Polls the socket (plain TCP only: a TLS socket cannot be peeked); a client
    that sends more bytes is still there, so watching stops."""

    def __init__(self, sock, on_gone) -> None:
        self._stop = threading.Event()
        self._sock = sock
        self._on_gone = on_gone
        if isinstance(sock, socket.socket) and not isinstance(sock, ssl.SSLSocket):
            threading.Thread(target=self._watch, name="spanledger-api-watch", daemon=True).start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                readable, _, _ = select.select([self._sock], [], [], 0.2)
                if not readable:
                    continue
                if self._sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"" and not self._stop.is_set():
                    self._on_gone()
                return
            except (OSError, ValueError):
                return
            except Exception:  # noqa: BLE001 - cancelling is best effort; the query's limits still hold
                log.debug("cancelling a query after its client left failed", exc_info=True)
                return

    def stop(self) -> None:
        self._stop.set()


class _ApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, collector, auth: TokenAuth) -> None:
        super().__init__(address, _Handler)
        self.collector = collector
        self.auth = auth


class QueryApi:
    def __init__(self, collector, endpoint: str, auth: TokenAuth, tls: tuple[str, str] | None = None) -> None:
        host, _, port = endpoint.rpartition(":")
        self._server = _ApiServer((host or "localhost", int(port or 0)), collector, auth)
        self.scheme = "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(certfile=tls[0], keyfile=tls[1])
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever, name="spanledger-api", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{self.scheme}://{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
