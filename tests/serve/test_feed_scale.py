"""The feed under load: 200 concurrent subscribers, a subscriber that stops reading, and the WebSocket."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import httpx
import pytest
import websockets
from feed_support import collector_factory  # noqa: F401 - the fixture
from feed_support import ACME, OPERATOR, TENANT_CONFIG, SpanSender, SseReader, feed_app, feed_server, headers, wait_for

from collector_support import wait_stored

pytestmark = pytest.mark.timeout(180)

AGENTS = ("planner", "coder", "reviewer", "tester")


def _serve(collector_factory, feed_settings: str):
    collector = collector_factory(TENANT_CONFIG + "  spanledger_api:\n    feed:\n" + feed_settings)
    return collector, feed_server(feed_app(collector))


def test_two_hundred_subscribers_each_get_exactly_their_events(collector_factory):
    collector, server = _serve(collector_factory, "      max_subscribers_per_token: 250\n      totals_interval: 1s\n")
    spans_per_agent = 40

    async def scenario():
        limits = httpx.Limits(max_connections=250, max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            readers = []
            for i in range(200):
                params = {} if i % 2 == 0 else {"agent": AGENTS[i % 4]}
                request = client.build_request("GET", f"{server.url}/v1/feed", params=params, headers=headers())
                response = await client.send(request, stream=True)
                assert response.status_code == 200
                reader = SseReader(response)
                readers.append((params.get("agent"), reader, asyncio.create_task(reader.run())))
            await wait_for(lambda: collector.feed.subscriber_count() == 200, what="200 subscribers")
            started = time.monotonic()

            def send():
                sender = SpanSender(collector)
                for n in range(spans_per_agent):
                    for agent in AGENTS:
                        sender.llm_call(agent=agent, user=f"{agent}-{n}")
                sender.flush()
                sender.close()

            await asyncio.to_thread(send)
            total = spans_per_agent * len(AGENTS)
            await wait_for(lambda: all(len(r.of("activity")) >= (total if a is None else spans_per_agent)
                                       for a, r, _ in readers), timeout=90, what="every subscriber's events")
            elapsed = time.monotonic() - started
            await asyncio.sleep(0.5)
            for _, reader, task in readers:
                await reader.response.aclose()
                task.cancel()
            return readers, elapsed

    try:
        readers, elapsed = asyncio.run(scenario())
    finally:
        server.stop()
    total = spans_per_agent * len(AGENTS)
    for agent, reader, _ in readers:
        events = reader.of("activity")
        ids = [int(e.id) for e in events]
        assert ids == sorted(ids) and len(set(ids)) == len(ids), "ids increase, no duplicates"
        if agent is None:
            assert len(events) == total
        else:
            assert len(events) == spans_per_agent and {e.data["agent"] for e in events} == {agent}
            assert sorted(e.data["user_id"] for e in events) == sorted(f"{agent}-{n}" for n in range(spans_per_agent))
    # one shared query per round, not one per subscriber
    stats = collector.stats_snapshot()
    assert stats["feed_rounds"] <= stats["segments_stored"] + 1


def test_a_subscriber_that_stops_reading_is_dropped_while_others_and_ingest_continue(collector_factory):
    collector, server = _serve(collector_factory, "      subscriber_buffer: 200\n      send_timeout: 3s\n")
    host, port = server.url.removeprefix("http://").split(":")
    stalled = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect((host, int(port)))
    stalled.sendall(f"GET /v1/feed HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {OPERATOR}\r\n\r\n".encode())
    n_spans = 3000

    async def scenario():
        async with httpx.AsyncClient(timeout=60) as client:
            response = await client.send(client.build_request("GET", f"{server.url}/v1/feed", headers=headers()),
                                         stream=True)
            healthy = SseReader(response)
            task = asyncio.create_task(healthy.run())
            await wait_for(lambda: collector.feed.subscriber_count() == 2, what="both subscribers")

            def send():
                sender = SpanSender(collector, batch_size=500)
                for n in range(n_spans):  # ~2.7 KB per event: more than the socket buffers between them hold
                    sender.llm_call(agent="planner", user=f"u-{n}", name="step-" + "x" * 2000)
                sender.flush()
                sender.close()

            await asyncio.to_thread(send)
            await wait_for(lambda: len(healthy.of("activity")) >= n_spans, timeout=90, what="the healthy subscriber")
            await wait_for(lambda: collector.stats_snapshot()["feed_subscribers_dropped"] >= 1, what="the drop")
            await wait_for(lambda: collector.feed.subscriber_count() == 1, what="the stalled one gone")
            await response.aclose()
            task.cancel()
            return healthy

    try:
        healthy = asyncio.run(scenario())
        assert wait_stored(collector, n_spans) == n_spans  # ingest never waited for the feed
        assert len({e.id for e in healthy.of("activity")}) == n_spans
        # what the stalled client finally reads ends with the `dropped` event or a closed stream, never more events
        stalled.settimeout(10)
        received = b""
        closed_by_server = False
        try:
            while chunk := stalled.recv(1 << 16):
                received += chunk
            closed_by_server = True
        except ConnectionResetError:
            closed_by_server = True
        assert received.startswith(b"HTTP/1.1 200") and closed_by_server
        assert received.count(b"event: activity") < n_spans
    finally:
        stalled.close()
        server.stop()


def test_websocket_feed_filters_resumes_and_refuses_bad_tokens(collector_factory):
    collector, server = _serve(collector_factory, "      totals_interval: 300ms\n")
    ws_url = server.url.replace("http://", "ws://") + "/v1/feed/ws"

    async def receive_until(ws, predicate, seen: list) -> None:
        while not predicate(seen):
            seen.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))

    async def scenario():
        sender = SpanSender(collector)
        seen: list[dict] = []
        async with websockets.connect(f"{ws_url}?agent=coder", additional_headers=headers()) as ws:
            await wait_for(lambda: collector.feed.subscriber_count() == 1, what="the subscriber")
            await asyncio.to_thread(lambda: [sender.llm_call(agent=a) for a in ("coder", "planner", "coder")])
            await asyncio.to_thread(sender.flush)
            await receive_until(ws, lambda s: len([m for m in s if m["event"] == "activity"]) >= 2
                                and any(m["event"] == "totals" and m["data"]["activities"] == 2 for m in s), seen)
        await wait_for(lambda: collector.feed.subscriber_count() == 0, what="the disconnect")
        last = [m for m in seen if m["event"] == "activity"][-1]["id"]
        await asyncio.to_thread(lambda: [sender.llm_call(agent="coder", user="while-away") for _ in range(3)])
        await asyncio.to_thread(sender.flush)
        await wait_for(lambda: collector.stats_snapshot()["feed_events"] >= 5, what="stored while away")
        resumed: list[dict] = []
        async with websockets.connect(f"{ws_url}?agent=coder&last_event_id={last}", additional_headers=headers()) as ws:
            await receive_until(ws, lambda s: len([m for m in s if m["event"] == "activity"]) >= 3, resumed)
        refused: list[dict] = []
        async with websockets.connect(ws_url, additional_headers=headers("not-a-valid-token-000000")) as ws:
            try:
                while True:
                    refused.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            except websockets.ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
        tenant_refused: list[dict] = []
        async with websockets.connect(f"{ws_url}?tenant=globex", additional_headers=headers(ACME)) as ws:
            try:
                while True:
                    tenant_refused.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            except websockets.ConnectionClosed:
                pass
        sender.close()
        return seen, resumed, refused, code, tenant_refused, last

    try:
        seen, resumed, refused, code, tenant_refused, last = asyncio.run(scenario())
    finally:
        server.stop()
    activities = [m for m in seen if m["event"] == "activity"]
    assert [m["data"]["agent"] for m in activities] == ["coder", "coder"]
    assert activities[0]["id"] < activities[1]["id"]
    replayed = [m for m in resumed if m["event"] == "activity"]
    assert [m["data"]["user_id"] for m in replayed] == ["while-away"] * 3
    assert all(m["id"] > last for m in replayed) and len({m["id"] for m in replayed}) == 3
    assert refused[0]["event"] == "error" and "bearer token" in refused[0]["data"]["error"] and code == 1008
    assert tenant_refused[0]["event"] == "error" and "operator token" in tenant_refused[0]["data"]["error"]
