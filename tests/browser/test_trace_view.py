"""The trace view: a virtualized waterfall/tree that stays fast on a 10,000-span trace.

The component tests drive the real module (/assets/waterfall.js) in the browser with trees built
in the page; the end-to-end test opens a 10k-span trace sent over OTLP to a real collector."""

from __future__ import annotations

import os
import time

from console_support import llm_span, screenshot, send_spans, wait_until

BUILD_TREE = """
({fanout, depth}) => {
  // fanout^depth spans below one root, start times increasing, every 97th an error
  const spans = [{span_id: 'r', parent_span_id: '', name: 'root', start_time: new Date(0).toISOString(), duration_ms: 100000,
                  input_tokens: 1, output_tokens: 0, cost_usd: '0.5'}];
  let level = ['r'], n = 0;
  for (let d = 0; d < depth; d++) {
    const next = [];
    for (const parent of level) for (let i = 0; i < fanout; i++) {
      n++;
      const id = 's' + n;
      spans.push({span_id: id, parent_span_id: parent, name: 'span-' + n, start_time: new Date(n).toISOString(), duration_ms: 5,
                  input_tokens: 10, output_tokens: 5, cost_usd: '0.001', status: n % 97 === 0 ? 'error' : 'ok'});
      next.push(id);
    }
    level = next;
  }
  return spans;
}
"""

MOUNT = """
async (spans) => {
  const { Waterfall } = await import('/assets/waterfall.js');
  const box = document.createElement('div');
  box.id = 'wf-test';
  document.getElementById('view').replaceChildren(box);
  const t0 = performance.now();
  window.__wf = new Waterfall(box, spans, {});
  await new Promise(requestAnimationFrame);
  return performance.now() - t0;
}
"""


def mount(page, fanout: int, depth: int) -> float:
    spans = page.evaluate(BUILD_TREE, {"fanout": fanout, "depth": depth})
    return page.evaluate(MOUNT, spans)


def row_names(page) -> list[str]:
    return page.eval_on_selector_all(".wf-row .wf-name", "els => els.map(e => e.title)")


def test_waterfall_renders_only_visible_rows_of_10k_spans(console, page_factory):
    _, server = console
    page, _ = page_factory(server.url)
    page.goto(server.url + "/#/sql")
    page.wait_for_selector("#nav a")
    build_ms = mount(page, 100, 2)  # 1 + 100 + 10,000 spans
    rows = page.locator(".wf-row").count()
    assert 0 < rows < 100, f"{rows} rows in the DOM for 10,101 spans: not virtualized"
    assert page.evaluate("window.__wf.rows.length") == 10101
    print(f"10,101-span waterfall built and painted in {build_ms:.0f} ms")
    # subtree sums computed once: root = its own 0.5 + 10,100 * 0.001
    assert abs(page.evaluate("window.__wf.tree.roots[0].subCost") - (0.5 + 10100 * 0.001)) < 1e-9
    assert page.evaluate("window.__wf.tree.roots[0].subTokens") == 1 + 10100 * 15
    assert page.evaluate("window.__wf.tree.roots[0].subErrors") == 10100 // 97
    # scroll to the end: the last span is drawn, the DOM stays small
    page.evaluate("document.querySelector('.wf').scrollTop = 1e9")
    wait_until(page, "[...document.querySelectorAll('.wf-row .wf-name')].some(e => e.title === 'span-10100')")
    assert page.locator(".wf-row").count() < 100
    assert page.locator(".wf-row.err").count() >= 1  # errors marked where they are
    screenshot(page, "trace-waterfall-10k-bottom")


def test_waterfall_collapse_expand_and_search(console, page_factory):
    _, server = console
    page, _ = page_factory(server.url)
    page.goto(server.url + "/#/sql")
    page.wait_for_selector("#nav a")
    mount(page, 100, 2)
    # collapse the first child of the root: its 100 children leave the visible list
    page.click(".wf-row[data-span-id='s1'] .wf-toggle")
    assert page.evaluate("window.__wf.rows.length") == 10101 - 100
    assert "(100 hidden)" in page.text_content(".wf-row[data-span-id='s1']")
    page.click(".wf-row[data-span-id='s1'] .wf-toggle")
    assert page.evaluate("window.__wf.rows.length") == 10101
    page.evaluate("window.__wf.collapseAll()")
    assert page.evaluate("window.__wf.rows.length") == 101
    # search opens the ancestors of a match deep in a collapsed subtree and scrolls to it
    assert page.evaluate("window.__wf.search('span-9999')") == 1
    page.wait_for_selector(".wf-row.match")
    assert page.get_attribute(".wf-row.match", "data-span-id") == "s9999"
    assert page.evaluate("window.__wf.search('no-such-span')") == 0
    page.evaluate("window.__wf.expandAll()")
    assert page.evaluate("window.__wf.rows.length") == 10101


def test_waterfall_survives_a_deep_chain_and_orphans(console, page_factory):
    """Agents calling agents make chains thousands deep; spans whose parent is missing are roots."""
    _, server = console
    page, _ = page_factory(server.url)
    page.goto(server.url + "/#/sql")
    page.wait_for_selector("#nav a")
    spans = [{"span_id": f"c{i}", "parent_span_id": f"c{i - 1}" if i else "", "name": f"level-{i}",
              "start_time": "2026-01-01T00:00:00Z", "duration_ms": 1} for i in range(5000)]
    spans.append({"span_id": "orphan", "parent_span_id": "not-in-trace", "name": "orphan",
                  "start_time": "2026-01-01T00:00:00Z", "duration_ms": 1})
    page.evaluate(MOUNT, spans)
    assert page.evaluate("window.__wf.rows.length") == 5001
    assert page.evaluate("window.__wf.tree.roots.length") == 2
    assert page.evaluate("window.__wf.tree.roots[0].subCount") == 5000


def test_a_10k_span_trace_opens_and_scrolls(console, page_factory):
    collector, server = console
    trace = os.urandom(16)
    root = os.urandom(8)
    base = time.time_ns() - 60_000_000_000
    spans = [llm_span("root", trace_id=trace, span_id=root, start_ns=base, duration_ns=50_000_000_000)]
    parents = [os.urandom(8) for _ in range(99)]
    spans += [llm_span(f"agent-{i}", trace_id=trace, span_id=p, parent=root, start_ns=base + i) for i, p in enumerate(parents)]
    for i in range(9900):
        spans.append(llm_span(f"call-{i}", trace_id=trace, span_id=os.urandom(8), parent=parents[i % 99], start_ns=base + 1000 + i,
                              error=(i == 4321)))
    for chunk in range(0, len(spans), 2000):
        send_spans(collector, spans[chunk:chunk + 2000])
    from collector_support import wait_stored

    wait_stored(collector, 10_000)
    page, guard = page_factory(server.url)
    started = time.perf_counter()
    page.goto(server.url + "/#/trace/" + trace.hex())
    page.wait_for_selector(".wf-row")
    interactive_s = time.perf_counter() - started
    print(f"10k-span trace interactive after {interactive_s * 1000:.0f} ms (incl. API)")
    assert page.text_content("#trace-spans b") == "10,000"
    stored_tokens = collector.store().query(
        "SELECT sum(InputTokens + OutputTokens) FROM spanledger.otel_traces WHERE TraceId = {t:String}", {"t": trace.hex()}).result_rows[0][0]
    assert page.text_content("#trace-tokens b") == f"{stored_tokens:,}"
    assert page.text_content("#trace-errors b") == "1"
    assert page.locator(".wf-row").count() < 100
    page.evaluate("document.querySelector('.wf').scrollTop = 1e9")
    page.wait_for_timeout(100)
    assert page.locator(".wf-row").count() < 100
    page.fill("#trace-search", "call-4321")
    page.press("#trace-search", "Enter")
    page.wait_for_selector(".wf-row.match.err")
    assert guard.blocked == []
    screenshot(page, "trace-10k")
