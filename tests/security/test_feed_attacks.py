"""Attacks on the live feed and the budgets endpoint: tenancy, filter injection, subscriber floods,
hostile Last-Event-IDs, and a hypothesis fuzz of every feed parameter.  Real collector, real uvicorn."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "serve"))

from feed_support import ACME, GLOBEX, OPERATOR, TENANT_CONFIG, SpanSender, feed_app, headers, serving  # noqa: E402

from spanledger.collector.query.filters import FIELDS  # noqa: E402

pytestmark = pytest.mark.timeout(300)

CONFIG = TENANT_CONFIG + """
  spanledger_api:
    feed:
      max_subscribers_per_token: 3
      max_subscribers: 20
  spanledger_budgets:
    budgets:
      - {name: acme-day, scope: {tenant: acme}, limit_usd: 10}
      - {name: globex-day, scope: {tenant: globex}, limit_usd: 10}
      - {name: everyone, limit_usd: 1000, window: month}
"""


@pytest.fixture
def served(collector_factory):
    collector = collector_factory(CONFIG)
    with serving(feed_app(collector)) as url:
        yield collector, url


def _status(url: str, token: str | None = OPERATOR, params=None, extra_headers=None) -> tuple[int, dict | None]:
    """Open the feed and close it at once: the status, and the JSON error if it was refused."""
    with httpx.Client(timeout=10) as client:
        with client.stream("GET", f"{url}/v1/feed", params=params, headers=headers(token, **(extra_headers or {}))) as r:
            if r.status_code == 200:
                assert r.headers["content-type"].startswith("text/event-stream")
                return 200, None
            body = r.read()
            return r.status_code, httpx.Response(r.status_code, content=body).json()


@pytest.mark.parametrize("params, message", [
    ({"tenant": "globex"}, "needs an operator token"),
    ({"where": "tenant:globex"}, "needs an operator token"),
    ({"where": "agent:x OR tenant:globex"}, "needs an operator token"),
    ({"where": "agent:planner) OR (1=1"}, "where"),
    ({"where": "agent:'x' UNION SELECT"}, "where"),
    ({"room": "tenant:globex"}, "is not a room"),
    ({"room": "project"}, "is not a room"),
    ({"cost": "1 OR 1=1"}, "is not a number"),
    ({"since": "yesterday; DROP TABLE x"}, "is not a time"),
    ({"format": "csv"}, "unknown parameter"),
    ({"TenantId": "globex"}, "unknown parameter"),
    ({"where": "(" * 40 + "agent:x" + ")" * 40}, "nested more than"),
    ({"where": "agent:" + "x" * 3000}, "over 2000 characters"),
])
def test_hostile_filters_are_refused_with_a_message(served, params, message):
    _, url = served
    status, body = _status(url, ACME, params)
    assert status == 400 and message in body["error"]


@pytest.mark.parametrize("value, ok", [
    ("1" * 20, False), ("9" * 5000, False), ("-5", False), ("12abc", False), ("1e9", False), ("١٢٣", False),
    ("42", True), ("", True),
])
def test_last_event_id_must_be_one_of_ours(served, value, ok):
    _, url = served
    status, body = _status(url, OPERATOR, extra_headers={"Last-Event-ID": value.encode()} if value else None)
    if ok:
        assert status == 200
    else:
        assert status == 400 and "Last-Event-ID" in body["error"]
    status, body = _status(url, OPERATOR, params={"last_event_id": value})
    assert status == (200 if ok else 400)


def test_without_a_valid_token_nothing_is_served(served):
    _, url = served
    for token in (None, "x" * 24, OPERATOR + "x"):
        status, body = _status(url, token)
        assert status == 401 and "bearer token" in body["error"]
        response = httpx.get(f"{url}/v1/budgets", headers=headers(token))
        assert response.status_code == 401 and "bearer token" in response.json()["error"]


def test_subscribers_are_bounded_per_token_and_in_all(served):
    collector, url = served
    with httpx.Client(timeout=10) as client:
        streams = []
        try:
            for _ in range(3):
                stream = client.stream("GET", f"{url}/v1/feed", headers=headers(ACME))
                streams.append(stream)
                assert stream.__enter__().status_code == 200
            with client.stream("GET", f"{url}/v1/feed", headers=headers(ACME)) as refused:
                refused.read()
                assert refused.status_code == 429 and "this token already has 3" in refused.json()["error"]
            # another token is not affected by acme's subscriptions
            with client.stream("GET", f"{url}/v1/feed", headers=headers(GLOBEX)) as other:
                assert other.status_code == 200
        finally:
            for stream in streams:
                stream.__exit__(None, None, None)
    deadline = time.monotonic() + 10
    while collector.feed.subscriber_count() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert collector.feed.subscriber_count() == 0  # closed connections give their slots back


def test_a_filter_value_is_data_never_sql_and_tenants_stay_apart(served):
    """Injection in values matches nothing; a tenant's stream never carries another tenant's rows."""
    collector, url = served
    import asyncio

    from feed_support import SseReader

    async def scenario():
        async with httpx.AsyncClient(timeout=30) as client:
            readers = []
            for token, params in ((ACME, {"agent": "x' OR '1'='1"}), (ACME, {"where": 'agent:"x\\" OR 1=1 --"'}),
                                  (ACME, {}), (GLOBEX, {"agent": "planner"})):
                response = await client.send(client.build_request("GET", f"{url}/v1/feed", params=params,
                                                                  headers=headers(token)), stream=True)
                assert response.status_code == 200
                reader = SseReader(response)
                readers.append((reader, asyncio.create_task(reader.run())))
            while collector.feed.subscriber_count() < 4:
                await asyncio.sleep(0.02)

            def send():
                for token, agent in ((ACME, "planner"), (GLOBEX, "planner"), (ACME, "coder")):
                    sender = SpanSender(collector, token=token)
                    sender.llm_call(agent=agent, user=f"{token[:5]}-{agent}")
                    sender.flush()
                    sender.close()

            await asyncio.to_thread(send)
            deadline = time.monotonic() + 30
            while len(readers[2][0].of("activity")) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            while not readers[3][0].of("activity") and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            for reader, task in readers:
                await reader.response.aclose()
                task.cancel()
            return [[e.data["user_id"] for e in r.of("activity")] for r, _ in readers]

    injected, injected_where, acme_all, globex = asyncio.run(scenario())
    assert injected == [] and injected_where == []
    assert sorted(acme_all) == ["acme--coder", "acme--planner"]
    assert globex == ["globe-planner"]


def test_budgets_a_tenant_sees_only_its_own(served):
    _, url = served
    names = {}
    for who, token in (("acme", ACME), ("globex", GLOBEX), ("operator", OPERATOR)):
        response = httpx.get(f"{url}/v1/budgets", headers=headers(token), params={"tenant": "globex"})
        assert response.status_code == 200
        names[who] = sorted(b["name"] for b in response.json()["budgets"])
    assert names == {"acme": ["acme-day"], "globex": ["globex-day"],
                     "operator": ["acme-day", "everyone", "globex-day"]}


FEED_PARAM_NAMES = st.sampled_from(sorted(FIELDS) + ["since", "until", "where", "room", "last_event_id", "x", "",
                                                     "where[]", "agent\x00"])
HOSTILE_TEXT = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["'", '"', "\\", "{x:String}", "{f0:String}", "1); DROP TABLE t; --", "agent:x OR", "NOT NOT",
                     "project:p-1 AND (", "cost>1e400", "tokens>-1", "room:x:y", "project:", "\x00", "%00", "😀" * 50,
                     "since:0", "99999999999999999999", "agent:x AND " * 70, "type:" + "a" * 1001]),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.lists(st.tuples(FEED_PARAM_NAMES, HOSTILE_TEXT), max_size=6),
       token=st.sampled_from([OPERATOR, ACME, GLOBEX, None, "bogus-token-0000000000"]))
def test_fuzz_feed_parameters_never_break_the_server(served, params, token):
    _, url = served
    try:
        status, body = _status(url, token, params=params)
    except httpx.InvalidURL:
        return  # the client itself refuses to send it
    assert status in (200, 400, 401, 429), (status, body, params)
    if status != 200:
        assert isinstance(body.get("error"), str) and body["error"]
