"""Attacks on the report routes: injection in every parameter, hostile cursors and zones, tenancy, a fuzz.

The store is filled by the real SDK for two tenants (tests/query/reports_support.py).
Every answer must be a 200 with only the caller's rows, or a 4xx with a message;
never a 5xx, never another tenant's row, never a changed store."""

from __future__ import annotations

import base64
import json
import sys
from urllib.parse import quote
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "query"))

from reports_support import OPERATOR, TOKENS, served  # noqa: E402
from spanledger.collector.query.reports import REPORTS  # noqa: E402

ALIASES = ["/v1/conversations/{x}", "/v1/projects/{x}/timeline", "/v1/tickets/{x}/history", "/v1/sessions/{x}"]
INJECTIONS = [
    "x' OR 1=1 --", "'; DROP TABLE spanledger.otel_traces; --", "x\\' OR TenantId != \\'", "{id:String}",
    "1) UNION ALL SELECT * FROM system.users --", "globex", "x\x00y", "' || file('/etc/passwd') || '",
    "\u202e' OR '1'='1", "a" * 5000, "${env:HOME}", "%27%20OR%201%3D1",
]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with served(tmp_path_factory.mktemp("reports-attacks")) as pair:
        yield pair


def count_rows(collector) -> int:
    return collector.store().query("SELECT count() FROM spanledger.otel_traces").result_rows[0][0]


def only_tenant(server, body, tenant):
    """Every trace id in an answer belongs to ``tenant`` (checked with the operator's view of the store)."""
    if "trace_id" not in body.get("columns", []):
        return
    index = body["columns"].index("trace_id")
    ids = [row[index] for row in body["rows"]]
    if ids:
        owners = server.collector.store().query(
            "SELECT DISTINCT TenantId FROM spanledger.otel_traces WHERE TraceId IN {ids:Array(String)}",
            {"ids": ids}).result_rows
        assert {o for (o,) in owners} == {tenant}


def all_params():
    names = set()
    for report in REPORTS.values():
        names |= {p.name for p in report.params}
    return sorted(names | {"agent", "model", "user", "session", "since", "until", "where", "time_zone"})


@pytest.mark.parametrize("name", list(REPORTS))
def test_injection_in_every_parameter_of_every_report(api, name):
    server, _ = api
    before = count_rows(server.collector)
    own = [p.name for p in REPORTS[name].params]
    for param in own + ["time_zone", "agent", "where", "since"]:
        for value in INJECTIONS[:2] + INJECTIONS[4:5] + INJECTIONS[9:10]:
            response = server.get(f"/v1/reports/{name}", TOKENS["acme"], {"id": "p0", param: value})
            assert response.status_code in (200, 400), (name, param, response.text)
            body = response.json()
            if response.status_code == 400:
                assert body["error"]
            else:
                only_tenant(server, body, "acme")
    assert count_rows(server.collector) == before


@pytest.mark.parametrize("value", INJECTIONS)
def test_injection_values_in_the_spend_parameters(api, value):
    server, _ = api
    for param in ("group_by", "bucket", "source", "limit", "time_zone", "model", "user", "where", "until"):
        response = server.get("/v1/reports/spend", TOKENS["acme"], {param: value})
        assert response.status_code in (200, 400), (param, response.text)
        if response.status_code == 200:
            only_tenant(server, response.json(), "acme")


@pytest.mark.parametrize("value", INJECTIONS)
def test_injection_in_path_ids(api, value):
    server, _ = api
    for alias in ALIASES:
        response = server.get(alias.format(x=quote(value, safe="")), TOKENS["acme"])
        assert response.status_code in (200, 400, 404), response.text
        if response.status_code == 200:
            assert response.json()["rows"] == []


def test_ids_of_another_tenant_show_nothing(api):
    server, sent = api
    # globex has conv-1 too, but acme's answer holds only acme's four steps
    body = server.get("/v1/conversations/conv-1", TOKENS["acme"]).json()
    only_tenant(server, body, "acme")
    assert len(body["rows"]) == len(sent.conversation["acme"])


@pytest.mark.parametrize("params", [{"tenant": "globex"}, {"where": "tenant:globex"},
                                    {"where": "agent:planner OR tenant:globex"}, {"tenant": "acme"}])
def test_a_tenant_token_cannot_name_a_tenant(api, params):
    server, _ = api
    for path in ("/v1/reports/spend", "/v1/agents/stats", "/v1/reports/top"):
        response = server.get(path, TOKENS["acme"], params)
        assert response.status_code == 400 and "operator token" in response.json()["error"]


@pytest.mark.parametrize("group_by", ["colour", "model,model", "Model", "TenantId", "model;DROP", "tenant", "*"])
def test_unknown_group_by_is_refused(api, group_by):
    server, _ = api
    response = server.get("/v1/reports/spend", TOKENS["acme"], {"group_by": group_by})
    assert response.status_code == 400 and "group_by" in response.json()["error"]


@pytest.mark.parametrize("limit", ["0", "-1", "1001", "99999999999999999999", "1e3", "0x10", " 5", "５"])
def test_huge_or_odd_limits_are_refused(api, limit):
    server, _ = api
    for name in ("top", "problems", "sessions", "project_timeline"):
        response = server.get(f"/v1/reports/{name}", TOKENS["acme"], {"limit": limit, "id": "p0"})
        assert response.status_code == 400 and "limit" in response.json()["error"]


@pytest.mark.parametrize("zone", ["Mars/Olympus", "UTC'; DROP", "../../etc/passwd", "", "Europe/Paris\x00",
                                  "+05:00", "EST5EDT,M3.2.0", "a" * 300])
def test_bad_time_zones_are_refused(api, zone):
    server, _ = api
    response = server.get("/v1/reports/spend", TOKENS["acme"], {"time_zone": zone, "bucket": "day"})
    if zone == "":
        assert response.status_code == 200 and response.json()["time_zone"] == "UTC"
    else:
        assert response.status_code == 400 and "time_zone" in response.json()["error"]


def _cursor(*parts):
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    "garbage", _cursor("top:user:cost", "1 OR 1=1", "u1"), _cursor("top:user:cost", "NaN", "u1"),
    _cursor("top:user:cost", "1e999999", "u1"), _cursor("timeline:ProjectId", "-1", "x"),
    _cursor("top:user:tokens", "5", "u1"), _cursor("top:user:cost", 5, 6), _cursor("sessions", "1"),
    "A" * 5000, _cursor("top:user:cost", "0.1", "x" * 600),
])
def test_forged_cursors_are_refused(api, cursor):
    server, _ = api
    for name, extra in (("top", {}), ("project_timeline", {"id": "p0"}), ("sessions", {})):
        response = server.get(f"/v1/reports/{name}", TOKENS["acme"], {"cursor": cursor, **extra})
        assert response.status_code == 400 and "cursor" in response.json()["error"], response.text


def test_tenant_token_listing_and_operator_listing_match(api):
    server, _ = api
    assert server.get("/v1/reports", TOKENS["acme"]).json() == server.get("/v1/reports", OPERATOR).json()
    assert server.get("/v1/reports", "not-a-token-at-all-xxxxxxxx").status_code == 401


_value = st.one_of(st.text(max_size=40), st.sampled_from(INJECTIONS),
                   st.sampled_from(["model", "user,session", "day", "hour", "none", "cost", "tokens", "10",
                                    "Asia/Tokyo", "2026-11-25T00:00:00Z", "agent:planner OR NOT status:error"]))
_params = st.dictionaries(st.sampled_from(all_params() + ["tenant", "bogus"]), _value, max_size=5)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(list(REPORTS)), params=_params, tenant=st.sampled_from(["acme", "globex"]))
def test_fuzz_report_parameters(api, name, params, tenant):
    server, _ = api
    response = server.get(f"/v1/reports/{name}", TOKENS[tenant], params)
    assert response.status_code in (200, 400), (name, params, response.status_code, response.text)
    body = response.json()
    if response.status_code == 200:
        only_tenant(server, body, tenant)
    else:
        assert isinstance(body["error"], str) and body["error"]
