"""What the HTTP listener bounds before a route ever runs: how long a request head may take, and how big a body may be.

Two holes of the old http.server API closed here:

* a client that sends half a request head and then nothing held a thread
  forever.  uvicorn arms its keep-alive timer only *after* a response, and
  cancels it on any byte received, so a slow drip of header bytes is held
  open too.  ``HeaderDeadlineProtocol`` gives every request head a deadline
  from the moment the connection opens (or the previous response ends);
  a head not finished by then closes the connection.
* the body size was taken from Content-Length.  ``RequestLimits`` counts the
  bytes as they are read (fixed-length and chunked alike), after gzip
  decompression when the body is gzip-encoded, and answers 413 the moment
  the limit is passed.  A declared Content-Length over the limit is refused
  before anything is read.  Malformed Content-Length (negative, not a number)
  is refused by h11 with 400 before the app sees the request.
"""

from __future__ import annotations

import asyncio
import json
import zlib

import h11
from starlette.exceptions import HTTPException
from uvicorn.protocols.http.h11_impl import H11Protocol


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on every request head (``header_timeout`` seconds)."""

    header_timeout: float = 10.0  # set per server by ``protocol_with_deadline``

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._arm_head_deadline()

    def _arm_head_deadline(self) -> None:
        self._cancel_head_deadline()
        self._head_deadline = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _cancel_head_deadline(self) -> None:
        if getattr(self, "_head_deadline", None) is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()  # nothing to answer to: no request head was ever completed

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the head is complete (body or done): the deadline is met
            self._cancel_head_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_head_deadline()

    def connection_lost(self, exc) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)


def protocol_with_deadline(header_timeout: float) -> type[HeaderDeadlineProtocol]:
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout": header_timeout})


class BodyRefused(HTTPException):
    """Raised from inside ``receive``: FastAPI passes HTTPExceptions through its body parsing untouched,
    so the app's handler answers with this status and message (or ``RequestLimits`` does, if nothing else did)."""


class RequestLimits:
    """ASGI middleware: a request head of at most ``max_head_bytes`` (h11 bounds only a head that arrives in
    pieces), and at most ``max_bytes`` of body (after gzip decompression), read within ``timeout_s``.

    Routes that need a smaller bound check it themselves after reading."""

    def __init__(self, app, max_bytes: int, timeout_s: float = 30.0, max_head_bytes: int = 16 * 1024) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.max_head_bytes = max_head_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") + \
            sum(len(k) + len(v) + 4 for k, v in scope["headers"])
        if head > self.max_head_bytes:
            await _refuse(send, 431, f"the request line and headers are over {self.max_head_bytes} bytes: "
                                     "send fewer or shorter headers, and long filters in where= rather than the path")
            return
        limit = self.max_bytes
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, 413, f"the request body is {int(declared)} bytes; the limit is {limit} bytes "
                                     "(extensions.spanledger_api.max_request_body_mib): send smaller batches")
            return
        encoding = headers.get(b"content-encoding", b"identity").strip().lower()
        if encoding not in (b"identity", b"gzip", b""):
            await _refuse(send, 415, f"Content-Encoding {encoding.decode('latin-1')!r} is not supported: "
                                     "send the body plain or gzip-encoded")
            return
        inflater = zlib.decompressobj(wbits=31) if encoding == b"gzip" else None
        if inflater is not None:  # the app sees the decompressed body, so its length is no longer the header's
            scope = dict(scope, headers=[(k, v) for k, v in scope["headers"]
                                         if k not in (b"content-encoding", b"content-length")])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        counted = 0
        started = False

        body_done = False

        async def limited_receive():
            nonlocal counted, body_done
            if body_done:  # after the body, receive() only waits for a disconnect (streaming answers): no deadline
                return await receive()
            remaining = deadline - loop.time()
            try:
                message = await asyncio.wait_for(receive(), timeout=max(remaining, 0.001))
            except asyncio.TimeoutError:
                raise BodyRefused(408, f"the request body did not arrive within {self.timeout_s:g}s "
                                       "(extensions.spanledger_api.body_timeout): send it at once") from None
            if message["type"] != "http.request":
                return message
            body = message.get("body", b"")
            if inflater is not None:
                try:
                    body = inflater.decompress(body, limit - counted + 1)
                    if not message.get("more_body", False) and counted + len(body) <= limit:
                        body += inflater.flush()
                except zlib.error:
                    raise BodyRefused(400, BAD_GZIP) from None
                if not message.get("more_body", False) and not inflater.eof and counted + len(body) <= limit:
                    raise BodyRefused(400, BAD_GZIP)
            counted += len(body)
            body_done = not message.get("more_body", False)
            if counted > limit:
                raise BodyRefused(413, f"the request body is over {limit} bytes (after decompression); the limit "
                                       "is extensions.spanledger_api.max_request_body_mib: send smaller batches")
            return {**message, "body": body}

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyRefused as exc:
            if not started:
                await _refuse(send, exc.status_code, exc.detail)


BAD_GZIP = ("the body says Content-Encoding: gzip but is not valid gzip: "
            "compress it with gzip, or send it plain without the header")


async def _refuse(send, status: int, message: str) -> None:
    data = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": data})
