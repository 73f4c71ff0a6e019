"""ASGI and WSGI middleware: one api_call span per request, with route, status and errors."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

import spanledger
from spanledger import semconv as sc
from spanledger.middleware import SpanledgerASGIMiddleware, SpanledgerWSGIMiddleware

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class Route:
    """What Starlette/FastAPI leave in ``scope["route"]`` after routing."""

    def __init__(self, path: str) -> None:
        self.path = path


async def asgi_app(scope, receive, send) -> None:
    """A minimal router: /users/{user_id}, /boom, everything else 404."""
    if scope["type"] == "lifespan":
        return
    path = scope["path"]
    if path.startswith("/users/"):
        scope["route"] = Route("/users/{user_id}")
        with spanledger.llm_call("gpt-4o") as call:
            call.set_usage(input_tokens=1, output_tokens=1)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
    elif path == "/boom":
        raise RuntimeError("handler crashed")
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def call_asgi(app, path: str, headers: list[tuple[bytes, bytes]] = ()) -> list[dict]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "scheme": "http", "headers": list(headers)}
    asyncio.run(app(scope, receive, send))
    return sent


def test_asgi_request_with_route_template_trace_and_request_id(captured_spans) -> None:
    app = SpanledgerASGIMiddleware(asgi_app, agent_name="system")
    sent = call_asgi(app, "/users/42", [(b"traceparent", TRACEPARENT.encode()), (b"x-request-id", b"req-7"),
                                        (b"user-agent", b"pytest")])  # fmt: skip
    assert sent[0]["status"] == 200
    server = captured_spans.by_name("GET /users/{user_id}")
    assert server.kind.name == "SERVER"
    assert dict(server.attributes) == {
        sc.ACTIVITY_TYPE: "api_call",
        sc.HTTP_REQUEST_METHOD: "GET",
        sc.URL_PATH: "/users/42",
        sc.URL_SCHEME: "http",
        sc.USER_AGENT_ORIGINAL: "pytest",
        sc.GEN_AI_AGENT_NAME: "system",
        sc.REQUEST_ID: "req-7",
        sc.HTTP_ROUTE: "/users/{user_id}",
        sc.HTTP_RESPONSE_STATUS_CODE: 200,
    }
    assert format(server.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert format(server.parent.span_id, "016x") == "b7ad6b7169203331"
    llm = captured_spans.by_name("chat gpt-4o")
    assert llm.parent.span_id == server.context.span_id
    assert llm.attributes[sc.REQUEST_ID] == "req-7"  # inherited by the work done for the request


def test_asgi_errors_and_unmatched_paths(captured_spans) -> None:
    app = SpanledgerASGIMiddleware(asgi_app)
    with pytest.raises(RuntimeError, match="handler crashed"):
        call_asgi(app, "/boom")
    call_asgi(app, "/nowhere")
    boom = captured_spans.by_name("GET /boom")  # no template: the path
    assert boom.status.status_code.name == "ERROR"
    assert boom.attributes[sc.HTTP_RESPONSE_STATUS_CODE] == 500
    assert boom.attributes[sc.ERROR_TYPE] == "RuntimeError"
    missing = captured_spans.by_name("GET /nowhere")
    assert missing.attributes[sc.HTTP_RESPONSE_STATUS_CODE] == 404
    assert missing.status.status_code.name == "UNSET"  # a 4xx is the client's problem


def test_asgi_non_http_and_excluded_paths_pass_through(captured_spans) -> None:
    app = SpanledgerASGIMiddleware(asgi_app, excluded_paths=["/nowhere"])
    asyncio.run(app({"type": "lifespan"}, None, None))
    call_asgi(app, "/nowhere")
    assert captured_spans.spans() == []


def wsgi_app(environ, start_response):
    path = environ["PATH_INFO"]
    if path.startswith("/items/"):
        environ["app.route"] = "/items/<item_id>"
        spanledger.product_event("item_viewed", entity_id=path.rsplit("/", 1)[-1])
        start_response("201 Created", [("Content-Type", "text/plain")])
        return [b"created"]
    if path == "/boom":
        raise ValueError("wsgi handler crashed")
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"busy"]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def wsgi_server(captured_spans) -> Iterator[str]:
    app = SpanledgerWSGIMiddleware(wsgi_app, route_getter=lambda environ: environ.get("app.route"))
    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def fetch(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_wsgi_requests_through_a_real_server(wsgi_server, captured_spans) -> None:
    assert fetch(f"{wsgi_server}/items/9", {"traceparent": TRACEPARENT, "X-Request-ID": "r-1"}) == 201
    assert fetch(f"{wsgi_server}/boom") == 500
    assert fetch(f"{wsgi_server}/busy") == 503
    # The server closes the body (ending the span) just after the client has its response.
    deadline = time.monotonic() + 30
    while len(captured_spans.spans()) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    item = captured_spans.by_name("GET /items/<item_id>")
    assert item.kind.name == "SERVER"
    attributes = dict(item.attributes)
    assert attributes.pop(sc.USER_AGENT_ORIGINAL).startswith("Python-urllib")
    assert attributes == {
        sc.ACTIVITY_TYPE: "api_call",
        sc.HTTP_REQUEST_METHOD: "GET",
        sc.URL_PATH: "/items/9",
        sc.URL_SCHEME: "http",
        sc.REQUEST_ID: "r-1",
        sc.HTTP_ROUTE: "/items/<item_id>",
        sc.HTTP_RESPONSE_STATUS_CODE: 201,
    }
    assert format(item.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    event = captured_spans.by_name("item_viewed")
    assert event.parent.span_id == item.context.span_id and event.attributes[sc.REQUEST_ID] == "r-1"
    boom = captured_spans.by_name("GET /boom")
    assert (boom.attributes[sc.HTTP_RESPONSE_STATUS_CODE], boom.attributes[sc.ERROR_TYPE]) == (500, "ValueError")
    busy = captured_spans.by_name("GET /busy")
    assert busy.status.status_code.name == "ERROR" and busy.attributes[sc.ERROR_TYPE] == "503"
