"""Hostile requests to GET /v1/export and GET /metrics: filters never become SQL, tenants never see others'
rows, operator-only stays operator-only; a hypothesis fuzz of export query strings."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import httpx
import pytest
from collector_support import FAST_BATCH, RawClient, make_span, new_request, wait_stored
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "collector"))
from otlp_http_support import OPERATOR_TOKEN, TENANT_TOKENS, auth_config  # noqa: E402
from serve_support import serve_routers  # noqa: E402

from spanledger.collector.serve.export import router as export_router  # noqa: E402
from spanledger.collector.serve.metrics import router as metrics_router  # noqa: E402

TOKEN, ACME, GLOBEX = OPERATOR_TOKEN, TENANT_TOKENS["acme"], TENANT_TOKENS["globex"]
CONFIG = FAST_BATCH + auth_config(("acme", "globex"))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from collector_support import start_collector

    collector = start_collector(tmp_path_factory.mktemp("export-attacks"), CONFIG)
    for token, name in ((ACME, "acme-secret"), (GLOBEX, "globex-secret")):
        client = RawClient(collector.server.address, metadata=(("authorization", f"Bearer {token}"),))
        request, scope = new_request(name)
        for i in range(3):
            make_span(scope, f"{name}-{i}", attributes={"user.id": f"{name}-user"})
        client.export(request.SerializeToString())
        client.close()
    wait_stored(collector, 6)
    with serve_routers(collector, export_router, metrics_router) as url:
        yield collector, url
    collector.stop(timeout_s=10)


def _get(url: str, path: str, token: str, **params) -> httpx.Response:
    return httpx.get(f"{url}{path}", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=30)


@pytest.mark.parametrize("params", [
    {"where": "service:x') OR 1=1 --"},
    {"service": "x' OR '1'='1"},
    {"where": "name~\"%\" OR tenant:globex"},
    {"where": "tenant:globex"},
    {"tenant": "globex"},
    {"trace": "' UNION SELECT * FROM system.users --"},
    {"since": "0; DROP TABLE spanledger.otel_traces"},
    {"where": "(" * 100 + "agent:x" + ")" * 100},
    {"where": "a" * 5000},
    {"format": "otlp", "where": "service:globex-secret"},
])
def test_a_tenant_never_sees_another_tenants_rows(served, params):
    _, url = served
    response = _get(url, "/v1/export", ACME, **{"format": "jsonl", **params})
    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:
        assert b"globex-secret" not in response.content
        assert all(json.loads(line)["service"] == "acme-secret" for line in response.text.splitlines()
                   if params.get("format") != "otlp")
    else:
        assert response.json()["error"]


def test_injection_in_filter_values_is_only_ever_a_value(served):
    collector, url = served
    response = _get(url, "/v1/export", TOKEN, format="jsonl", service="x' OR '1'='1")
    assert response.status_code == 200 and response.text == ""
    assert _get(url, "/v1/export", TOKEN, format="csv").text.count("\n") == 7  # the table is intact


def test_metrics_is_operator_only_and_ignores_parameters(served):
    _, url = served
    assert _get(url, "/metrics", ACME).status_code == 403
    assert httpx.get(f"{url}/metrics").status_code == 401
    assert httpx.get(f"{url}/metrics", params={"token": TOKEN}).status_code == 401
    assert httpx.post(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 405
    body = _get(url, "/metrics", TOKEN, name="x\ny 1").text
    assert "spanledger_receiver_accepted_spans_total 6.0" in body
    assert "acme" not in body and "globex" not in body  # no tenant names leak into labels


def test_export_needs_a_token(served):
    _, url = served
    assert httpx.get(f"{url}/v1/export").status_code == 401
    assert httpx.get(f"{url}/v1/export", headers={"Authorization": "Bearer nope-nope-nope-nope"}).status_code == 401


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(st.sampled_from(["where", "since", "until", "service", "agent", "tenant", "format",
                                               "trace", "cost", "junk"]), _text, max_size=4))
def test_fuzz_export_parameters(served, params):
    _, url = served
    response = _get(url, "/v1/export", ACME, **params)
    assert response.status_code in (200, 400), (params, response.status_code, response.text[:300])
    if response.status_code == 400:
        assert json.loads(response.text)["error"]
    else:
        assert b"globex-secret" not in response.content
