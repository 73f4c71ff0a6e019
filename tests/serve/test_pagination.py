"""Keyset pages stay stable while spans arrive: new spans above the cursor and late spans with old timestamps."""

from __future__ import annotations

import time

from api_support import get
from collector_support import RawClient, make_span, new_request, wait_stored

S = 1_000_000_000


def _send(collector, starts: list[int], tag: str) -> set[str]:
    request, scope = new_request("paging")
    ids = {make_span(scope, f"{tag}-{i}", start_ns=start).span_id.hex() for i, start in enumerate(starts)}
    client = RawClient(collector.server.address)
    client.export(request.SerializeToString())
    client.close()
    return ids


def test_no_span_is_missed_or_repeated_while_spans_arrive(collector):
    api = collector.api.url
    now = time.time_ns()
    base = now - 3600 * S
    preloaded = _send(collector, [base + i * 10 * S for i in range(60)], "pre")
    total = 60
    wait_stored(collector, total)
    seen: list[str] = []
    late_below, arrived_above = set(), set()
    status, page = get(api, "/v1/activities", limit=7)
    cursor_ns = None
    while True:
        assert status == 200, page
        seen += [a["span_id"] for a in page["activities"]]
        if page["activities"]:
            oldest = page["activities"][-1]["start_time"]
            cursor_ns = _ns(oldest)
        if page["next_cursor"] is None:
            break
        # meanwhile: brand-new spans (above every cursor), and late spans from the past, below the cursor
        arrived_above |= _send(collector, [time.time_ns()], "new")
        late = [cursor_ns - 5 * S] if cursor_ns - 5 * S > base else []
        late_below |= _send(collector, late, "late") if late else set()
        total += 1 + len(late)
        wait_stored(collector, total)
        status, page = get(api, "/v1/activities", limit=7, cursor=page["next_cursor"])
    assert len(seen) == len(set(seen)), "a span was repeated"
    assert preloaded <= set(seen), "a span that was there before paging started was missed"
    assert late_below and late_below <= set(seen), "a late span below the cursor was missed"
    assert not (arrived_above & set(seen[7:])), "a new span shifted into a later page"


def test_equal_timestamps_split_across_pages_by_span_id(collector):
    same = time.time_ns() - 60 * S
    ids = _send(collector, [same] * 12, "tie")
    wait_stored(collector, 12)
    seen, cursor = [], None
    while True:
        status, page = get(collector.api.url, "/v1/activities", limit=5, **({"cursor": cursor} if cursor else {}))
        seen += [a["span_id"] for a in page["activities"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(ids, reverse=True)


def _ns(iso: str) -> int:
    import datetime as dt

    whole, fraction = iso.rstrip("Z").split(".")
    seconds = int(dt.datetime.fromisoformat(whole).replace(tzinfo=dt.timezone.utc).timestamp())
    return seconds * S + int(fraction)
