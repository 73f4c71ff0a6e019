"""When the hub resumes a reconnect exactly and when it says `reset`: the replay rules, event by event.

Events are published with FeedHub.publish (the path budget alerts take), so every case is deterministic;
the span path is covered end to end in test_feed.py."""

from __future__ import annotations

import asyncio
import time

import pytest

from spanledger.collector.feed import FeedError, FeedHub, FeedSettings
from spanledger.collector.feed.hub import parse_last_event_id


class NoStore:
    """The hub's collector when only published events are involved: nothing is read from a store."""

    def store(self):
        return None


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _publish(hub: FeedHub, n: int, project: str = "p-1", tenant: str | None = None) -> list[int]:
    return [hub.publish("alert", {"n": i, "project": project},
                        lambda _t, filters: "project" not in filters or project in filters["project"], tenant)
            for i in range(n)]


def _subscribe(hub, loop, last=None, tenant=None, **params):
    return hub.subscribe(tenant=tenant, token_key=f"key-{tenant}", params={k: [v] for k, v in params.items()},
                         last_event_id=last, loop=loop)


def test_a_reconnect_replays_exactly_what_its_filter_matched_after_the_id(loop):
    hub = FeedHub(NoStore())
    first = _subscribe(hub, loop, project="p-1")
    ids = _publish(hub, 3, "p-1") + _publish(hub, 2, "p-2") + _publish(hub, 3, "p-1")
    hub.unsubscribe(first)
    again = _subscribe(hub, loop, last=ids[1], project="p-1")
    assert [e.id for e in again.replay] == [ids[2], *ids[5:]] and not again.reset_reason
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    live = _publish(hub, 1, "p-1")
    assert [e.id for e in loop.run_until_complete(again.next_events(1))] == live  # live after replay, no overlap


def test_what_cannot_be_resumed_without_a_gap_says_reset(loop):
    hub = FeedHub(NoStore(), FeedSettings(replay_buffer=5, replay_linger_s=0.2))
    follower = _subscribe(hub, loop, project="p-1")
    ids = _publish(hub, 10)
    assert "no longer in the replay buffer" in _subscribe(hub, loop, last=ids[1], project="p-1").reset_reason
    assert "not an event of this collector" in _subscribe(hub, loop, last=ids[-1] + 100, project="p-1").reset_reason
    # a filter no one followed meanwhile cannot be replayed, even inside the buffer
    assert "no subscriber followed this filter" in _subscribe(hub, loop, last=ids[-2], project="p-9").reset_reason
    # the filter outlives its last subscriber for replay_linger, then it is forgotten
    hub.unsubscribe(follower)
    later = _publish(hub, 2)
    assert [e.id for e in _subscribe(hub, loop, last=ids[-1], project="p-1").replay] == later


def test_a_filter_forgotten_after_its_linger_resets(loop):
    hub = FeedHub(NoStore(), FeedSettings(replay_linger_s=0.05))
    hub.start()
    try:
        sub = _subscribe(hub, loop, project="p-1")
        ids = _publish(hub, 2)
        hub.unsubscribe(sub)
        deadline = time.monotonic() + 5
        while hub.stats()["feed_filter_groups"] and time.monotonic() < deadline:
            time.sleep(0.05)
        _publish(hub, 1)
        assert "no subscriber followed" in _subscribe(hub, loop, last=ids[-1], project="p-1").reset_reason
    finally:
        hub.stop()


def test_tenant_events_reach_only_that_tenant_and_operators(loop):
    hub = FeedHub(NoStore())
    acme, globex, operator = (_subscribe(hub, loop, tenant="acme"), _subscribe(hub, loop, tenant="globex"),
                              _subscribe(hub, loop))
    acme_ids = _publish(hub, 2, tenant="acme")
    everyone = _publish(hub, 1, tenant=None)  # a budget over every tenant: operators only
    got = {name: [e.id for e in loop.run_until_complete(s.next_events(0.1))]
           for name, s in (("acme", acme), ("globex", globex), ("operator", operator))}
    assert got == {"acme": acme_ids, "globex": [], "operator": acme_ids + everyone}


def test_a_subscriber_that_falls_behind_is_dropped_and_the_others_are_not(loop):
    hub = FeedHub(NoStore(), FeedSettings(subscriber_buffer=3))
    slow, fast = _subscribe(hub, loop), _subscribe(hub, loop, project="p-1")
    for _ in range(5):
        _publish(hub, 1)
        loop.run_until_complete(fast.next_events(0.1))
    assert slow.end_kind == "dropped" and "fell more than 3 events behind" in slow.end_reason
    assert not fast.end_kind and hub.stats()["feed_subscribers_dropped"] == 1


def test_limits_and_ids(loop):
    hub = FeedHub(NoStore(), FeedSettings(max_subscribers=2, max_subscribers_per_token=1))
    _subscribe(hub, loop, tenant="a")
    with pytest.raises(FeedError, match="this token already has 1"):
        _subscribe(hub, loop, tenant="a")
    _subscribe(hub, loop, tenant="b")
    with pytest.raises(FeedError, match="maximum of 2 subscribers"):
        _subscribe(hub, loop, tenant="c")
    assert parse_last_event_id(" 123 ") == 123 and parse_last_event_id("") is None
    for bad in ("1" * 20, "-1", "1.0", "0x10", "١٢٣"):
        with pytest.raises(FeedError):
            parse_last_event_id(bad)
    first = FeedHub(NoStore()).new_batch()
    assert FeedHub(NoStore()).new_batch() > first  # increasing across "restarts" (a new hub)


def test_ids_keep_increasing_across_a_restart_and_old_ids_reset(loop):
    before = FeedHub(NoStore())
    _subscribe(before, loop)
    old_ids = _publish(before, 3)
    after = FeedHub(NoStore())  # the collector restarted: an empty buffer, a new first id
    _subscribe(after, loop)
    new_ids = _publish(after, 2)
    assert min(new_ids) > max(old_ids)
    assert "re-list" in _subscribe(after, loop, last=old_ids[-1]).reset_reason
