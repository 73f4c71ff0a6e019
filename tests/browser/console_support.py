"""Helpers for the browser tests: the console served over real HTTP (uvicorn on port 0) beside a
real collector, Debian's chromium driven by Playwright, and a guard that fails any request to
another host.

Until the FastAPI app (collector/serve/app.py) lands, the console is served by an app built
here: the console router plus a pass-through of /v1/* and /healthz to the collector's own
HTTP API, so every answer the console sees comes from the real endpoints.  Endpoints the
collector does not serve yet answer 404 and the tests that need them skip, naming them.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

from spanledger.collector.auth import TokenAuth
from spanledger.collector.config import bearer_tokens

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"  # screenshots (ignored by git)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
FORWARDED_HEADERS = ("authorization", "content-type", "accept", "last-event-id")


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("BROWSER TESTS SKIPPED: Debian's chromium is not installed and could not be "
                    "(run scripts/dev test as root, or apt-get install -y chromium)")
    return path


@contextmanager
def chromium():
    """Debian's chromium under Playwright's sync API, stopped on exit.

    Used per test module: the sync API keeps an event loop running in this thread while it
    lives, so it must be gone before later tests call asyncio.run()."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def build_console_app(collector) -> FastAPI:
    """The console router in a FastAPI app with the two state attributes every router expects.

    Interim: requests for the read API are passed through, unchanged, to the collector's HTTP
    API (collector.api).  Once serve/app.py is merged, replace this with the real app."""
    from spanledger.collector.serve.console import router

    app = FastAPI()
    app.state.collector = collector
    app.state.auth = TokenAuth(bearer_tokens(collector.config))
    app.state.received = []  # (method, url, body, authorization) of every API request, as the server got it
    app.include_router(router)
    # a fresh connection per request: the old http.server API answers 401 without reading the
    # body, which then corrupts the next request on a kept-alive connection
    upstream = httpx.AsyncClient(base_url=collector.api.url, timeout=30, limits=httpx.Limits(max_keepalive_connections=0))

    @app.api_route("/v1/{rest:path}", methods=["GET", "POST"])
    @app.get("/healthz")
    async def pass_through(request: Request, rest: str = "") -> Response:
        app.state.received.append((request.method, str(request.url), await request.body(),
                                   request.headers.get("authorization", "")))
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED_HEADERS}
        answer = await upstream.request(request.method, request.url.path, params=request.query_params,
                                        headers=headers, content=await request.body())
        keep = {k: v for k, v in answer.headers.items() if k.lower() in ("content-type", "www-authenticate")}
        return Response(answer.content, status_code=answer.status_code, headers=keep)

    app.get("/tracker-test", include_in_schema=False)(tracker_test_page)
    return app


TRACKER_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>a product page</title>
<script src="/tracker.js"></script>
<script>
  const params = new URLSearchParams(location.search);
  window.tracker = SpanledgerTracker.init({ endpoint: location.origin, ingestKey: params.get('key') || 'site-key-0123456789',
    userId: 'u-42', flushIntervalMs: Number(params.get('flush') || 5000) });
</script></head><body><h1>product page</h1><a id="away" href="/tracker-test?page=2">next page</a></body></html>"""


def tracker_test_page():
    """A page of 'some product' that loads the tracker the way a site would (test-only route)."""
    from fastapi.responses import HTMLResponse

    return HTMLResponse(TRACKER_PAGE)


class HttpServer:
    """uvicorn on 127.0.0.1:0 in a thread; .url once started."""

    def __init__(self, app) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self._sock = sock
        self.app = app
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve(sockets=[sock])), daemon=True)

    def start(self) -> HttpServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise AssertionError("uvicorn did not start within 10 s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self._sock.close()


def require_endpoint(base_url: str, method: str, path: str, token: str = "") -> None:
    """Skip (naming the endpoint) when this collector does not serve it yet."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kwargs = {"json": {}} if method == "POST" else {}
    answer = httpx.request(method, base_url + path, headers=headers, timeout=10, **kwargs)
    if answer.status_code == 404 and "no such endpoint" in answer.text:
        pytest.skip(f"needs {method} {path.split('?')[0]}, not on this branch yet (read-side API); "
                    "the lead removes this skip after merging")


class OffOriginGuard:
    """Fails every request the page makes to any origin but the collector's (no CDN, no phone-home)."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.blocked: list[str] = []
        self.urls: list[str] = []
        self.posts: list[tuple[str, str]] = []  # (url, body) of every POST the page made

    def handle(self, route) -> None:
        url = route.request.url
        self.urls.append(url)
        if route.request.method == "POST":
            self.posts.append((url, route.request.post_data or ""))
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob") or f"{parts.scheme}://{parts.netloc}" == self.origin:
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("blockedbyclient")


def send_spans(collector, spans: list[dict], *, token: str = "", service: str = "console-test") -> None:
    """Send spans over real OTLP/gRPC: each dict has name and optional trace_id, span_id, parent,
    attributes, start_ns, duration_ns, error."""
    from collector_support import RawClient, new_request, set_attribute

    request, scope = new_request(service)
    for item in spans:
        span = scope.spans.add()
        span.trace_id = item["trace_id"]
        span.span_id = item["span_id"]
        span.parent_span_id = item.get("parent", b"")
        span.name = item["name"]
        span.start_time_unix_nano = item.get("start_ns") or time.time_ns()
        span.end_time_unix_nano = span.start_time_unix_nano + item.get("duration_ns", 1_000_000)
        if item.get("error"):
            span.status.code = 2
            span.status.message = "failed"
        for key, value in (item.get("attributes") or {}).items():
            set_attribute(span.attributes.add(key=key).value, value)
    client = RawClient(collector.server.address, metadata=(("authorization", f"Bearer {token}"),) if token else ())
    try:
        response = client.export(request.SerializeToString())
        assert response.partial_success.rejected_spans == 0, response.partial_success.error_message
    finally:
        client.close()


def llm_span(name: str, *, trace_id: bytes, span_id: bytes, parent: bytes = b"", model: str = "gpt-4o",
             agent: str = "planner", input_tokens: int = 100, output_tokens: int = 20, **extra) -> dict:
    attributes = {"spanledger.activity.type": "llm_call", "gen_ai.request.model": model, "gen_ai.response.model": model,
                  "gen_ai.system": "openai", "gen_ai.usage.input_tokens": input_tokens,
                  "gen_ai.usage.output_tokens": output_tokens, "gen_ai.agent.name": agent}
    attributes.update(extra.pop("attributes", {}))
    return {"name": name, "trace_id": trace_id, "span_id": span_id, "parent": parent, "attributes": attributes, **extra}


def wait_until(page, expression: str, timeout_s: float = 10.0, arg=None):
    """Poll a JS expression from outside the page until it is truthy.

    (Playwright's wait_for_function evaluates its predicate with eval in the page, which the
    console's CSP rightly refuses; page.evaluate goes through the debugger protocol instead.)"""
    deadline = time.monotonic() + timeout_s
    while True:
        value = page.evaluate(expression, arg) if arg is not None else page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout_s}s: {expression}")
        page.wait_for_timeout(50)  # (not time.sleep: Playwright's sync API pumps events only in its calls)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    print(f"screenshot: {path}")
    return path


def open_console(page_factory, server, hash_: str = "#/sql"):
    """A fresh page on the console at ``hash_``, once its sign-in probe has answered: (page, guard)."""
    page, guard = page_factory(server.url)
    page.goto(server.url + "/" + hash_)
    page.wait_for_selector("body[data-probed]")
    return page, guard
