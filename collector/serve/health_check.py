"""The health_check extension: up or down on a port of its own, as the Collector's extension answers it.

Load balancers and Kubernetes probes ask ``GET /`` (extensions.health_check.path)
without credentials, often from outside the machine, so this listener says only
whether the collector can take spans end to end: 200 while it runs and its store
is reachable, 503 while the store is unavailable (spans still go into the WAL)
or the collector is stopping.  No store error, address or version is disclosed;
the API's ``/healthz`` and ``/v1/stats`` have those behind the API's auth.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

log = logging.getLogger(__name__)


class _Handler(BaseHTTPRequestHandler):
    timeout = 5  # a client that does not finish its request line and headers by then is dropped
    server_version = "spanledger"
    sys_version = ""
    server: "_Server"

    def do_GET(self) -> None:  # noqa: N802 - the http.server spelling
        self._answer(with_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(with_body=False)

    def _refuse_method(self) -> None:
        self._send(405, {"status": "method not allowed: use GET or HEAD"}, True, allow="GET, HEAD")

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method  # noqa: N815

    def _answer(self, with_body: bool) -> None:
        if self.path.split("?", 1)[0] != self.server.health_path:
            self._send(404, {"status": f"not found: health is at {self.server.health_path}"}, with_body)
        elif self.server.is_ready():
            up_since = self.server.up_since
            self._send(200, {"status": "Server available",
                             "upSince": datetime.fromtimestamp(up_since, timezone.utc).isoformat(),
                             "uptime": f"{time.time() - up_since:.3f}s"}, with_body)
        else:
            self._send(503, {"status": "Server not available"}, with_body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed requests get a fixed JSON answer with a status line: nothing the client sent is echoed."""
        self.close_connection = True
        self.request_version = "HTTP/1.0"  # an unparsable request line would otherwise get a bare HTTP/0.9 body
        self._send(code, {"status": f"{code} {HTTPStatus(code).phrase}"}, self.command != "HEAD")

    def _send(self, status: int, body: dict, with_body: bool, allow: str = "") -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        if allow:
            self.send_header("Allow", allow)
        self.end_headers()
        if with_body:
            self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the http.server signature
        log.debug("health_check: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    health_path = "/"
    up_since = 0.0

    def __init__(self, address, is_ready: Callable[[], bool]) -> None:
        self.is_ready = is_ready
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)


class HealthCheckServer:
    """Answers on ``endpoint`` (host:port, port 0 for any free one) until ``stop``."""

    def __init__(self, endpoint: str, path: str, is_ready: Callable[[], bool]) -> None:
        from .app import split_endpoint

        host, port = split_endpoint(endpoint)
        self._server = _Server((host, port), is_ready)
        self._server.health_path = path
        self._server.up_since = time.time()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="spanledger-health-check", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._server.up_since = time.time()
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever, which a failed start never ran
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
