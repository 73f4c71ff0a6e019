"""Attacks on the web console: markup in span data, framing, leaking the token, reading files
through /assets, and a tenant trying to see another tenant's rows.  Real collector, its real API
app over HTTP (uvicorn), Debian's chromium."""

from __future__ import annotations

import http.client
import json
import os
import re
import time
import sys
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "browser"))

from collector_support import token_config  # noqa: E402
from console_support import llm_span, open_console, send_spans, wait_until  # noqa: E402

from spanledger.collector.serve.console.console import ASSETS, asset_index  # noqa: E402

from conftest_browser_fixtures import browser, console, console_factory, page_factory  # noqa: E402,F401

XSS = ['<img src=x onerror="window.__xss=1">', '<script>window.__xss=2</script>', '"><svg onload=window.__xss=3>',
       "javascript:window.__xss=4", "</td><iframe srcdoc='<script>parent.__xss=5</script>'>"]
TENANT_A, TENANT_B = "tenant-a-token-0123456789", "tenant-b-token-0123456789"
TENANTS = token_config(tenants={"acme": TENANT_A, "globex": TENANT_B})


def wait_stored(collector, n):
    from collector_support import wait_stored as wait

    wait(collector, n)


# -- headers ------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/assets/app.js", "/assets/style.css", "/tracker.js", "/assets/nope.js"])
def test_every_console_answer_carries_csp_and_anti_framing(console, path):
    _, server = console
    answer = httpx.get(server.url + path)
    csp = answer.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp
    assert "'unsafe-eval'" not in csp
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"


def test_console_cannot_be_framed_by_another_site(console, page_factory):
    """A page on another origin puts the console in an iframe: the browser refuses to render it."""
    from console_support import http_server
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse

    _, server = console
    evil = FastAPI()
    evil.get("/")(lambda: HTMLResponse(f'<iframe id="f" src="{server.url}/"></iframe>'))
    evil_server = http_server(evil)
    try:
        page, _ = page_factory(evil_server.url)
        page.context.unroute("**/*")
        page.goto(evil_server.url + "/")
        page.wait_for_timeout(1500)
        frame = page.frame_locator("#f")
        assert frame.locator("#nav").count() == 0  # blocked: nothing of the console rendered
    finally:
        evil_server.stop()


# -- markup in data -----------------------------------------------------------------------------
def test_assets_never_build_markup_from_strings():
    """No view turns data into HTML: no innerHTML/outerHTML/insertAdjacentHTML/document.write/eval."""
    pattern = re.compile(r"\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\(")
    offenders = [f"{p.relative_to(ASSETS.parent)}:{n}" for p in [*ASSETS.rglob("*.js"), ASSETS.parent / "tracker.js"]
                 for n, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []


def test_span_names_with_markup_render_as_text_on_the_sql_page(console, page_factory):
    collector, server = console
    send_spans(collector, [llm_span(name, trace_id=os.urandom(16), span_id=os.urandom(8), model=name,
                                    attributes={"spanledger.user.id": name}) for name in XSS])
    wait_stored(collector, len(XSS))
    page, _ = page_factory(server.url)
    page.goto(server.url + "/#/sql")
    page.wait_for_selector("body[data-probed]")
    page.fill("#sql-text", "SELECT SpanName, UserId, count() AS n FROM spanledger.otel_traces GROUP BY SpanName, UserId ORDER BY SpanName")
    page.click("#sql-run")
    page.wait_for_selector("#sql-table tbody tr")
    shown = page.eval_on_selector_all("#sql-table tbody tr td:first-child", "tds => tds.map(td => td.textContent)")
    assert sorted(shown) == sorted(XSS)
    # the chart labels carry the same strings: still text
    assert page.evaluate("window.__xss") is None
    assert page.locator("#sql-output img, #sql-output script, #sql-output iframe, #sql-output svg svg").count() == 0


def test_markup_in_activities_renders_as_text_in_feed_and_trace(console, page_factory):
    collector, server = console
    trace = os.urandom(16)
    send_spans(collector, [llm_span(name, trace_id=trace, span_id=os.urandom(8), agent=name) for name in XSS])
    wait_stored(collector, len(XSS))
    page, _ = page_factory(server.url)
    page.goto(server.url + "/#/feed")
    page.wait_for_selector("#feed-list tbody tr")
    page.goto(server.url + "/#/trace/" + trace.hex())
    page.wait_for_selector(".wf-row")
    names = page.eval_on_selector_all(".wf-row .wf-name", "els => els.map(e => e.title)")
    assert sorted(names) == sorted(XSS)
    assert page.evaluate("window.__xss") is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(st.characters(codec="utf-8"), max_size=80) | st.sampled_from(XSS))
def test_fuzz_any_text_through_the_dom_builder_stays_text(console_page, text):
    """Whatever a span carries, h() puts it in the DOM as exactly that text, and links stay in-app."""
    result = console_page.evaluate("""async (text) => {
        const { h } = await import('/assets/dom.js');
        const cell = h('td', { title: text }, text);
        const link = h('a', { href: text }, text);
        return [cell.textContent, cell.children.length, cell.getAttribute('title'), link.getAttribute('href'), link.children.length];
    }""", text)
    assert result[0] == text and result[1] == 0 and result[2] == text and result[4] == 0
    assert result[3] == "#" or result[3].startswith("#") or (result[3].startswith("/") and not result[3].startswith("//"))
    assert console_page.evaluate("window.__xss") is None


@pytest.fixture
def console_page(console, page_factory):
    return open_console(page_factory, console[1])[0]


# -- files ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../console.py", "..%2fconsole.py", "%2e%2e/%2e%2e/app.py", "/etc/passwd",
                                  "views/../../console.py", "....//console.py", "app.js%00.png", "../../../../../../etc/passwd"])
def test_assets_cannot_reach_other_files(console, name):
    _, server = console
    status, body = raw_get(server, "/assets/" + name)
    assert status == 404
    assert b"import" not in body and b"root:" not in body


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(st.characters(codec="ascii", exclude_characters="#?"), min_size=1, max_size=60))
def test_fuzz_asset_names_answer_a_known_asset_or_404(console, name):
    _, server = console
    status, body = raw_get(server, "/assets/" + quote(name, safe="/%.~"))
    assert status in (200, 404), (name, status)
    if status == 200:
        assert body in {p.read_bytes() for p in asset_index().values()}


def test_unknown_asset_says_where_the_console_is(console):
    _, server = console
    answer = httpx.get(server.url + "/assets/views/nope.js")
    assert answer.status_code == 404
    assert answer.json()["error"] == "no console asset named 'views/nope.js'; the console starts at /"


def raw_get(server, path: str) -> tuple[int, bytes]:
    """GET with the path exactly as given (httpx would normalize the dots away)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


# -- the token ------------------------------------------------------------------------------------
def test_tenant_sees_only_its_own_rows_and_the_token_stays_out_of_urls(console_factory, page_factory):
    collector, server = console_factory(TENANTS)
    send_spans(collector, [llm_span(f"a-{i}", trace_id=os.urandom(16), span_id=os.urandom(8)) for i in range(3)], token=TENANT_A)
    send_spans(collector, [llm_span(f"b-{i}", trace_id=os.urandom(16), span_id=os.urandom(8)) for i in range(5)], token=TENANT_B)
    wait_stored(collector, 8)
    page, guard = page_factory(server.url)
    page.goto(server.url + "/#/sql")
    page.wait_for_selector("#signin[open]")
    page.fill("#token", "wrong-token-0123456789")
    page.click("#signin button[type=submit]")
    wait_until(page, "document.getElementById('signin-error').textContent.includes('refused')")
    page.fill("#token", TENANT_B)
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#sql-text")
    page.fill("#sql-text", "SELECT SpanName FROM spanledger.otel_traces ORDER BY SpanName")
    page.click("#sql-run")
    page.wait_for_selector("#sql-table tbody tr")
    names = page.eval_on_selector_all("#sql-table tbody tr td:first-child", "tds => tds.map(td => td.textContent)")
    assert names == [f"b-{i}" for i in range(5)]
    # kept in this tab only, sent only as a header
    assert page.evaluate("sessionStorage.getItem('spanledger.token')") == TENANT_B
    assert page.evaluate("JSON.stringify(localStorage)").find(TENANT_B) < 0
    assert all(TENANT_B not in url for url in guard.urls + [page.url])
    # a new tab (new session) has to sign in again
    other, _ = page_factory(server.url)
    other.goto(server.url + "/#/sql")
    other.wait_for_selector("#signin[open]")


def test_tenant_views_show_only_its_activities(console_factory, page_factory):
    collector, server = console_factory(TENANTS)
    send_spans(collector, [llm_span("mine", trace_id=os.urandom(16), span_id=os.urandom(8))], token=TENANT_A)
    send_spans(collector, [llm_span("theirs", trace_id=os.urandom(16), span_id=os.urandom(8))], token=TENANT_B)
    wait_stored(collector, 2)
    page, _ = page_factory(server.url)
    page.goto(server.url + "/#/feed")
    page.wait_for_selector("#signin[open]")
    page.fill("#token", TENANT_A)
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#feed-list tbody tr")
    names = page.eval_on_selector_all("#feed-list tbody tr td:nth-child(3)", "tds => tds.map(td => td.textContent)")
    assert names == ["mine"]


def test_live_feed_with_auth_on_sends_the_token_as_a_header_and_shows_only_the_tenants_spans(console_factory, page_factory):
    """EventSource cannot send a header, so the console reads GET /v1/feed with fetch streaming: the
    token goes in Authorization (never in the URL), and the live feed carries only the tenant's spans."""
    collector, server = console_factory(TENANTS)
    page, guard = page_factory(server.url)
    page.goto(server.url + "/#/feed")
    page.wait_for_selector("#signin[open]")
    page.fill("#token", TENANT_A)
    page.click("#signin button[type=submit]")
    wait_until(page, "document.getElementById('feed-state') && document.getElementById('feed-state').textContent === 'live'")
    send_spans(collector, [llm_span("theirs-live", trace_id=os.urandom(16), span_id=os.urandom(8))], token=TENANT_B)
    send_spans(collector, [llm_span("mine-live", trace_id=os.urandom(16), span_id=os.urandom(8))], token=TENANT_A)
    wait_until(page, "document.querySelectorAll('#feed-list tbody tr').length >= 1", timeout_s=20)
    page.wait_for_timeout(1000)  # B's span was sent first: had it been delivered, it would be here by now
    names = page.eval_on_selector_all("#feed-list tbody tr td:nth-child(3)", "tds => tds.map(td => td.textContent)")
    assert names == ["mine-live"]
    feeds = [r for r in server.app.state.received if "/v1/feed" in r[1]]
    assert feeds and all(r[3] in ("", "Bearer " + TENANT_A) for r in feeds)
    assert any(r[3] == "Bearer " + TENANT_A for r in feeds)
    assert all(TENANT_A not in r[1] for r in server.app.state.received)
    assert all(TENANT_A not in url for url in guard.urls + [page.url])


# -- the tracker -----------------------------------------------------------------------------------
def test_tracker_with_a_token_sends_it_only_as_a_header(console, page_factory):
    _, server = console
    secret = "tracker-secret-token-0123456789"
    page, _ = page_factory(server.url)
    page.goto(server.url + "/tracker-test")
    wait_until(page, "!!window.SpanledgerTracker")
    page.evaluate("""(secret) => {
        const t = SpanledgerTracker.init({ endpoint: location.origin, token: secret, batchSize: 1 });
        t.track('secret_checked', { metadata: { note: '<script>window.__xss=9</script>' } });
    }""", secret)
    deadline = time.monotonic() + 10
    while not (sent := [r for r in server.app.state.received if "/v1/activities/batch" in r[1] and r[3]]):
        assert time.monotonic() < deadline, "the tracker sent nothing with a token"
        page.wait_for_timeout(50)
    _, url, body, authorization = sent[0]
    assert authorization == "Bearer " + secret
    assert secret not in url and "ingest_key" not in url
    assert json.loads(body)["activities"][0]["metadata"] == {"note": "<script>window.__xss=9</script>"}
    assert page.evaluate("window.__xss") is None
    assert secret not in page.evaluate("JSON.stringify(localStorage) + JSON.stringify(sessionStorage)")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event_type=st.text(st.characters(codec="utf-8"), max_size=40), key=st.text(st.characters(codec="utf-8"), min_size=1, max_size=20),
       value=st.text(st.characters(codec="utf-8"), max_size=60) | st.integers(-(2**53), 2**53) | st.booleans())
def test_fuzz_tracker_events_carry_exactly_what_was_tracked(tracker_page, event_type, key, value):
    event = tracker_page.evaluate("""([type, key, value]) => {
        const t = new SpanledgerTracker.Tracker({ endpoint: location.origin, batchSize: 1e9, flushIntervalMs: 1e9 });
        t.track(type, { entityId: value, metadata: { [key]: value } });
        const event = t.queue[t.queue.length - 1];
        t.shutdown();
        localStorage.clear();
        return event;
    }""", [event_type, key, value])
    name = event_type or "event"
    assert event["event_type"] == name and event["type"] == "product_event"
    assert event["category"] == name.split("_")[0] and event["action"] == name.split("_")[-1]
    assert event["metadata"] == {key: value}
    assert event["entity_id"] == (str(value).lower() if isinstance(value, bool) else str(value))
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", event["id"])


@pytest.fixture
def tracker_page(console, page_factory):
    _, server = console
    page, _ = page_factory(server.url)
    page.goto(server.url + "/tracker-test?flush=100000000")
    wait_until(page, "!!window.tracker")
    page.evaluate("window.tracker.shutdown()")
    return page
