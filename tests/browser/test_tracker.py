"""The browser activity tracker (/tracker.js) on a real page in chromium.

What the page sends is observed at the browser's network layer (every request still goes to the
collector's real API, which accepts the page's ingest key: console_support.INGEST_KEYS); the
tests that check what was *stored* read the store."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from console_support import wait_until

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
IPAD = "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
ANDROID_TABLET = "Mozilla/5.0 (Linux; Android 14; SM-X910) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


def batches(guard) -> list[tuple[dict, list[dict]]]:
    """Every batch the page posted: (query parameters, events)."""
    found = []
    for url, body in guard.posts:
        parts = urlsplit(url)
        if parts.path == "/v1/activities/batch":
            found.append((parse_qs(parts.query), json.loads(body)["activities"]))
    return found


def open_page(page_factory, server, query: str = "", **context):
    page, guard = page_factory(server.url, **context)
    page.goto(server.url + "/tracker-test" + query)
    wait_until(page, "!!window.tracker")
    return page, guard


def wait_batches(page, guard, n: int, timeout_s: float = 10) -> list:
    """(Playwright's sync API delivers the page's requests only while one of its calls runs.)"""
    deadline = time.monotonic() + timeout_s
    while len(batches(guard)) < n:
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {n} batches, saw {len(batches(guard))}")
        page.wait_for_timeout(50)
    return batches(guard)


def test_events_are_batched_by_ten_then_by_timer(console, page_factory):
    _, server = console
    page, guard = open_page(page_factory, server, "?flush=1000")
    page.evaluate("for (let i = 0; i < 25; i++) tracker.track('project_created', {entityType: 'project', entityId: 'p-' + i, metadata: {n: i}})")
    # the tenth event sends at once; what piled up meanwhile goes in the next request
    sent = wait_batches(page, guard, 2)
    assert [len(events) for _, events in sent] == [10, 15]
    page.evaluate("for (let i = 0; i < 3; i++) tracker.track('project_opened')")
    page.wait_for_timeout(400)
    assert len(batches(guard)) == 2  # fewer than ten wait for the timer
    sent = wait_batches(page, guard, 3, timeout_s=5)
    assert len(sent[2][1]) == 3
    ids = [e["id"] for _, events in sent for e in events]
    assert len(ids) == len(set(ids)) == 28  # each event once, each with its own client id
    first = sent[0][1][0]
    assert first["type"] == "product_event" and first["event_type"] == "project_created"
    assert (first["category"], first["action"]) == ("project", "created")
    assert (first["entity_type"], first["entity_id"], first["metadata"]) == ("project", "p-0", {"n": 0})
    assert first["user_id"] == "u-42" and first["device_type"] == "desktop" and first["session_id"]
    assert sent[0][0] == {"ingest_key": ["site-key-0123456789"]}  # no bearer token in a browser page


def test_queue_waits_offline_persists_and_is_sent_once_back_online(console, page_factory):
    _, server = console
    page, guard = open_page(page_factory, server, "?flush=500")
    page.context.set_offline(True)
    page.evaluate("for (let i = 0; i < 3; i++) tracker.track('email_opened', {entityId: 'e' + i})")
    page.wait_for_timeout(1200)
    assert batches(guard) == []
    assert len(page.evaluate("JSON.parse(localStorage.getItem('spanledger.tracker.queue'))")) == 3
    # the page goes away while offline: nothing can be sent, the queue stays in localStorage
    page.goto("about:blank")
    assert batches(guard) == []
    page.context.set_offline(False)
    page.goto(server.url + "/tracker-test?flush=500")
    sent = wait_batches(page, guard, 1)
    page.wait_for_timeout(1200)
    sent = batches(guard)
    assert len(sent) == 1 and sorted(e["entity_id"] for e in sent[0][1]) == ["e0", "e1", "e2"]
    wait_until(page, "JSON.parse(localStorage.getItem('spanledger.tracker.queue')).length === 0")
    page.reload()  # acknowledged events are not sent again
    wait_until(page, "!!window.tracker")
    page.wait_for_timeout(1000)
    assert len(batches(guard)) == 1


def test_two_tabs_offline_lose_nothing(console, page_factory):
    _, server = console
    page, guard = open_page(page_factory, server, "?flush=300")
    other = page.context.new_page()
    other.goto(server.url + "/tracker-test?flush=300")
    wait_until(other, "!!window.tracker")
    page.context.set_offline(True)
    page.evaluate("for (let i = 0; i < 4; i++) tracker.track('tab_one', {entityId: 'a' + i})")
    other.evaluate("for (let i = 0; i < 4; i++) tracker.track('tab_two', {entityId: 'b' + i})")
    page.context.set_offline(False)
    deadline = time.monotonic() + 10
    while len({e["entity_id"] for _, events in batches(guard) for e in events}) < 8:
        assert time.monotonic() < deadline, f"sent so far: {batches(guard)}"
        page.wait_for_timeout(50)
    wait_until(page, "JSON.parse(localStorage.getItem('spanledger.tracker.queue')).length === 0")


def test_online_event_flushes_what_waited(console, page_factory):
    _, server = console
    page, guard = open_page(page_factory, server, "?flush=60000")
    page.context.set_offline(True)
    page.evaluate("for (let i = 0; i < 12; i++) tracker.track('modal_opened')")
    page.wait_for_timeout(300)
    assert batches(guard) == []
    page.context.set_offline(False)
    sent = wait_batches(page, guard, 1)
    assert len(sent[0][1]) == 12


def test_page_unload_delivers_with_a_beacon_and_the_ingest_key(console, page_factory):
    _, server = console
    page, guard = open_page(page_factory, server, "?flush=60000&key=beacon-key-0123456789")
    page.evaluate("tracker.track('standup_completed'); tracker.track('project_opened', {entityId: '123'})")
    assert batches(guard) == []
    page.click("#away")
    wait_until(page, "location.search.includes('page=2')")
    # a beacon is sent by the browser after the page is gone: check what the server received
    deadline = time.monotonic() + 10
    while not (received := [r for r in server.app.state.received if "/v1/activities/batch" in r[1]]):
        assert time.monotonic() < deadline, "no beacon reached the server"
        page.wait_for_timeout(50)
    method, url, body, _ = received[0]
    assert method == "POST" and parse_qs(urlsplit(url).query) == {"ingest_key": ["beacon-key-0123456789"]}
    assert [e["event_type"] for e in json.loads(body)["activities"]] == ["standup_completed", "project_opened"]
    assert len(received) == 1


def test_session_id_survives_a_reload_and_a_new_tab_gets_its_own(console, page_factory):
    _, server = console
    page, _ = open_page(page_factory, server)
    first = page.evaluate("tracker.sessionId")
    page.reload()
    wait_until(page, "!!window.tracker")
    assert page.evaluate("tracker.sessionId") == first
    other = page.context.new_page()
    other.goto(server.url + "/tracker-test")
    wait_until(other, "!!window.tracker")
    assert other.evaluate("tracker.sessionId") not in ("", first)


@pytest.mark.parametrize("agent, expected", [(IPHONE, "mobile"), (IPAD, "tablet"), (ANDROID_TABLET, "tablet"), (None, "desktop")])
def test_device_type(console, page_factory, agent, expected):
    _, server = console
    page, _ = open_page(page_factory, server, **({"user_agent": agent} if agent else {}))
    assert page.evaluate("tracker.device") == expected


def test_timed_actions_complete_with_duration_or_cancel(console, page_factory):
    _, server = console
    page, guard = open_page(page_factory, server, "?flush=200")
    page.evaluate("""async () => {
        const timer = tracker.trackTimed('ai_wizard_completed', {entityType: 'project', metadata: {wizard_type: 'creation'}});
        const dropped = tracker.trackTimed('ai_wizard_completed');
        await new Promise(r => setTimeout(r, 120));
        timer.complete({goals_generated: 5});
        timer.complete();      // a second complete records nothing
        dropped.cancel();
        tracker.trackPageView('projects', {view_mode: 'list'});
        tracker.trackBatch([{type: 'project_opened', options: {entityId: '1'}}, {type: 'modal_opened', options: {entityId: 'details'}}]);
    }""")
    sent = wait_batches(page, guard, 1)
    events = [e for _, batch in sent for e in batch]
    assert [e["event_type"] for e in events] == ["ai_wizard_completed", "page_viewed", "project_opened", "modal_opened"]
    assert events[0]["duration_ms"] >= 100 and events[0]["metadata"] == {"wizard_type": "creation", "goals_generated": 5}
    assert events[1]["metadata"] == {"page": "projects", "view_mode": "list"}


def test_offline_batch_is_stored_once_and_only_once(console, page_factory):
    collector, server = console
    page, guard = open_page(page_factory, server, "?flush=300")
    page.context.set_offline(True)
    page.evaluate("for (let i = 0; i < 5; i++) tracker.track('once_checked', {entityId: 'x' + i})")
    page.context.set_offline(False)
    wait_batches(page, guard, 1)
    # the same batch re-sent (a lost answer, a beacon racing a fetch): stored once by client id
    url, body = guard.posts[-1]
    page.evaluate("([url, body]) => fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'}, body})", [url, body])
    from collector_support import wait_stored

    wait_stored(collector, 5)
    time.sleep(1)
    rows = collector.store().query(
        "SELECT SpanName, ActivityType, UserId, SessionId, TenantId, SpanAttributes['spanledger.entity.id'], "
        "SpanAttributes['spanledger.device.type'], SpanAttributes['url.path'] FROM spanledger.otel_traces "
        "WHERE SpanName = 'once_checked'").result_rows
    assert len(rows) == 5
    assert {r[1] for r in rows} == {"product_event"} and {r[2] for r in rows} == {"u-42"}
    assert {r[3] for r in rows} == {page.evaluate("tracker.sessionId")}
    assert {r[4] for r in rows} == {"web"}  # the tenant the ingest key names (extensions.spanledger_api.ingest_keys)
    assert sorted(r[5] for r in rows) == [f"x{i}" for i in range(5)]
    assert {(r[6], r[7]) for r in rows} == {("desktop", "/tracker-test")}


def test_an_unknown_ingest_key_is_refused_and_not_retried(console, page_factory):
    """A key the collector does not know is a 401 for good: the tracker drops the batch instead of
    retrying it forever (and says so in the console), and nothing is stored."""
    collector, server = console
    page, guard = open_page(page_factory, server, "?flush=200&key=unknown-key-0123456789")
    page.evaluate("tracker.track('never_stored')")
    wait_batches(page, guard, 1)
    wait_until(page, "JSON.parse(localStorage.getItem('spanledger.tracker.queue')).length === 0")
    answers = [r for r in server.app.state.received if "/v1/activities/batch" in r[1]]
    assert len(answers) == 1
    page.wait_for_timeout(1500)
    assert len(batches(guard)) == 1
    assert collector.store().query("SELECT count() FROM spanledger.otel_traces").result_rows[0][0] == 0


def test_a_long_offline_queue_goes_in_batches_the_ingest_key_allows(console, page_factory):
    """With an ingest key the collector takes at most ingest_key_limits.max_items (100) events and 64 KiB
    a request, and refuses more for good: a queue of 250 is sent in requests within both limits, all stored."""
    collector, server = console
    page, guard = open_page(page_factory, server, "?flush=200")
    page.context.set_offline(True)
    page.evaluate("for (let i = 0; i < 250; i++) tracker.track('bulk_checked', {entityId: 'b' + i, metadata: {pad: 'x'.repeat(200)}})")
    page.context.set_offline(False)
    deadline = time.monotonic() + 20
    while sum(len(events) for _, events in batches(guard)) < 250:
        assert time.monotonic() < deadline, f"sent so far: {[len(e) for _, e in batches(guard)]}"
        page.wait_for_timeout(50)
    assert all(len(events) <= 100 for _, events in batches(guard))
    assert all(len(body.encode()) <= 64 << 10 for url, body in guard.posts if "/v1/activities/batch" in url)
    from collector_support import wait_stored

    wait_stored(collector, 250)
    rows = collector.store().query("SELECT uniqExact(SpanAttributes['spanledger.entity.id']) FROM spanledger.otel_traces "
                                   "WHERE SpanName = 'bulk_checked'").result_rows
    assert rows[0][0] == 250
    wait_until(page, "JSON.parse(localStorage.getItem('spanledger.tracker.queue')).length === 0")
