"""GET /v1/activities, /v1/activities/{span_id} and /v1/traces/{trace_id} over spans sent by the real instrumentation."""

from __future__ import annotations

from decimal import Decimal

import pytest
from api_support import SPANS_PER_TRACE, get, llm_cost, send_workload
from collector_support import start_collector, wait_stored

TRACES = 8


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    collector = start_collector(tmp_path_factory.mktemp("activities") / "data")
    try:
        sent = send_workload(collector.server.address, TRACES)
        wait_stored(collector, TRACES * SPANS_PER_TRACE)
        yield collector, sent
    finally:
        collector.stop(timeout_s=10)


def _all(api, **params) -> list[dict]:
    items, cursor = [], None
    while True:
        status, page = get(api, "/v1/activities", **params, **({"cursor": cursor} if cursor else {}))
        assert status == 200, page
        items += page["activities"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def test_listing_is_newest_first_with_every_field(loaded):
    collector, sent = loaded
    status, page = get(collector.api.url, "/v1/activities", limit=1000)
    assert status == 200 and page["time_zone"] == "UTC" and page["next_cursor"] is None
    items = page["activities"]
    assert len(items) == TRACES * SPANS_PER_TRACE
    keys = [(a["start_time"], a["span_id"]) for a in items]
    assert keys == sorted(keys, reverse=True)
    by_id = {a["span_id"]: a for a in items}
    for s in sent:
        llm = by_id[s["llm"]]
        assert (llm["trace_id"], llm["parent_span_id"], llm["model"], llm["provider"]) == (s["trace"], s["planner"], "gpt-4o", "openai")
        assert (llm["input_tokens"], llm["output_tokens"]) == (1000 + s["t"], 100 + s["t"])
        assert Decimal(llm["cost_usd"]) == llm_cost(1000 + s["t"], 100 + s["t"]) and llm["cost_source"] == "computed"
        assert (llm["user_id"], llm["project_id"], llm["session_id"]) == (f"user-{s['t'] % 2}", "proj-a", f"sess-{s['t']}")
        assert llm["service"] == "svc-a" and llm["environment"] == "test" and llm["start_time"].endswith("Z")
        assert by_id[s["planner"]]["agent"] == "planner" and by_id[s["planner"]]["parent_span_id"] == ""
        assert by_id[s["coder"]]["agent"] == "coder" and by_id[s["tool"]]["type"] == "tool_call"
        assert by_id[s["event"]]["type"] == "product_event"
        assert "attributes" not in llm  # only with detailed=true


@pytest.mark.parametrize("params, expected", [
    ({"agent": "coder"}, lambda s: [s["coder"], s["llm2"]]),  # spans inside an agent run carry its name
    ({"agent": "coder", "type": "agent_run"}, lambda s: [s["coder"]]),
    ({"type": "product_event"}, lambda s: [s["event"]]),
    ({"user": "user-1", "type": "product_event"}, lambda s: [s["event"]] if s["t"] % 2 else []),
    ({"where": "model:gpt-4o AND input_tokens<2000"}, lambda s: [s["llm"]]),
    ({"where": "type:agent_run AND (agent:planner OR agent:coder)"}, lambda s: [s["planner"], s["coder"]]),
    ({"where": "NOT type:llm_call AND agent:planner"}, lambda s: [s["planner"], s["tool"]]),
    ({"session": ["sess-1", "sess-2"], "type": "tool_call"}, lambda s: [s["tool"]] if s["t"] in (1, 2) else []),
])
def test_filters_narrow_the_listing(loaded, params, expected):
    collector, sent = loaded
    got = {a["span_id"] for a in _all(collector.api.url, limit=7, **params)}
    assert got == {span for s in sent for span in expected(s)}


def test_pages_cover_everything_once(loaded):
    collector, sent = loaded
    items = _all(collector.api.url, limit=5)
    ids = [a["span_id"] for a in items]
    assert len(ids) == len(set(ids)) == TRACES * SPANS_PER_TRACE


def test_detailed_adds_attributes_events_and_content(loaded):
    collector, sent = loaded
    status, page = get(collector.api.url, "/v1/activities", detailed="true", type="tool_call", limit=1000)
    assert status == 200
    tool = next(a for a in page["activities"] if a["span_id"] == sent[0]["tool"])
    assert tool["attributes"]["gen_ai.tool.name"] == "search"
    assert tool["resource"]["service.name"] == "svc-a"
    assert isinstance(tool["events"], list) and isinstance(tool["links"], list)
    # captured content (capture_content=True in the workload) is set apart from the other attributes, parsed
    assert tool["content"]["gen_ai.tool.call.arguments"] == {"q": "query 0"}
    assert "gen_ai.tool.call.arguments" not in tool["attributes"]


def test_one_activity_and_its_chain(loaded):
    collector, sent = loaded
    s = sent[3]
    status, llm2 = get(collector.api.url, f"/v1/activities/{s['llm2']}", include_chain="true")
    assert status == 200 and llm2["span_id"] == s["llm2"] and llm2["input_tokens"] == 2000
    assert [a["span_id"] for a in llm2["ancestors"]] == [s["planner"], s["coder"]]
    assert llm2["descendants"] == []
    status, planner = get(collector.api.url, f"/v1/activities/{s['planner'].upper()}", include_chain="true")
    assert status == 200 and planner["ancestors"] == []
    assert {a["span_id"] for a in planner["descendants"]} == {s["llm"], s["tool"], s["coder"], s["llm2"]}


def test_trace_tree_sums_tokens_and_cost_per_subtree(loaded):
    collector, sent = loaded
    s = sent[5]
    status, trace = get(collector.api.url, f"/v1/traces/{s['trace']}")
    assert status == 200 and trace["spans"] == 5 and trace["truncated"] is False
    (root,) = trace["roots"]
    assert root["span_id"] == s["planner"]
    children = {c["span_id"]: c for c in root["children"]}
    assert set(children) == {s["llm"], s["tool"], s["coder"]}
    coder = children[s["coder"]]
    assert [c["span_id"] for c in coder["children"]] == [s["llm2"]]
    assert Decimal(coder["subtree"]["cost_usd"]) == llm_cost(2000, 500) and coder["subtree"]["input_tokens"] == 2000
    expected = llm_cost(1000 + 5, 100 + 5) + llm_cost(2000, 500)
    assert Decimal(root["subtree"]["cost_usd"]) == expected == Decimal(trace["totals"]["cost_usd"])
    assert root["subtree"]["input_tokens"] == 3005 and root["subtree"]["output_tokens"] == 605
    assert root["subtree"]["spans"] == 5 and Decimal(root["cost_usd"]) == 0


@pytest.mark.parametrize("path, params, status, words", [
    ("/v1/activities", {"limit": "0"}, 422, "limit"),
    ("/v1/activities", {"limit": "1001"}, 422, "limit"),
    ("/v1/activities", {"limit": "ten"}, 422, "limit"),
    ("/v1/activities", {"agnet": "planner"}, 400, "unknown parameter 'agnet'"),
    ("/v1/activities", {"where": "agent:planner AND"}, 400, "where"),
    ("/v1/activities", {"since": "yesterday"}, 400, "since"),
    ("/v1/activities", {"tenant": "acme"}, 200, ""),  # auth off: the caller is the operator
    ("/v1/activities", {"cursor": "not-a-cursor"}, 400, "cursor"),
    ("/v1/activities/xyz", {}, 400, "span id"),
    ("/v1/activities/0123456789abcdef", {}, 404, "no activity"),
    ("/v1/traces/0123", {}, 400, "trace id"),
    ("/v1/traces/0123456789abcdef0123456789abcdef", {}, 404, "no trace"),
])
def test_bad_parameters_are_refused_with_a_reason(loaded, path, params, status, words):
    collector, _ = loaded
    got, body = get(collector.api.url, path, **params)
    assert got == status, body
    if status >= 400:
        assert words in body["error"]
