"""An ASGI app served by uvicorn on a thread of the collector process.

The collector runs several listeners (gRPC, OTLP/HTTP, the API) in one
process, so uvicorn runs on its own thread and event loop, never owning
signals (the process's SIGTERM handler stops everything in order).  The
socket is bound here, before the thread starts, so an address in use fails
start-up at once and port 0 is known as soon as ``start`` returns.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading

import uvicorn

log = logging.getLogger(__name__)


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """'HOST:PORT' (or '[v6]:PORT') -> (host, port); a message that says what to write otherwise."""
    host, sep, port = endpoint.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{endpoint!r} is not HOST:PORT (write e.g. localhost:4318, or 127.0.0.1:0 for any free port)")
    return host.strip("[]") or "0.0.0.0", int(port)


class UvicornThread:
    """One uvicorn server on one thread; ``start`` returns once it accepts connections."""

    def __init__(self, app, endpoint: str, *, name: str, ssl_certfile: str | None = None,
                 ssl_keyfile: str | None = None, limit_concurrency: int | None = None,
                 graceful_shutdown_s: float = 5) -> None:
        """``graceful_shutdown_s``: how long ``stop`` lets requests in flight (streams too) finish."""
        host, port = split_endpoint(endpoint)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host, port))
        except OSError as exc:
            self._socket.close()
            raise OSError(f"cannot listen on {endpoint}: {exc.strerror or exc}") from exc
        self._socket.listen(128)
        self.host = host
        self.port = self._socket.getsockname()[1]
        self.scheme = "https" if ssl_certfile else "http"
        self.app = app
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
                                limit_concurrency=limit_concurrency, timeout_keep_alive=30,
                                timeout_graceful_shutdown=graceful_shutdown_s)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def start(self, timeout_s: float = 10.0) -> UvicornThread:
        """Serve; returns self (``UvicornThread(...).start()``) once connections are accepted."""
        self._thread.start()
        for _ in range(int(timeout_s / 0.01)):
            if self._server.started or not self._thread.is_alive():
                break
            self._thread.join(0.01)
        if not self._server.started:
            raise OSError(f"the HTTP server on {self.address} did not start")
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop accepting, let requests in flight finish (uvicorn's graceful shutdown), join."""
        self._server.should_exit = True
        self._thread.join(timeout_s)
        self._socket.close()
