"""Helpers for the browser tests: the collector's real API app (with the console router) served
over real HTTP (uvicorn on port 0) beside a real collector, Debian's chromium driven by Playwright,
and a guard that fails any request to another host.

The app is the one the collector serves (collector/serve/app.py create_app), built for the
collector under test with its auth and settings; the tests add only a page of "some product"
that loads /tracker.js (/tracker-test) and a recorder of the requests the server received.
"""

from __future__ import annotations

import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from spanledger.collector.serve.uvicorn_thread import UvicornThread

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"  # screenshots (ignored by git)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


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


# The ingest keys the tracker page uses (extensions.spanledger_api.ingest_keys): key -> tenant.
INGEST_KEYS = {"site-key-0123456789": "web", "beacon-key-0123456789": "web"}
CONSOLE_CONFIG = ("processors:\n  batch:\n    timeout: 100ms\n"
                  "extensions:\n  spanledger_api:\n    ingest_keys:\n"
                  + "".join(f"      {key}: {tenant}\n" for key, tenant in INGEST_KEYS.items()))


def build_console_app(collector):
    """The collector's real API app (collector/serve/app.py create_app: every router, the console
    included, the collector's auth and its extensions.spanledger_api settings), plus the test-only
    /tracker-test page, behind a recorder that notes every /v1/* and /healthz request as the server
    got it (``app.state.received``: (method, url, body, authorization)) -- a sendBeacon fired as a
    page goes away can be seen only there.  The recorder only observes; every answer is the app's."""
    from spanledger.collector.serve.app import ApiSettings, create_app

    settings = ApiSettings.from_config(collector.config.get("extensions.spanledger_api"))
    app = create_app(collector, collector.auth, settings)
    app.get("/tracker-test", include_in_schema=False)(tracker_test_page)
    return RecordingApp(app)


class RecordingApp:
    """ASGI wrapper: passes everything to ``app`` unchanged, and records API requests with their bodies."""

    def __init__(self, app) -> None:
        self.app = app
        self.state = app.state
        self.state.received = []

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path.startswith("/v1/") or path == "/healthz"):
            await self.app(scope, receive, send)
            return
        chunks, done = [], False
        while not done:  # read the body here, then replay it to the app
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            done = not message.get("more_body", False)
        body = b"".join(chunks)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = scope.get("query_string", b"").decode("latin-1")
        url = f"http://{headers.get('host', '')}{path}" + (f"?{query}" if query else "")
        self.state.received.append((scope["method"], url, body, headers.get("authorization", "")))
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # then whatever comes next (a disconnect)

        await self.app(scope, replay, send)


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


def http_server(app) -> UvicornThread:
    """The product's uvicorn thread on 127.0.0.1:0, started (``.url``, ``.port``, ``.stop()``)."""
    return UvicornThread(app, "127.0.0.1:0", name="console-test-http").start()


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
    from collector_support import RawClient, new_request

    from spanledger.collector.ingest.activity_json import set_any_value

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
            set_any_value(span.attributes.add(key=key).value, value)
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
