"""The read views end to end: live feed, filters, activity detail, timelines, costs and agents,
in chromium against a real collector and its real API (the figures a page shows are compared with
what the API answers)."""

from __future__ import annotations

import os
import time
from decimal import Decimal
from urllib.parse import quote

import httpx

from console_support import llm_span, screenshot, send_spans, wait_until


def stored(collector, n):
    from collector_support import wait_stored

    wait_stored(collector, n)


def feed_names(page) -> list[str]:
    return page.eval_on_selector_all("#feed-list tbody tr td:nth-child(3)", "tds => tds.map(td => td.textContent)")


def test_feed_shows_spans_sent_while_open_and_pauses(console, page_factory):
    collector, server = console
    page, guard = page_factory(server.url)
    page.goto(server.url + "/#/feed")
    page.wait_for_selector("#feed-state")
    wait_until(page, "document.getElementById('feed-state').textContent === 'live'")
    send_spans(collector, [llm_span(f"live-{i}", trace_id=os.urandom(16), span_id=os.urandom(8), input_tokens=100, output_tokens=10)
                           for i in range(2)])
    wait_until(page, "document.querySelectorAll('#feed-list tbody tr').length === 2", timeout_s=20)
    assert sorted(feed_names(page)) == ["live-0", "live-1"]
    assert page.text_content("#feed-tokens b") == "220"
    page.click("#feed-pause")
    send_spans(collector, [llm_span("while-paused", trace_id=os.urandom(16), span_id=os.urandom(8))])
    wait_until(page, "document.getElementById('feed-state').textContent.startsWith('paused · 1 new')", timeout_s=20)
    assert "while-paused" not in feed_names(page)
    page.click("#feed-pause")
    assert feed_names(page)[0] == "while-paused"
    assert guard.blocked == []
    screenshot(page, "feed-live")


def test_feed_filters_narrow_and_live_in_the_url(console, page_factory):
    collector, server = console
    send_spans(collector, [llm_span(f"{agent}-{i}", trace_id=os.urandom(16), span_id=os.urandom(8), agent=agent)
                           for agent in ("alpha", "beta") for i in range(3)]
               + [{"name": "tool-x", "trace_id": os.urandom(16), "span_id": os.urandom(8),
                   "attributes": {"spanledger.activity.type": "tool_call", "gen_ai.agent.name": "alpha"}, "error": True}])
    stored(collector, 7)
    page, _ = page_factory(server.url)
    page.goto(server.url + "/#/feed")
    wait_until(page, "document.querySelectorAll('#feed-list tbody tr').length === 7")
    page.fill("input[name=agent]", "alpha")
    page.press("input[name=agent]", "Enter")
    wait_until(page, "document.querySelectorAll('#feed-list tbody tr').length === 4")
    assert "agent=alpha" in page.url
    page.select_option("select[name=type]", "tool_call")
    wait_until(page, "document.querySelectorAll('#feed-list tbody tr').length === 1")
    assert feed_names(page) == ["tool-x"]
    assert page.locator("#feed-list tbody tr.err").count() == 1
    shared = page.url
    other, _ = page_factory(server.url)
    other.goto(shared)
    wait_until(other, "document.querySelectorAll('#feed-list tbody tr').length === 1")
    screenshot(other, "feed-filtered")


def test_activity_detail_shows_chain_and_links_to_trace(console, page_factory):
    collector, server = console
    trace, root, child = os.urandom(16), os.urandom(8), os.urandom(8)
    send_spans(collector, [llm_span("agent-run", trace_id=trace, span_id=root),
                           llm_span("inner-call", trace_id=trace, span_id=child, parent=root,
                                    attributes={"custom.note": "<b>not bold</b>"})])
    stored(collector, 2)
    page, _ = page_factory(server.url)
    page.goto(server.url + "/#/activity/" + child.hex())
    page.wait_for_selector("#activity-chain li")
    assert "agent-run" in page.text_content("#activity-chain")
    assert "<b>not bold</b>" in page.text_content("#activity-attributes")
    page.click("#to-trace")
    page.wait_for_selector(".wf-row")
    assert page.locator(".wf-row").count() == 2
    screenshot(page, "activity-detail")


def test_conversation_timeline_in_sequence_order(console, page_factory):
    collector, server = console
    # the conversation report lists the sequenced activities of a conversation (gen_ai.conversation.id,
    # spanledger.conversation.sequence: what the SDK writes) in sequence order, even when their clocks
    # disagree: here the clock runs backwards
    base = time.time_ns()
    steps = {0: "user_message", 1: "tool_call", 2: "assistant_response"}
    send_spans(collector, [{"name": f"turn-{i}", "trace_id": os.urandom(16), "span_id": os.urandom(8), "start_ns": base - i * 1000,
                            "attributes": {"spanledger.activity.type": "conversation_turn", "gen_ai.conversation.id": "c-1",
                                           "spanledger.conversation.sequence": i, "spanledger.conversation.activity": steps[i]}}
                           for i in (2, 0, 1)]
               + [{"name": "unsequenced", "trace_id": os.urandom(16), "span_id": os.urandom(8),
                   "attributes": {"spanledger.activity.type": "llm_call", "gen_ai.conversation.id": "c-1"}}])
    stored(collector, 4)
    page, _ = page_factory(server.url)
    page.goto(server.url + "/#/timeline/c-1?kind=conversation")
    page.wait_for_selector("#timeline-list li")
    names = page.eval_on_selector_all("#timeline-list li a", "as => as.map(a => a.textContent)")
    assert names == ["turn-0", "turn-1", "turn-2"]
    steps_shown = page.eval_on_selector_all("#timeline-list li .when", "els => els.map(e => e.textContent.split(' ')[0])")
    assert steps_shown == ["#0", "#1", "#2"]
    screenshot(page, "timeline-conversation")


def test_cost_charts_show_the_totals_the_api_reports(console, page_factory):
    collector, server = console
    send_spans(collector, [llm_span(f"c{i}", trace_id=os.urandom(16), span_id=os.urandom(8), model=m, input_tokens=1000 * (i + 1), output_tokens=100)
                           for i, m in enumerate(["gpt-4o", "gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet"])])
    stored(collector, 4)
    page, _ = page_factory(server.url)
    page.goto(server.url + "/#/costs?group_by=model&range=all")
    page.wait_for_selector("#spend-chart figure")
    shown = Decimal(page.get_attribute("#spend-chart figure", "data-total"))
    answer = httpx.get(server.url + "/v1/reports/spend", params={"group_by": "model", "bucket": "day"}).json()
    # a report answers columns and rows (docs/reports.md); money is the exact decimal string "usd"
    usd = answer["columns"].index("usd")
    api_total = sum(Decimal(row[usd]) for row in answer["rows"])
    store_total = collector.store().query("SELECT sum(TotalCost) FROM spanledger.otel_traces").result_rows[0][0]
    assert api_total > 0
    assert abs(shown - api_total) < Decimal("1e-9")
    assert abs(api_total - Decimal(store_total)) < Decimal("1e-9")
    assert int(page.get_attribute("#spend-chart figure", "data-groups")) == 3
    screenshot(page, "costs")


BUDGETED = """processors: {batch: {timeout: 100ms}}
extensions:
  spanledger_budgets:
    budgets:
      - {name: gpt4o-daily, scope: {model: gpt-4o}, limit_usd: "0.001", window: day}
      - {name: planner-month, scope: {agent: planner}, limit_usd: "1000", window: month}
"""


def test_cost_figures_budgets_and_costliest_traces_are_the_apis(console_factory, page_factory):
    collector, server = console_factory(BUDGETED)
    costly, cheap = os.urandom(16), os.urandom(16)
    send_spans(collector, [llm_span("big", trace_id=costly, span_id=os.urandom(8), input_tokens=50_000, output_tokens=5_000,
                                    attributes={"gen_ai.usage.cache_read_input_tokens": 10_000}),
                           llm_span("small", trace_id=cheap, span_id=os.urandom(8), model="gpt-4o-mini"),
                           llm_span("mystery", trace_id=cheap, span_id=os.urandom(8), model="no-such-model-xyz")])
    stored(collector, 3)
    page, _ = page_factory(server.url)
    page.goto(server.url + "/#/costs?range=all")
    page.wait_for_selector("#kpi-spend")
    page.wait_for_selector("#budgets tbody tr")
    page.wait_for_selector("#top-traces tbody tr")
    total = httpx.get(server.url + "/v1/reports/spend", params={"group_by": "none", "bucket": "none"}).json()
    record = dict(zip(total["columns"], total["rows"][0]))
    shown = lambda selector: page.get_attribute(selector, "data-value")  # noqa: E731
    assert Decimal(shown("#kpi-spend")) == Decimal(record["usd"]) > 0
    assert int(shown("#kpi-unpriced")) == record["unpriced_calls"] == 1  # the unknown model: counted apart, never $0
    assert int(shown("#kpi-calls")) == record["llm_calls"] == 3
    assert Decimal(shown("#kpi-saved")) == Decimal(record["cache_savings_usd"])
    assert float(shown("#kpi-cache")) == record["cache_hit_ratio"]
    budgets = {b["name"]: b for b in httpx.get(server.url + "/v1/budgets").json()["budgets"]}
    rows = page.eval_on_selector_all("#budgets tbody tr", "trs => trs.map(tr => [tr.cells[0].textContent, tr.cells[0].firstChild.dataset.spent, "
                                                          "tr.cells[5].firstChild.className])")
    assert {r[0]: r[1] for r in rows} == {name: b["spent_usd"] for name, b in budgets.items()}
    assert {r[0]: r[2] == "budget-over" for r in rows} == {"gpt4o-daily": True, "planner-month": False}
    top = httpx.get(server.url + "/v1/reports/top", params={"key": "trace", "by": "cost", "limit": 10}).json()
    first_link = page.get_attribute("#top-traces tbody tr a", "href")
    assert first_link == "#/trace/" + top["rows"][0][0] == "#/trace/" + costly.hex()
    screenshot(page, "costs-kpis-budgets")


def test_the_dashboard_waits_out_the_query_concurrency_limit(console_factory, page_factory):
    """With one query at a time per tenant, the dashboard's parallel questions meet 429 + Retry-After
    from the gateway: the console asks again after it, and every part still shows."""
    collector, server = console_factory("processors: {batch: {timeout: 100ms}}\n"
                                        "extensions: {spanledger_api: {query_limits: {per_tenant_concurrency: 1}}}\n")
    send_spans(collector, [llm_span(f"q{i}", trace_id=os.urandom(16), span_id=os.urandom(8)) for i in range(3)])
    stored(collector, 3)
    page, _ = page_factory(server.url)
    statuses = []
    page.on("response", lambda response: statuses.append(response.status))
    page.goto(server.url + "/#/costs?range=all")
    page.wait_for_selector("#spend-chart figure")
    page.wait_for_selector("#kpi-spend")
    page.wait_for_selector("#top-traces tbody tr")
    assert page.locator("#top-traces tbody tr").count() == 3
    assert page.locator("main .error").count() == 0
    assert 429 in statuses  # the limit was met (the page asks two at once, and the sign-in probe a third)


def test_agent_statistics(console, page_factory):
    collector, server = console
    # success rate = completed / finished runs by the run's status (spanledger.status, which the SDK's
    # agent_run writes; docs/reports.md), so the failed run carries status failed as well as an error
    send_spans(collector, [{"name": "run", "trace_id": os.urandom(16), "span_id": os.urandom(8), "error": i == 0,
                            "attributes": {"spanledger.activity.type": "agent_run", "gen_ai.agent.name": "planner",
                                           "spanledger.status": "failed" if i == 0 else "completed"}} for i in range(4)])
    stored(collector, 4)
    page, _ = page_factory(server.url)
    page.goto(server.url + "/#/agents?range=all")
    page.wait_for_selector("main table tbody tr")
    row = page.eval_on_selector("main table tbody tr", "tr => [...tr.cells].map(td => td.textContent)")
    assert row[0] == "planner" and row[1] == "4" and row[2] == "75.0%"
    answer = httpx.get(server.url + "/v1/agents/stats").json()
    record = dict(zip(answer["columns"], answer["rows"][0]))
    assert (record["runs"], record["failed"], record["success_rate"]) == (4, 1, 0.75)
    assert row[3] == "1" and row[4] == "1"  # failed, errors
    screenshot(page, "agents")


def test_search_by_trace_id_opens_the_trace(console, page_factory):
    collector, server = console
    trace = os.urandom(16)
    send_spans(collector, [llm_span("searched", trace_id=trace, span_id=os.urandom(8))])
    stored(collector, 1)
    page, _ = page_factory(server.url)
    page.goto(server.url + "/#/sql")
    page.wait_for_selector("body[data-probed]")
    page.fill("#search-input", trace.hex())
    page.press("#search-input", "Enter")
    page.wait_for_selector(".wf-row")
    assert page.url.endswith("#/trace/" + trace.hex())


def test_search_for_an_unknown_id_offers_what_it_could_be(console, page_factory):
    _, server = console
    page, _ = page_factory(server.url)
    page.goto(server.url + "/#/sql")
    page.wait_for_selector("body[data-probed]")
    page.fill("#search-input", "TICKET-77")
    page.press("#search-input", "Enter")
    page.wait_for_selector("#search-links")
    links = page.eval_on_selector_all("#search-links a", "as => as.map(a => a.getAttribute('href'))")
    assert "#/timeline/TICKET-77?kind=ticket" in links and "#/feed?user=TICKET-77" in links
    screenshot(page, "search")


def test_a_view_whose_request_the_api_refuses_says_why(console, page_factory):
    """A filter the API refuses (a broken where= expression) shows the API's own reason, not a broken page."""
    _, server = console
    bad = "agent:planner AND ("
    answer = httpx.get(server.url + "/v1/activities", params={"where": bad})
    assert answer.status_code == 400
    page, _ = page_factory(server.url)
    page.goto(server.url + "/#/feed?where=" + quote(bad))
    page.wait_for_selector("main .error")
    assert answer.json()["error"] in page.text_content("main .error")
    assert page.errors == []
