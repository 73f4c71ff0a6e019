"""An ASGI app served by uvicorn on a thread of the collector process.

The collector runs several listeners (gRPC, OTLP/HTTP, the API) in one
process, so uvicorn runs on its own thread and event loop, never owning
signals (the process's SIGTERM handler stops everything in order).  The
socket is bound here, before the thread starts, so an address in use fails
start-up at once and port 0 is known as soon as ``start`` returns.  The
OTLP/HTTP receiver and the API (collector/serve/app.py ``ApiServer``) are both
this class with their own uvicorn options.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

import uvicorn

log = logging.getLogger(__name__)


def split_endpoint(endpoint: str, default_host: str = "0.0.0.0") -> tuple[str, int]:
    """'HOST:PORT', '[v6]:PORT' or ':PORT' (then ``default_host``) -> (host, port); a message that says
    what to write otherwise."""
    host, sep, port = endpoint.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{endpoint!r} is not HOST:PORT (write e.g. localhost:4318, or 127.0.0.1:0 for any free port)")
    return host.strip("[]") or default_host, int(port)


def _bound_socket(host: str, port: int, endpoint: str) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise OSError(f"cannot listen on {endpoint}: {exc.strerror or exc}") from exc
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {endpoint}: {exc.strerror or exc}") from exc
    return sock


class UvicornThread:
    """One uvicorn server on one thread; ``start`` returns once it accepts connections."""

    def __init__(self, app, endpoint: str, *, name: str, ssl_certfile: str | None = None,
                 ssl_keyfile: str | None = None, limit_concurrency: int | None = None,
                 graceful_shutdown_s: float = 5, keep_alive_s: int = 30, default_host: str = "0.0.0.0",
                 **uvicorn_options: Any) -> None:
        """``graceful_shutdown_s``: how long ``stop`` lets requests in flight (streams too) finish;
        ``uvicorn_options`` go to ``uvicorn.Config`` as they are (e.g. ``http=`` a protocol class)."""
        host, port = split_endpoint(endpoint, default_host)
        self._socket = _bound_socket(host, port, endpoint)
        self.host = host
        self.port = self._socket.getsockname()[1]
        self.scheme = "https" if ssl_certfile else "http"
        self.app = app
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
                                limit_concurrency=limit_concurrency, timeout_keep_alive=keep_alive_s,
                                timeout_graceful_shutdown=graceful_shutdown_s, **uvicorn_options)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._failed: BaseException | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # noqa: BLE001 - reported to start()'s caller, never swallowed
            self._failed = exc
            log.exception("the HTTP server %s on %s stopped unexpectedly", self._thread.name, self.address)

    def start(self, timeout_s: float = 10.0) -> UvicornThread:
        """Serve; returns self (``UvicornThread(...).start()``) once connections are accepted."""
        self._thread.start()
        for _ in range(int(timeout_s / 0.01)):
            if self._server.started or self._failed or not self._thread.is_alive():
                break
            self._thread.join(0.01)
        if not self._server.started:
            raise OSError(f"the HTTP server on {self.address} did not start: {self._failed or 'timed out'}")
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop accepting, let requests in flight finish (uvicorn's graceful shutdown), join."""
        self._server.should_exit = True
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(2)
        self._socket.close()
