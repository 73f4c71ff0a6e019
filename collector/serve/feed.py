"""GET /v1/feed (Server-Sent Events) and /v1/feed/ws (WebSocket): the live feed of activities.

Both take the listing filters as query parameters (``agent=planner``,
``where=...``, ``room=project:p-7``...; see collector/query/filters.py) and
resume after ``Last-Event-ID`` (the header, or ``last_event_id=`` where a
client cannot set headers).  Events:

* ``activity``: one activity, the JSON of GET /v1/activities, with an ``id``;
* ``alert``: a budget threshold crossing in the subscriber's scope, with an ``id``;
* ``totals``: every few seconds, the activities, tokens and cost sent on this subscription so far;
* ``reset``: Last-Event-ID could not be resumed without a gap: re-list, then follow;
* ``dropped``: the last event of a subscriber that fell too far behind or stopped reading.

Writes to a client go through ``asyncio.wait_for``: a client that stops
reading is dropped after ``send_timeout`` instead of holding anything up.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging

from fastapi import APIRouter, Depends, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response

from ..feed import FeedError
from ..feed.hub import filter_params, parse_last_event_id
from ..feed.subscription import Closed, Subscription
from ..query.filters import FilterError
from .deps import Caller, require_caller

log = logging.getLogger(__name__)

router = APIRouter(tags=["feed"])

SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-store"),
               (b"x-accel-buffering", b"no")]
RETRY_MS = 2000  # how soon an EventSource reconnects
WRITE_CHUNK = 64 << 10


def token_key(authorization: str | None) -> str:
    """Subscriptions are bounded per token; the token itself is never kept."""
    return hashlib.sha256((authorization or "").encode()).hexdigest()


def _open(collector, tenant: str | None, authorization: str | None, query_params, last_event_id: str | None,
          loop) -> Subscription:
    params = filter_params({k: query_params.getlist(k) for k in query_params.keys() if k != "last_event_id"})
    last = parse_last_event_id(last_event_id)
    return collector.feed.subscribe(tenant=tenant, token_key=token_key(authorization), params=params,
                                    last_event_id=last, loop=loop)


def _control(kind: str, payload: dict, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(payload)}\n\n"


def _reset_payload(sub: Subscription) -> dict:
    return {"reason": sub.reset_reason, "resume_after": sub.position}


@router.get("/v1/feed", summary="Follow new activities (Server-Sent Events)")
async def feed_sse(request: Request, caller: Caller = Depends(require_caller)):
    try:
        sub = _open(request.app.state.collector, caller.tenant, request.headers.get("authorization"),
                    request.query_params,
                    request.headers.get("last-event-id") or request.query_params.get("last_event_id"),
                    asyncio.get_running_loop())
    except (FeedError, FilterError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=getattr(exc, "status", 400))
    return SseStream(request.app.state.collector.feed, sub)


class SseStream(Response):
    """The event stream of one subscription, written with a deadline on every send."""

    def __init__(self, hub, sub: Subscription) -> None:
        super().__init__(media_type="text/event-stream")
        self.hub = hub
        self.sub = sub

    async def __call__(self, scope, receive, send) -> None:
        hub, sub = self.hub, self.sub
        timeout = hub.settings.send_timeout_s
        watcher = asyncio.create_task(_watch_disconnect(receive, sub))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
            opening = f"retry: {RETRY_MS}\n: spanledger live feed\n\n"
            if sub.reset_reason:
                opening += _control("reset", _reset_payload(sub), sub.position)
            await _send_body(send, opening.encode(), timeout)
            await _send_events(send, sub.replay, timeout)
            sub.count(sub.replay)
            sub.replay = []
            await _pump(sub, hub.settings.totals_interval_s, lambda events: _send_events(send, events, timeout),
                        lambda: _send_body(send, f"event: totals\ndata: {sub.totals_json()}\n\n".encode(), timeout))
            if sub.end_kind:
                await _send_body(send, _control(sub.end_kind, {"reason": sub.end_reason}).encode(), 1.0)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.TimeoutError:
            # the client stopped reading: leave without completing the response, so the server closes it
            _drop_stalled(hub, sub, timeout)
        except OSError:  # the connection went away mid-write
            pass
        finally:
            watcher.cancel()
            hub.unsubscribe(sub)


def _drop_stalled(hub, sub: Subscription, timeout: float) -> None:
    if sub.end_kind != "dropped":  # not already counted by the hub as fallen behind
        hub.counters["feed_subscribers_dropped"] += 1
    sub.close(f"the client accepted no data for {timeout:g}s", kind="dropped")


async def _send_body(send, body: bytes, timeout: float) -> None:
    if body:
        await asyncio.wait_for(send({"type": "http.response.body", "body": body, "more_body": True}), timeout)


async def _send_events(send, events, timeout: float) -> None:
    """Write events in slices of at most WRITE_CHUNK bytes, each with its deadline: what waits for a slow
    client stays in its bounded queue (where it can overflow and be dropped), not in the server's
    write buffer."""
    data = b"".join([event.sse for event in events])
    for offset in range(0, len(data), WRITE_CHUNK):
        await _send_body(send, data[offset:offset + WRITE_CHUNK], timeout)


async def _watch_disconnect(receive, sub: Subscription) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            sub.close()
            return


async def _pump(sub: Subscription, totals_every: float, send_events, send_totals) -> None:
    """Deliver queued events as they come and the totals every ``totals_every`` s, until the subscription ends."""
    loop = asyncio.get_running_loop()
    next_totals = loop.time() + totals_every
    while True:
        try:
            events = await sub.next_events(max(0.0, next_totals - loop.time()))
        except Closed:
            return
        if events:  # the subscription counted them into its totals as it handed them over
            await send_events(events)
        if loop.time() >= next_totals:
            await send_totals()
            next_totals = loop.time() + totals_every


@router.websocket("/v1/feed/ws")
async def feed_ws(websocket: WebSocket) -> None:
    """The same feed over a WebSocket: each message is {"event": kind, "id": n, "data": {...}}."""
    await websocket.accept()
    collector = websocket.app.state.collector
    authorization = websocket.headers.get("authorization")
    tenant = websocket.app.state.auth.tenant_for(authorization)
    if tenant is None:
        await _ws_refuse(websocket, "missing or unknown bearer token: send 'Authorization: Bearer <token>'", 1008)
        return
    try:
        sub = _open(collector, tenant or None, authorization, websocket.query_params,
                    websocket.headers.get("last-event-id") or websocket.query_params.get("last_event_id"),
                    asyncio.get_running_loop())
    except (FeedError, FilterError) as exc:
        await _ws_refuse(websocket, str(exc), 1013 if getattr(exc, "status", 400) == 429 else 1008)
        return
    hub = collector.feed
    timeout = hub.settings.send_timeout_s

    async def send_text(text: str) -> None:
        await asyncio.wait_for(websocket.send_text(text), timeout)

    async def watch() -> None:
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
        finally:
            sub.close()

    watcher = asyncio.create_task(watch())
    try:
        if sub.reset_reason:
            await send_text(json.dumps({"event": "reset", "id": sub.position, "data": _reset_payload(sub)}))
        for event in sub.replay:
            await send_text(event.ws)
        sub.count(sub.replay)
        sub.replay = []

        async def send_events(events) -> None:
            for event in events:
                await send_text(event.ws)

        await _pump(sub, hub.settings.totals_interval_s, send_events,
                    lambda: send_text(f'{{"event":"totals","data":{sub.totals_json()}}}'))
        if sub.end_kind:
            await asyncio.wait_for(websocket.send_text(json.dumps({"event": sub.end_kind,
                                                                   "data": {"reason": sub.end_reason}})), 1.0)
            await websocket.close(1013 if sub.end_kind == "dropped" else 1001)
    except asyncio.TimeoutError:
        _drop_stalled(hub, sub, timeout)
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass  # the client went away
    finally:
        watcher.cancel()
        hub.unsubscribe(sub)


async def _ws_refuse(websocket: WebSocket, message: str, code: int) -> None:
    await websocket.send_text(json.dumps({"event": "error", "data": {"error": message}}))
    await websocket.close(code)
