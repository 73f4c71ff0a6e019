"""The reports over HTTP: real uvicorn on port 0, real collector, real SDK data, two tenants."""

from __future__ import annotations

import sys
import zoneinfo
from decimal import Decimal
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "query"))

from reports_support import CONFIG, OPERATOR, TOKENS, ReportsServer, expected_spend, served  # noqa: E402
from spanledger.collector.query.reports import REPORTS  # noqa: E402


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with served(tmp_path_factory.mktemp("reports-api")) as pair:
        yield pair


def objects(body):
    return [dict(zip(body["columns"], row)) for row in body["rows"]]


def test_list_reports_names_every_report_with_typed_parameters(api):
    server, _ = api
    body = server.get("/v1/reports", TOKENS["acme"]).json()
    listed = {r["name"]: r for r in body["reports"]}
    assert set(listed) == set(REPORTS)
    spend = {p["name"]: p for p in listed["spend"]["parameters"]}
    assert spend["group_by"]["type"] == "list" and "session" in spend["group_by"]["choices"]
    assert spend["bucket"]["choices"] == ["hour", "day", "month", "none"]
    assert spend["since"]["type"] == "time" and spend["where"]["type"] == "expression"
    assert listed["conversation"]["parameters"][0] == {"name": "id", "type": "string",
                                                      "description": "the id to show", "required": True}


def test_spend_over_http_has_exact_decimal_strings_zone_source_and_range(api):
    server, sent = api
    response = server.get("/v1/reports/spend", TOKENS["acme"], {"group_by": "model", "bucket": "none"})
    assert response.status_code == 200
    body = response.json()
    assert body["time_zone"] == "UTC" and body["source"] == "spanledger.spanledger_usage_hourly"
    assert body["range"]["since"] and body["range"]["until"] is None
    want = expected_spend([c for c in sent.calls if c.tenant == "acme"], lambda c: c.model)
    for row in objects(body):
        assert isinstance(row["usd"], str) and Decimal(row["usd"]) == want[row["model"]]["usd"]
        assert Decimal(row["cache_savings_usd"]) == want[row["model"]]["cache_savings_usd"]


@pytest.mark.parametrize("path,name,extra", [
    ("/v1/conversations/conv-1", "conversation", {"id": "conv-1"}),
    ("/v1/projects/p0/timeline", "project_timeline", {"id": "p0"}),
    ("/v1/tickets/T-1/history", "ticket_history", {"id": "T-1"}),
    ("/v1/sessions/s-web-1", "session_events", {"id": "s-web-1"}),
    ("/v1/agents/stats", "agent_stats", {}),
    ("/v1/analytics/summary", "analytics_summary", {}),
])
def test_aliases_answer_exactly_what_the_report_does(api, path, name, extra):
    server, _ = api
    alias = server.get(path, TOKENS["acme"])
    direct = server.get(f"/v1/reports/{name}", TOKENS["acme"], extra)
    assert alias.status_code == direct.status_code == 200
    a, d = alias.json(), direct.json()
    assert a["report"] == name and a["columns"] == d["columns"]
    assert a["rows"] == d["rows"] and a["rows"]


def test_conversation_alias_in_sequence_order_per_tenant(api):
    server, sent = api
    for tenant in ("acme", "globex"):
        rows = objects(server.get("/v1/conversations/conv-1", TOKENS[tenant]).json())
        assert [r["step"] for r in rows] == sent.conversation[tenant]
        assert len({r["trace_id"] for r in rows}) == 4


def test_tenants_see_their_own_numbers_and_the_operator_sees_both(api):
    server, sent = api
    totals = {}
    for who, token in (("acme", TOKENS["acme"]), ("globex", TOKENS["globex"]), ("operator", OPERATOR)):
        body = server.get("/v1/reports/spend", token, {"group_by": "none", "bucket": "none"}).json()
        totals[who] = objects(body)[0]
    for tenant in ("acme", "globex"):
        want = sum((c.usd for c in sent.calls if c.tenant == tenant and c.usd is not None), Decimal(0))
        assert Decimal(totals[tenant]["usd"]) == want
    assert Decimal(totals["operator"]["usd"]) == Decimal(totals["acme"]["usd"]) + Decimal(totals["globex"]["usd"])
    assert totals["operator"]["llm_calls"] == len(sent.calls)


def test_operator_may_narrow_to_a_tenant(api):
    server, _ = api
    mine = server.get("/v1/agents/stats", TOKENS["globex"]).json()
    narrowed = server.get("/v1/agents/stats", OPERATOR, {"tenant": "globex"}).json()
    assert mine["rows"] == narrowed["rows"]


def test_pagination_over_http(api):
    server, _ = api
    full = server.get("/v1/reports/top", TOKENS["acme"], {"key": "session", "limit": 1000}).json()["rows"]
    rows, cursor = [], None
    while True:
        body = server.get("/v1/reports/top", TOKENS["acme"],
                          {"key": "session", "limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        rows += body["rows"]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert rows == full and len(full) == 7  # s0..s4 and the two web sessions


@pytest.mark.parametrize("path,params,needle", [
    ("/v1/reports/spend", {"group_by": "colour"}, "group_by: 'colour' is not one of"),
    ("/v1/reports/spend", {"bucket": "week"}, "bucket: 'week' is not one of hour, day, month, none"),
    ("/v1/reports/spend", {"frobnicate": "1"}, "unknown parameter 'frobnicate'"),
    ("/v1/reports/top", {"limit": "100000"}, "limit: give a number from 1 to 1000"),
    ("/v1/reports/spend", {"time_zone": "Mars/Olympus"}, "not an IANA time zone"),
    ("/v1/reports/spend", {"since": "yesterday-ish"}, "since: 'yesterday-ish' is not a time"),
    ("/v1/reports/nope", {}, "no report named 'nope'"),
    ("/v1/conversations/conv-1", {"id": "other"}, "id: it is in the path"),
    ("/v1/reports/conversation", {}, "id: required"),
])
def test_bad_parameters_are_400_with_a_message(api, path, params, needle):
    server, _ = api
    response = server.get(path, TOKENS["acme"], params)
    assert response.status_code == 400, response.text
    assert needle in response.json()["error"]


def test_no_token_is_401(api):
    server, _ = api
    response = server.get("/v1/reports/spend", None)
    assert response.status_code == 401 and "bearer token" in response.json()["error"]


def test_the_deployment_time_zone_buckets_and_is_named(api):
    from types import SimpleNamespace

    from spanledger.collector.config import ConfigError, load_config

    server, sent = api
    with pytest.raises(ConfigError, match="time_zone: 'Mars/Olympus' is not an IANA time zone"):
        load_config(text="extensions: {spanledger_api: {time_zone: Mars/Olympus}}\n")
    tokyo = load_config(text=CONFIG.replace("extensions:\n", "extensions:\n  spanledger_api: {time_zone: Asia/Tokyo}\n"))
    real = server.collector  # the same store, served by a deployment configured for Tokyo
    deployment = SimpleNamespace(config=tokyo, store=real.store, price_book=real.price_book)
    other = ReportsServer(deployment)
    try:
        body = other.get("/v1/analytics/summary", TOKENS["acme"]).json()
        assert body["time_zone"] == "Asia/Tokyo"
        days = {}
        for at, *_ in sent.product_events["acme"]:
            day = at.astimezone(zoneinfo.ZoneInfo("Asia/Tokyo")).date().isoformat()
            days[day] = days.get(day, 0) + 1
        assert objects(body)[0]["events_by_day"] == days
        assert other.get("/v1/analytics/summary", TOKENS["acme"], {"time_zone": "UTC"}).json()["time_zone"] == "UTC"
    finally:
        other.close()


def test_a_store_not_reachable_yet_is_503_with_retry_after(api):
    from types import SimpleNamespace

    server, _ = api
    starting = SimpleNamespace(config=server.collector.config, store=lambda: None, price_book=None)
    other = ReportsServer(starting)  # a collector whose storage has not connected yet
    try:
        response = other.get("/v1/reports/spend", TOKENS["acme"])
        assert response.status_code == 503 and response.headers["retry-after"] == "2"
        assert "not reachable yet" in response.json()["error"]
    finally:
        other.close()
