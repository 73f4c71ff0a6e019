"""POST /v1/activities, /v1/activities/batch and PUT /v1/activities/{span_id}: JSON in, the same ingest path as OTLP."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from decimal import Decimal

import pytest
from api_support import call, get, llm_cost
from collector_support import rows, wait_stored


def _post(api, path, body, **kw):
    return call(api, "POST", path, body, **kw)


def test_one_activity_is_stored_with_the_sdks_attribute_names(collector):
    api = collector.api.url
    status, answer = _post(api, "/v1/activities", {
        "type": "llm_call", "name": "chat gpt-4o", "model": "gpt-4o", "provider": "openai", "agent": "planner",
        "input_tokens": 1200, "output_tokens": 300, "user_id": "u-1", "project_id": "p-1", "ticket_id": "T-9",
        "start_time": "2026-12-01T09:30:00.123456789Z", "duration_ms": 1500, "status": "completed",
        "attributes": {"custom.flag": True, "custom.n": 3}})
    assert status == 201, answer
    (item,) = answer["items"]
    wait_stored(collector, 1)
    (row,) = rows(collector, "SELECT * FROM spanledger.otel_traces")
    assert (row["TraceId"], row["SpanId"]) == (item["trace_id"], item["span_id"])
    assert (row["ActivityType"], row["Model"], row["Provider"], row["AgentName"]) == ("llm_call", "gpt-4o", "openai", "planner")
    assert (row["InputTokens"], row["OutputTokens"], row["UserId"], row["TicketId"]) == (1200, 300, "u-1", "T-9")
    assert row["TotalCost"] == llm_cost(1200, 300) and row["CostSource"] == "computed"  # priced like an SDK span
    assert row["Duration"] == 1_500_000_000 and row["StatusCode"] == "Ok"
    assert row["SpanAttributes"]["custom.flag"] == "true" and row["SpanAttributes"]["gen_ai.agent.name"] == "planner"
    assert row["ServiceName"] == "spanledger-api"
    status, listed = get(api, f"/v1/activities/{item['span_id']}")
    assert listed["start_time"] == "2026-12-01T09:30:00.123456789Z" and listed["duration_ms"] == 1500


def test_batch_reports_errors_per_item_and_stores_the_rest(collector):
    api = collector.api.url
    batch = {"activities": [
        {"type": "tool_call", "tool": "search", "name": "search"},
        {"name": "no type"},                                                  # type is required
        {"type": "llm_call", "input_tokens": -5},                             # negative tokens
        {"type": "agent_run", "start_time": "2026-12-01T10:00:00Z", "end_time": "2026-12-01T09:00:00Z"},
        {"type": "agent_run", "start_time": "1990-01-01T00:00:00Z"},          # refused by the shared validation
        {"type": "product_event", "event_type": "project_created", "metadata": {"priority": "high"}},
        {"type": "x", "surprise": 1},                                          # unknown field
    ]}
    status, answer = _post(api, "/v1/activities/batch", batch)
    assert status == 201, answer
    assert answer["accepted"] == 2 and answer["rejected"] == 5
    errors = {e["index"]: e["error"] for e in answer["errors"]}
    assert set(errors) == {1, 2, 3, 4, 6}
    assert "type" in errors[1] and "input_tokens" in errors[2] and "before start_time" in errors[3]
    assert "outside 2000-01-01" in errors[4] and "surprise" in errors[6]
    wait_stored(collector, 2)
    event = rows(collector, "SELECT SpanName, SpanAttributes FROM spanledger.otel_traces WHERE ActivityType = 'product_event'")[0]
    assert event["SpanName"] == "project_created"
    assert event["SpanAttributes"]["spanledger.event.category"] == "project"
    assert event["SpanAttributes"]["spanledger.event.metadata.priority"] == "high"


def test_a_retried_batch_with_ids_is_stored_once(collector):
    api = collector.api.url
    batch = [{"type": "tool_call", "id": f"client-{i}", "start_time": 1764581400 + i} for i in range(20)]
    first = _post(api, "/v1/activities/batch", batch)[1]
    for _ in range(2):
        again = _post(api, "/v1/activities/batch", batch)[1]
        assert again["items"] == first["items"]  # the same ids, derived from the client's ids
    wait_stored(collector, 20)
    time.sleep(0.5)
    assert rows(collector, "SELECT count() AS n, uniqExact(SpanId) AS u FROM spanledger.otel_traces")[0] == {"n": 20, "u": 20}


def test_text_plain_bodies_parse_as_sendbeacon_sends_them(collector):
    status, answer = call(collector.api.url, "POST", "/v1/activities/batch",
                          raw=json.dumps([{"type": "product_event", "event_type": "page_viewed"}]).encode(),
                          headers={"Content-Type": "text/plain;charset=UTF-8"})
    assert status == 201 and answer["accepted"] == 1


def test_a_started_activity_is_completed_by_put_and_read_once(collector):
    api = collector.api.url
    status, started = _post(api, "/v1/activities", {"type": "agent_run", "agent": "coder", "status": "started",
                                                    "user_id": "u-7", "start_time": time.time() - 5})
    span_id = started["items"][0]["span_id"]
    wait_stored(collector, 1)
    status, done = call(api, "PUT", f"/v1/activities/{span_id}", {"status": "completed", "output_tokens": 42,
                                                                   "model": "gpt-4o", "provider": "openai"})
    assert status == 200, done
    assert done["items"][0]["span_id"] == span_id
    wait_stored(collector, 2)
    status, page = get(api, "/v1/activities")
    (activity,) = [a for a in page["activities"] if a["span_id"] == span_id]
    assert activity["status"] == "completed" and activity["output_tokens"] == 42 and activity["user_id"] == "u-7"
    assert 4900 < activity["duration_ms"] < 60_000
    assert len(page["activities"]) == 1
    status, again = call(api, "PUT", f"/v1/activities/{span_id}", {"status": "completed"})
    assert status == 409 and "already completed" in again["error"]
    status, moved = call(api, "PUT", "/v1/activities/0123456789abcdef", {"status": "completed"})
    assert status == 404


@pytest.mark.parametrize("body, status, words", [
    ("not json", 400, "not JSON"),
    ([1, 2], 400, "one activity object"),
    ({"type": "t", "cost_usd": "NaN"}, 400, "cost_usd"),
    ({"type": "t", "span_id": "zz" * 8}, 400, "span_id"),
    ({"type": "bad type!"}, 400, "type"),
    ({"type": "t", "start_time": "tomorrow-ish"}, 400, "start_time"),
])
def test_bad_single_activities_change_nothing(collector, body, status, words):
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    got, answer = call(collector.api.url, "POST", "/v1/activities", raw=raw)
    assert got == status and words in answer["error"], answer
    time.sleep(0.3)
    assert collector.stats.spans_accepted == 0


def test_delete_drops_old_days_and_keeps_the_rest(collector):
    api = collector.api.url
    old = [{"type": "tool_call", "start_time": "2026-01-0%dT12:00:00Z" % d} for d in (1, 2, 3)]
    recent = [{"type": "tool_call", "start_time": time.time() - 60}]
    assert _post(api, "/v1/activities/batch", old + recent)[1]["accepted"] == 4
    wait_stored(collector, 4)
    status, answer = call(api, "DELETE", "/v1/activities", params={"older_than": "2026-01-02T18:00:00Z"})
    assert status == 200, answer
    assert answer["dropped_partitions"] == ["2026-01-01"] and answer["deleted_rows"] == 2
    assert [r["d"] for r in rows(collector, "SELECT toString(toDate(Timestamp)) AS d FROM spanledger.otel_traces ORDER BY d")][:1] == ["2026-01-03"]
    assert rows(collector, "SELECT count() AS n FROM spanledger.otel_traces")[0]["n"] == 2
    # the rollups outlive the raw spans
    assert rows(collector, "SELECT sum(Spans) AS n FROM spanledger.spanledger_usage_hourly")[0]["n"] == 4
    for params, words in (({"older_than": "next week"}, "older_than"), ({"older_than": "2999-01-01"}, "future"),
                          ({}, "older_than"), ({"older_than": "30d", "agent": "x"}, "unknown parameter")):
        status, answer = call(api, "DELETE", "/v1/activities", params=params)
        assert 400 <= status < 500 and words in answer["error"], (params, answer)
    assert rows(collector, "SELECT count() AS n FROM spanledger.otel_traces")[0]["n"] == 2


def test_a_full_wal_answers_503_with_retry_after_and_keeps_what_it_acknowledged(collector_factory):
    collector = collector_factory("""
processors: {batch: {timeout: 100ms}}
exporters: {clickhouse: {endpoint: "http://127.0.0.1:9", wal: {max_size_mib: 1}, retry_on_failure: {initial_interval: 5s}}}
""")
    api = collector.api.url
    assert get(api, "/v1/activities")[0] == 503  # no store yet: reads say so
    batch = [{"type": "llm_call", "attributes": {"blob": "x" * 2000}} for _ in range(100)]  # ~250 KB a request
    accepted, refused = 0, None
    for _ in range(12):
        request = urllib.request.Request(f"{api}/v1/activities/batch", data=json.dumps(batch).encode())
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                accepted += json.loads(response.read())["accepted"]
        except urllib.error.HTTPError as err:
            refused = err
            break
    assert refused is not None and refused.code == 503 and int(refused.headers["Retry-After"]) >= 1
    assert "retry" in json.loads(refused.read())["error"]
    assert accepted >= 100 and collector.stats.spans_accepted == accepted  # acknowledged = in the WAL
    assert collector.wal.unstored_bytes > 0
