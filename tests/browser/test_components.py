"""The console's modules in the browser: every one loads (no syntax or import error can reach
a user), and the charts draw exactly the totals they are given."""

from __future__ import annotations

from console_support import open_console

from spanledger.collector.serve.console.console import asset_index


def open_blank_view(console, page_factory):
    return open_console(page_factory, console[1])[0]


def test_every_module_loads(console, page_factory):
    page = open_blank_view(console, page_factory)
    modules = sorted(name for name in asset_index() if name.endswith(".js"))
    assert "views/feed.js" in modules and "api.js" in modules
    failures = page.evaluate("""async (names) => {
        const failed = [];
        for (const name of names) { try { await import('/assets/' + name); } catch (e) { failed.push(name + ': ' + e); } }
        return failed;
    }""", modules)
    assert failures == []
    assert page.errors == []


def test_stacked_bars_total_and_top_groups(console, page_factory):
    page = open_blank_view(console, page_factory)
    result = page.evaluate("""async () => {
        const { stackedBars } = await import('/assets/charts.js');
        const rows = [];
        for (let g = 0; g < 12; g++) for (const day of ['2026-12-01', '2026-12-02']) rows.push({bucket: day, group: 'm' + g, value: (g + 1) * 0.25});
        const chart = stackedBars(rows, { title: 'spend' });
        document.getElementById('view').replaceChildren(chart);
        return { total: chart.dataset.total, groups: chart.dataset.groups, rects: chart.querySelectorAll('rect').length,
                 legend: [...chart.querySelectorAll('.legend span')].map(s => s.textContent) };
    }""")
    assert float(result["total"]) == sum((g + 1) * 0.25 for g in range(12)) * 2
    assert result["groups"] == "10"  # top nine and 'other'
    assert result["rects"] == 2 * 10
    assert result["legend"][0] == "m11 6" and result["legend"][-1] == "other 3"  # m0..m2: (0.25 + 0.5 + 0.75) * 2 days


def test_api_module_builds_queries_and_flattens_trees(console, page_factory):
    page = open_blank_view(console, page_factory)
    result = page.evaluate("""async () => {
        const { query, normalizeTrace } = await import('/assets/api.js');
        const nested = normalizeTrace({ trace_id: 't', roots: [{ span_id: 'a', name: 'root', children: [{ span_id: 'b', name: 'kid', children: [] }] }] });
        return { q: query({ agent: 'a b', empty: '', none: null, where: "x = '1' AND y" }), nested: nested.spans.map(s => [s.span_id, s.parent_span_id || '']) };
    }""")
    assert result["q"] == "?agent=a+b&where=x+%3D+%271%27+AND+y"
    assert result["nested"] == [["a", ""], ["b", "a"]]


def test_day_ranges_start_on_the_whole_hour_so_reports_can_use_the_rollup(console, page_factory):
    page = open_blank_view(console, page_factory)
    result = page.evaluate("""async () => {
        const { rangeSince } = await import('/assets/format.js');
        const now = Date.parse('2026-12-07T17:42:13.250Z');
        return ['15m', '1h', '24h', '7d', '30d', 'all'].map((r) => rangeSince(r, now));
    }""")
    assert result == ["2026-12-07T17:27:13.250Z", "2026-12-07T16:42:13.250Z", "2026-12-06T17:00:00.000Z",
                      "2026-11-30T17:00:00.000Z", "2026-11-07T17:00:00.000Z", None]
