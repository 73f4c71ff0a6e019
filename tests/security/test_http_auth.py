"""Auth on every route (table-driven over the app's routes, so new routes are covered by themselves), tenant
isolation on every read route, ingest keys limited to product events, cursors that cannot be forged."""

from __future__ import annotations

import base64
import json

import httpx
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "serve"))

from api_support import ACME, GLOBEX, OPERATOR, TENANTS_CONFIG, call, get, send_workload  # noqa: E402
from collector_support import start_collector, wait_stored  # noqa: E402

INGEST_KEY = "site-key-0123456789abcdef"
CONFIG = TENANTS_CONFIG + f"""  spanledger_api:
    ingest_keys: {{"{INGEST_KEY}": acme}}
    ingest_key_limits: {{requests_per_minute: 60, max_items: 5, max_body_kib: 4}}
"""
# /healthz, and the console's static files: the page must load before its user signs in, and
# they hold no data (every answer with data comes from a /v1 route that needs the token).
OPEN_ROUTES = {("GET", "/healthz"), ("GET", "/"), ("GET", "/assets/{name:path}"), ("GET", "/tracker.js")}
OPERATOR_ROUTES = {("GET", "/v1/stats"), ("DELETE", "/v1/activities")}
SAMPLE_PATH_VALUES = {"span_id": "0123456789abcdef", "trace_id": "0123456789abcdef0123456789abcdef",
                      "name": "swagger-ui.css", "conversation_id": "c-1", "project_id": "p-1",
                      "session_id": "s-1", "ticket_id": "t-1", "path": "app.js"}


@pytest.fixture(scope="module")
def tenants(tmp_path_factory):
    collector = start_collector(tmp_path_factory.mktemp("auth") / "data", CONFIG)
    try:
        sent = {"acme": send_workload(collector.server.address, 3, "acme", ACME),
                "globex": send_workload(collector.server.address, 2, "globex", GLOBEX)}
        wait_stored(collector, 5 * 6)
        yield collector, sent
    finally:
        collector.stop(timeout_s=10)


def app_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every route, including those of included routers."""
    found = []

    def walk(routes):
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                walk(inner.routes)
            elif hasattr(route, "methods"):
                found.extend((m, route.path) for m in sorted(route.methods - {"HEAD"}))
    walk(app.routes)
    return found


def _concrete(path: str) -> str:
    if path.startswith("/assets/"):
        return "/assets/app.js"
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: SAMPLE_PATH_VALUES[m.group(1)], path)


def _routes(collector):
    from spanledger.collector.serve.app import create_app

    return app_routes(create_app(collector, collector.auth))


def test_the_route_table_is_what_this_test_expects(tenants):
    collector, _ = tenants
    routes = set(_routes(collector))
    assert {("GET", "/v1/activities"), ("POST", "/v1/activities/batch"), ("GET", "/v1/traces/{trace_id}"),
            ("POST", "/v1/sql"), ("GET", "/openapi.json"), ("GET", "/docs")} <= routes
    assert OPEN_ROUTES | OPERATOR_ROUTES <= routes


@pytest.mark.parametrize("token", [None, "wrong-token-000000000000", "", "Bearer"])
def test_every_route_but_health_needs_a_token(tenants, token):
    collector, _ = tenants
    for method, path in _routes(collector):
        headers = {"Authorization": token if token in ("", "Bearer") else f"Bearer {token}"} if token is not None else {}
        if (method, path) in OPEN_ROUTES:
            answer = httpx.request(method, collector.api.url + _concrete(path), headers=headers, timeout=30)
            assert answer.status_code == 200, (method, path)
            continue
        status, body = call(collector.api.url, method, _concrete(path), raw=b"{}" if method in ("POST", "PUT") else None,
                            headers=headers)
        assert status == 401, (method, path, status, body)
        assert "bearer token" in body["error"] and "wrong-token" not in json.dumps(body)


def test_operator_routes_refuse_tenant_tokens(tenants):
    collector, _ = tenants
    for method, path in OPERATOR_ROUTES:
        status, body = call(collector.api.url, method, path, token=ACME, params={"older_than": "30d"})
        assert status == 403 and "operator" in body["error"], (method, path)


def test_each_read_route_shows_a_tenant_only_its_own_spans(tenants):
    collector, sent = tenants
    api = collector.api.url
    mine, theirs = sent["acme"][0], sent["globex"][0]
    status, page = get(api, "/v1/activities", ACME, limit=1000)
    assert status == 200 and {a["tenant"] for a in page["activities"]} == {"acme"} and len(page["activities"]) == 18
    assert get(api, "/v1/activities", GLOBEX, limit=1000)[1]["activities"][0]["tenant"] == "globex"
    assert len(get(api, "/v1/activities", OPERATOR, limit=1000)[1]["activities"]) == 30
    assert get(api, f"/v1/activities/{mine['llm']}", ACME)[0] == 200
    assert get(api, f"/v1/activities/{theirs['llm']}", ACME)[0] == 404
    assert get(api, f"/v1/activities/{mine['llm']}", ACME, include_chain="true")[1]["ancestors"][0]["span_id"] == mine["planner"]
    assert get(api, f"/v1/traces/{mine['trace']}", ACME)[0] == 200
    status, body = get(api, f"/v1/traces/{theirs['trace']}", ACME)
    assert status == 404 and "no trace" in body["error"]
    status, body = get(api, "/v1/activities", ACME, tenant="globex")
    assert status == 400 and "operator" in body["error"]
    status, body = get(api, "/v1/activities", OPERATOR, tenant="globex", limit=1000)
    assert status == 200 and len(body["activities"]) == 12
    status, body = call(api, "POST", "/v1/sql", {"query": "SELECT DISTINCT TenantId FROM spanledger.otel_traces"}, token=ACME)
    assert body["rows"] == [["acme"]]
    # the trace rows behind /v1/traces (schema/070) are scoped like the spans: only the caller's own rows
    status, body = call(api, "POST", "/v1/sql", {"query": "SELECT DISTINCT TenantId, TraceId = {t:String} FROM "
                                                          "spanledger.otel_traces_trace_rows WHERE TraceId IN "
                                                          "({t:String}, {u:String})",
                                                 "parameters": {"t": mine["trace"], "u": theirs["trace"]}}, token=ACME)
    assert status == 200 and body["rows"] == [["acme", True]], body
    status, body = get(api, "/v1/schema", ACME)
    assert status == 200 and {t["table"] for t in body["tables"]} <= {
        "spanledger.otel_traces", "spanledger.otel_traces_trace_rows", "spanledger.spanledger_usage_hourly",
        "spanledger.spanledger_cost_daily"}


def test_a_cursor_cannot_be_forged_altered_or_carried_to_another_tenant(tenants):
    collector, _ = tenants
    api = collector.api.url
    status, page = get(api, "/v1/activities", ACME, limit=2)
    cursor = page["next_cursor"]
    assert cursor and get(api, "/v1/activities", ACME, limit=2, cursor=cursor)[0] == 200
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    body = json.loads(raw[:-16])
    forged_body = json.dumps([body[0] + 10**12, body[1], body[2]], separators=(",", ":")).encode()
    forged = base64.urlsafe_b64encode(forged_body + raw[-16:]).decode().rstrip("=")
    flipped = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    for bad in (forged, flipped, cursor[:-4], "", "!!!!", "a" * 199, base64.urlsafe_b64encode(b"[1]").decode()):
        status, answer = get(api, "/v1/activities", ACME, limit=2, cursor=bad) if bad else (400, {"error": "cursor"})
        assert status in (400, 422) and "cursor" in answer["error"], bad
    status, answer = get(api, "/v1/activities", GLOBEX, limit=2, cursor=cursor)  # another tenant's cursor
    assert status == 400 and "other filters" in answer["error"]
    status, answer = get(api, "/v1/activities", ACME, limit=2, cursor=cursor, agent="planner")  # other filters
    assert status == 400


def test_an_ingest_key_writes_product_events_for_its_tenant_only(tenants):
    collector, _ = tenants
    api = collector.api.url
    events = [{"type": "product_event", "event_type": "page_viewed", "user_id": "visitor-1"}]
    status, answer = call(api, "POST", "/v1/activities/batch", events, params={"ingest_key": INGEST_KEY})
    assert status == 201 and answer["accepted"] == 1
    span_id = answer["items"][0]["span_id"]
    status, answer = call(api, "POST", "/v1/activities/batch",
                          events + [{"type": "llm_call", "input_tokens": 10}, {"type": "agent_run"}],
                          params={"ingest_key": INGEST_KEY})
    assert answer["accepted"] == 1 and [e["index"] for e in answer["errors"]] == [1, 2]
    assert "only product events" in answer["errors"][0]["error"]
    # the key's tenant, whatever the body claims
    wait_stored(collector, 32)
    status, stored = get(api, f"/v1/activities/{span_id}", ACME)
    assert status == 200 and stored["tenant"] == "acme"
    assert get(api, f"/v1/activities/{span_id}", GLOBEX)[0] == 404
    for method, path in (("POST", "/v1/activities"), ("PUT", f"/v1/activities/{span_id}")):
        status, answer = call(api, method, path, events[0], params={"ingest_key": INGEST_KEY})
        assert status in (400, 401), (method, path)
    status, answer = call(api, "POST", "/v1/activities/batch", events, params={"ingest_key": "guessed-key-000000000"})
    assert status == 401 and "ingest_key" in answer["error"]
    too_many = events * 6
    status, answer = call(api, "POST", "/v1/activities/batch", too_many, params={"ingest_key": INGEST_KEY})
    assert status == 413 and "at most 5" in answer["error"]
    big = [{"type": "product_event", "metadata": {"blob": "x" * 5000}}]
    status, answer = call(api, "POST", "/v1/activities/batch", big, params={"ingest_key": INGEST_KEY})
    assert status == 413 and "max_body_kib" in answer["error"]
    statuses = [call(api, "POST", "/v1/activities/batch", [], params={"ingest_key": INGEST_KEY})[0] for _ in range(15)]
    assert 429 in statuses  # the burst is 10 requests, then 1 a second


def test_a_tenant_cannot_complete_or_delete_another_tenants_activity(tenants):
    collector, _ = tenants
    api = collector.api.url
    status, started = call(api, "POST", "/v1/activities", {"type": "agent_run", "status": "started"}, token=ACME)
    assert status == 201
    span_id = started["items"][0]["span_id"]
    before = collector.stats.spans_accepted
    status, body = call(api, "PUT", f"/v1/activities/{span_id}", {"status": "completed"}, token=GLOBEX)
    assert status == 404 and collector.stats.spans_accepted == before
    status, body = call(api, "DELETE", "/v1/activities", token=GLOBEX, params={"older_than": "0d"})
    assert status == 403



def test_an_operator_completing_a_tenants_activity_keeps_it_the_tenants(tenants):
    collector, _ = tenants
    api = collector.api.url
    status, started = call(api, "POST", "/v1/activities", {"type": "agent_run", "status": "started",
                                                           "start_time": "2026-12-01T08:00:00Z"}, token=ACME)
    span_id = started["items"][0]["span_id"]
    deadline = __import__("time").monotonic() + 30
    while get(api, f"/v1/activities/{span_id}", ACME)[0] != 200:
        assert __import__("time").monotonic() < deadline
    status, done = call(api, "PUT", f"/v1/activities/{span_id}", {"status": "failed"}, token=OPERATOR)
    assert status == 200, done
    while get(api, f"/v1/activities/{span_id}", ACME)[1].get("status") != "failed":
        assert __import__("time").monotonic() < deadline
    status, mine = get(api, f"/v1/activities/{span_id}", ACME)
    assert mine["tenant"] == "acme" and mine["status"] == "failed"
