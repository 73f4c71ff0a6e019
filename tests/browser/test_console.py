"""The console in a real browser against a real collector: it loads with no request off the
collector's origin, shows the deployment's time zone, keeps views in the URL, switches themes,
and its SQL page runs queries and shows refusals.  (Tenancy and XSS: tests/security.)"""

from __future__ import annotations

import os
import time

from console_support import llm_span, screenshot, send_spans, wait_until


def wait_stored(collector, n: int) -> None:
    from collector_support import wait_stored as wait

    wait(collector, n)


def open_console(page, server, hash_: str = "") -> None:
    page.goto(server.url + "/" + hash_)
    page.wait_for_selector("body[data-probed]")


def test_console_loads_without_any_other_host(console, page_factory):
    collector, server = console
    page, guard = page_factory(server.url)
    open_console(page, server, "#/sql")
    page.wait_for_selector("#sql-text")
    # the probe learned the deployment's time zone (extensions.spanledger_api.time_zone) from the API
    page.wait_for_selector("body[data-probed]")
    deployment_tz = collector.config.get("extensions.spanledger_api.time_zone")
    assert page.text_content("#tz") == f"time zone: {deployment_tz}"
    labels = page.eval_on_selector_all("#nav a", "links => links.map(a => a.textContent)")
    assert labels == ["Live feed", "Timelines", "Costs", "Agents", "SQL"]
    assert guard.blocked == []
    assert any(u.endswith("/assets/app.js") for u in guard.urls)
    assert page.errors == []
    screenshot(page, "console-sql-empty")


def test_off_origin_requests_are_stopped_twice(console, page_factory):
    """The console's CSP refuses a foreign fetch in the page, and the test guard fails any that
    gets past it (so the offline test above can fail)."""
    _, server = console
    page, guard = page_factory(server.url)
    open_console(page, server)
    blocked_by_csp = page.evaluate("""() => new Promise(resolve => {
        document.addEventListener('securitypolicyviolation', e => resolve(e.violatedDirective));
        fetch('http://198.51.100.7/x').catch(() => null);
    })""")
    assert blocked_by_csp == "connect-src"
    page.goto("about:blank")  # no CSP here: the guard is what stops it
    page.evaluate("fetch('http://198.51.100.7/y').catch(() => null)")
    page.wait_for_timeout(300)
    assert guard.blocked == ["http://198.51.100.7/y"]


def test_sql_page_runs_a_query_as_table_and_chart(console, page_factory):
    collector, server = console
    trace = os.urandom(16)
    send_spans(collector, [llm_span(f"call-{i}", trace_id=trace, span_id=os.urandom(8), model=m, input_tokens=100 * (i + 1))
                           for i, m in enumerate(["gpt-4o", "gpt-4o", "gpt-4o-mini"])])
    wait_stored(collector, 3)
    page, guard = page_factory(server.url)
    sql = ("SELECT Model, sum(InputTokens) AS input FROM spanledger.otel_traces "
           "WHERE Model != {skip:String} GROUP BY Model ORDER BY Model")
    open_console(page, server, "#/sql")
    page.fill("#sql-text", sql)
    page.fill("#sql-params", '{"skip": "none"}')
    page.click("#sql-run")
    page.wait_for_selector("#sql-table tbody tr")
    rows = page.eval_on_selector_all("#sql-table tbody tr", "trs => trs.map(tr => [...tr.cells].map(td => td.textContent))")
    assert rows == [["gpt-4o", "300"], ["gpt-4o-mini", "300"]]
    assert page.get_attribute("#sql-chart figure", "data-total") == "600"
    # the same question asked of the API directly: the chart shows its total
    import httpx

    answer = httpx.post(server.url + "/v1/sql", json={"query": sql, "parameters": {"skip": "none"}}).json()
    assert sum(int(row[1]) for row in answer["rows"]) == int(page.get_attribute("#sql-chart figure", "data-total"))
    assert page.locator("#sql-chart svg rect").count() == 2
    assert "2 rows in" in page.text_content("#sql-status")
    # the query is in the URL: reopening the address runs it again
    shared = page.url
    assert "q=SELECT" in shared
    page2, _ = page_factory(server.url)
    page2.goto(shared)
    page2.wait_for_selector("#sql-table tbody tr")
    assert page2.locator("#sql-table tbody tr").count() == 2
    assert guard.blocked == []
    screenshot(page, "console-sql-result")


def test_sql_page_shows_a_refused_write(console, page_factory):
    collector, server = console
    page, _ = page_factory(server.url)
    open_console(page, server, "#/sql")
    page.fill("#sql-text", "INSERT INTO spanledger.otel_traces (SpanName) VALUES ('x')")
    page.click("#sql-run")
    page.wait_for_selector("#sql-status.error")
    status = page.text_content("#sql-status")
    assert status.startswith("Refused: ")
    assert len(status) > len("Refused: ") + 10  # the collector's reason, not a bare code
    assert collector.store().query("SELECT count() FROM spanledger.otel_traces").result_rows[0][0] == 0
    page.fill("#sql-params", "not json")
    page.click("#sql-run")
    wait_until(page, "document.getElementById('sql-status').textContent.includes('JSON object')")
    screenshot(page, "console-sql-refused")


def test_theme_toggle_persists_and_range_is_in_the_url(console, page_factory):
    _, server = console
    page, _ = page_factory(server.url)
    open_console(page, server, "#/sql")
    before = page.get_attribute("html", "data-theme")
    page.click("#theme")
    after = page.get_attribute("html", "data-theme")
    assert {before, after} == {"light", "dark"}
    page.select_option("#range", "7d")
    assert "range=7d" in page.url
    page.reload()
    page.wait_for_selector("#nav a")
    assert page.get_attribute("html", "data-theme") == after
    assert page.input_value("#range") == "7d"
    screenshot(page, f"console-theme-{after}")
