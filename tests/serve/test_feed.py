"""The live feed over SSE: real collector, real uvicorn, spans from the real OpenTelemetry SDK."""

from __future__ import annotations

import asyncio
import decimal

import httpx
import pytest
from feed_support import collector_factory  # noqa: F401 - the fixture
from feed_support import (ACME, GLOBEX, OPERATOR, TENANT_CONFIG, SpanSender, SseReader, feed_app,
                          headers, serving, wait_for)

from spanledger.collector.feed.rows import ACTIVITY_FIELDS

pytestmark = pytest.mark.timeout(120)

FEED_CONFIG = TENANT_CONFIG + """
  spanledger_api:
    feed:
      totals_interval: 300ms
      max_subscribers_per_token: 300
"""


@pytest.fixture
def feed_server(collector_factory):
    collector = collector_factory(FEED_CONFIG)
    with serving(feed_app(collector)) as url:
        yield collector, url


async def _subscribe(client: httpx.AsyncClient, url: str, token: str = OPERATOR, **params) -> tuple[SseReader, object]:
    last = params.pop("last_event_id", None)
    extra = {"Last-Event-ID": last} if last else {}
    request = client.build_request("GET", f"{url}/v1/feed", params=params, headers=headers(token, **extra))
    response = await client.send(request, stream=True)
    assert response.status_code == 200, (await response.aread())
    assert response.headers["content-type"].startswith("text/event-stream")
    reader = SseReader(response)
    return reader, asyncio.create_task(reader.run())


async def _until_subscribed(collector, n: int) -> None:
    await wait_for(lambda: collector.feed.subscriber_count() >= n, what=f"{n} subscribers")


def test_activity_events_carry_the_listing_shape_with_tokens_and_exact_cost(feed_server):
    collector, url = feed_server

    async def scenario():
        async with httpx.AsyncClient(timeout=30) as client:
            reader, task = await _subscribe(client, url)
            await _until_subscribed(collector, 1)
            sender = SpanSender(collector)
            sender.llm_call(agent="planner", project="p-7", input_tokens=1000, output_tokens=200, cost="0.0123456789")
            sender.llm_call(agent="coder", project="p-8", input_tokens=10, output_tokens=5)  # priced by the collector
            sender.flush()
            await wait_for(lambda: len(reader.of("activity")) >= 2, what="two activities")
            await wait_for(lambda: reader.of("totals") and reader.of("totals")[-1].data["activities"] == 2,
                           what="totals covering both")
            await reader.response.aclose()
            task.cancel()
            sender.close()
            return reader

    reader = asyncio.run(scenario())
    activities = {e.data["agent"]: e for e in reader.of("activity")}
    planner = activities["planner"].data
    assert list(planner) == list(ACTIVITY_FIELDS)
    assert planner["project_id"] == "p-7" and planner["model"] == "gpt-4o" and planner["provider"] == "openai"
    assert planner["input_tokens"] == 1000 and planner["output_tokens"] == 200
    assert planner["cost_usd"] == "0.0123456789" and planner["cost_source"] == "provided"
    assert planner["start_time"].endswith("Z") and len(planner["trace_id"]) == 32 and len(planner["span_id"]) == 16
    coder = activities["coder"].data
    assert coder["cost_source"] == "computed" and decimal.Decimal(coder["cost_usd"]) > 0
    ids = [int(e.id) for e in reader.of("activity")]
    assert ids == sorted(ids) and len(set(ids)) == 2
    totals = reader.of("totals")[-1].data
    assert totals["input_tokens"] == 1010 and totals["output_tokens"] == 205
    assert decimal.Decimal(totals["cost_usd"]) == decimal.Decimal(planner["cost_usd"]) + decimal.Decimal(coder["cost_usd"])


def test_filters_rooms_and_where_expressions_select_what_each_subscriber_gets(feed_server):
    collector, url = feed_server

    async def scenario():
        async with httpx.AsyncClient(timeout=30) as client:
            readers = {
                "agent": await _subscribe(client, url, agent="planner"),
                "room": await _subscribe(client, url, room="project:p-2"),
                "where": await _subscribe(client, url, where='agent:coder AND (project:p-1 OR input_tokens>500)'),
                "type": await _subscribe(client, url, room="type:tool_call"),
                "late": await _subscribe(client, url, agent="late-agent"),
            }
            await _until_subscribed(collector, len(readers))
            sender = SpanSender(collector)
            sender.llm_call(agent="planner", project="p-1")
            sender.llm_call(agent="coder", project="p-1")
            sender.llm_call(agent="coder", project="p-2", input_tokens=900)
            sender.llm_call(agent="coder", project="p-3", input_tokens=10)
            sender.llm_call(agent="tools", project="p-3", activity_type="tool_call")
            sender.llm_call(agent="late-agent", start_ns=1_600_000_000_000_000_000)  # arrives years late
            sender.flush()
            await wait_for(lambda: len(readers["where"][0].of("activity")) >= 2 and readers["late"][0].of("activity"),
                           what="the filtered subscribers' events")
            await asyncio.sleep(0.5)  # anything wrongly routed would have arrived by now
            for reader, task in readers.values():
                await reader.response.aclose()
                task.cancel()
            sender.close()
            return {name: [(e.data["agent"], e.data["project_id"]) for e in r.of("activity")]
                    for name, (r, _) in readers.items()}

    got = asyncio.run(scenario())
    assert got["agent"] == [("planner", "p-1")]
    assert got["room"] == [("coder", "p-2")]
    assert sorted(got["where"]) == [("coder", "p-1"), ("coder", "p-2")]
    assert got["type"] == [("tools", "p-3")]
    assert got["late"] == [("late-agent", "p-1")]


def test_reconnecting_with_last_event_id_resumes_with_no_gap_and_no_duplicate(feed_server):
    collector, url = feed_server

    async def scenario():
        async with httpx.AsyncClient(timeout=30) as client:
            sender = SpanSender(collector)
            reader, task = await _subscribe(client, url, agent="planner")
            await _until_subscribed(collector, 1)
            for i in range(5):
                sender.llm_call(agent="planner", user=f"first-{i}")
            sender.flush()
            await wait_for(lambda: len(reader.of("activity")) >= 5, what="the first five")
            await reader.response.aclose()
            task.cancel()
            await wait_for(lambda: collector.feed.subscriber_count() == 0, what="the disconnect")
            first = reader.of("activity")
            # while the client is away, more are stored (and some it must not see)
            for i in range(7):
                sender.llm_call(agent="planner", user=f"away-{i}")
                sender.llm_call(agent="other", user=f"other-{i}")
            sender.flush()
            await wait_for(lambda: collector.stats_snapshot()["feed_events"] >= 5 + 7, what="stored while away")
            again, task = await _subscribe(client, url, agent="planner", last_event_id=first[-1].id)
            await wait_for(lambda: len(again.of("activity")) >= 7, what="the replay")
            for i in range(3):
                sender.llm_call(agent="planner", user=f"after-{i}")
            sender.flush()
            await wait_for(lambda: len(again.of("activity")) >= 10, what="live events after the replay")
            await asyncio.sleep(0.3)
            await again.response.aclose()
            task.cancel()
            # an id older than anything kept (or from another collector) is said so, not silently skipped
            stale, task = await _subscribe(client, url, agent="planner", last_event_id="1")
            await wait_for(lambda: stale.of("reset"), what="a reset event")
            await stale.response.aclose()
            task.cancel()
            sender.close()
            return first, again, stale

    first, again, stale = asyncio.run(scenario())
    users = [e.data["user_id"] for e in again.of("activity")]
    assert users[:7] == [f"away-{i}" for i in range(7)] or sorted(users[:7]) == sorted(f"away-{i}" for i in range(7))
    assert sorted(users[7:]) == [f"after-{i}" for i in range(3)]
    assert len(users) == 10 and not again.of("reset")
    ids = [int(e.id) for e in first + again.of("activity")]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    assert "re-list" in stale.of("reset")[0].data["reason"]


def test_tenant_subscribers_see_only_their_tenants_rows(feed_server):
    collector, url = feed_server

    async def scenario():
        async with httpx.AsyncClient(timeout=30) as client:
            acme, t1 = await _subscribe(client, url, token=ACME)
            globex, t2 = await _subscribe(client, url, token=GLOBEX)
            operator, t3 = await _subscribe(client, url, token=OPERATOR)
            await _until_subscribed(collector, 3)
            for token, agent in ((ACME, "acme-agent"), (GLOBEX, "globex-agent")):
                sender = SpanSender(collector, token=token)
                sender.llm_call(agent=agent)
                sender.flush()
                sender.close()
            await wait_for(lambda: len(operator.of("activity")) >= 2, what="the operator's two events")
            await asyncio.sleep(0.5)
            for reader, task in ((acme, t1), (globex, t2), (operator, t3)):
                await reader.response.aclose()
                task.cancel()
            return acme, globex, operator

    acme, globex, operator = asyncio.run(scenario())
    assert [e.data["agent"] for e in acme.of("activity")] == ["acme-agent"]
    assert [e.data["agent"] for e in globex.of("activity")] == ["globex-agent"]
    assert sorted(e.data["agent"] for e in operator.of("activity")) == ["acme-agent", "globex-agent"]


def test_more_distinct_filters_than_one_bit_mask_holds_route_exactly(feed_server):
    """70 distinct filters: the shared query's match masks span two 64-bit columns."""
    collector, url = feed_server

    async def scenario():
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=100)) as client:
            readers = [await _subscribe(client, url, user=f"u-{i}") for i in range(70)]
            await _until_subscribed(collector, 70)
            sender = SpanSender(collector)
            for i in range(70):
                sender.llm_call(user=f"u-{i}")
            sender.flush()
            sender.close()
            await wait_for(lambda: all(r.of("activity") for r, _ in readers), what="one event each")
            await asyncio.sleep(0.3)
            for reader, task in readers:
                await reader.response.aclose()
                task.cancel()
            return [[e.data["user_id"] for e in r.of("activity")] for r, _ in readers]

    assert asyncio.run(scenario()) == [[f"u-{i}"] for i in range(70)]
