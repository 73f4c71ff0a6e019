"""Console speed, measured in the same browser the tests use (Debian's chromium), on a filled store.

    .venv/bin/python -m bench.bench_console [--spans 1000000] [--repeats 5] [--out bench/results/console.json]

What is timed (each a median and max over --repeats fresh browser contexts, caches cold in the page):
- paint: navigation start -> first contentful paint, and -> the shell signed in and ready;
- dashboard: navigation -> the cost chart drawn.  Through GET /v1/reports/spend when the collector
  serves it, else the same question through the SQL page (spend by model per day over 30 days,
  raw spans) -> its table and chart;
- trace: navigation -> the waterfall of a 10,000-span trace drawn (GET /v1/traces/{id} when served,
  else its rows fetched through POST /v1/sql in the page and handed to the same Waterfall);
- interaction on that trace: frame time of 60 scroll steps, a search, collapse-all and expand-all.

The store: bench.queries' fill (the pipeline's own load path for 1M spans, copies beyond) plus one
10k-span trace sent over OTLP/gRPC.  Targets (the brief): paint <= 1 s, trace interactive <= 1 s,
dashboard <= 1 s on 10M spans.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "browser"), str(ROOT / "tests" / "collector")]

SPEND_SQL = ("SELECT toDate(Timestamp) AS day, Model, sum(TotalCost) AS usd FROM spanledger.otel_traces "
             "WHERE Timestamp >= now() - INTERVAL 30 DAY AND Model != '' GROUP BY day, Model ORDER BY day, Model")
TRACE_SQL = ("SELECT SpanId, ParentSpanId, SpanName, toString(Timestamp) AS ts, Duration / 1e6 AS ms, StatusCode, "
             "InputTokens, OutputTokens, toString(TotalCost) FROM spanledger.otel_traces WHERE TraceId = {tid:String}")

TRACE_VIA_SQL = """async ([sql, tid]) => {
  const t0 = performance.now();
  const { api } = await import('/assets/api.js');
  const { Waterfall } = await import('/assets/waterfall.js');
  const result = await api.sql(sql, { tid });
  const fetched = performance.now();
  const spans = result.rows.map(r => ({ span_id: r[0], parent_span_id: r[1], name: r[2], start_time: r[3].replace(' ', 'T') + 'Z',
    duration_ms: r[4], status: r[5] === 'STATUS_CODE_ERROR' ? 'error' : 'ok', input_tokens: r[6], output_tokens: r[7], cost_usd: r[8] }));
  const box = document.createElement('div');
  document.getElementById('view').replaceChildren(box);
  window.__wf = new Waterfall(box, spans, {});
  await new Promise(requestAnimationFrame);
  return { spans: spans.length, fetch_ms: fetched - t0, total_ms: performance.now() - t0 };
}"""

INTERACT = """async () => {
  const wf = window.__wf, box = document.querySelector('.wf');
  const frames = [];
  for (let i = 0; i < 60; i++) {
    const t = performance.now();
    box.scrollTop = (i + 1) * 4000 % (wf.rows.length * 24);
    await new Promise(requestAnimationFrame); await new Promise(requestAnimationFrame);
    frames.push(performance.now() - t);
  }
  let t = performance.now(); wf.search('call-9876'); const search = performance.now() - t;
  t = performance.now(); wf.collapseAll(); const collapse = performance.now() - t;
  t = performance.now(); wf.expandAll(); const expand = performance.now() - t;
  frames.sort((a, b) => a - b);
  return { scroll_p50_ms: frames[30], scroll_max_ms: frames[59], search_ms: search, collapse_all_ms: collapse,
           expand_all_ms: expand, dom_rows: document.querySelectorAll('.wf-row').length };
}"""


def fill(workdir: Path, spans: int) -> dict:
    from bench.queries import fill_and_query_direct
    from bench.references import in_fresh_process

    shutil.rmtree(workdir, ignore_errors=True)
    t0 = time.perf_counter()
    result = in_fresh_process(fill_and_query_direct, str(workdir), spans, 1)
    return {"spans": result["spans"], "fill_s": round(time.perf_counter() - t0, 1)}


def send_big_trace(collector, n: int = 10_000) -> str:
    from collector_support import wait_stored  # noqa: F401  (same polling the tests use)
    from console_support import llm_span, send_spans

    trace, root = os.urandom(16), os.urandom(8)
    base = time.time_ns() - 60 * 10**9
    parents = [os.urandom(8) for _ in range(99)]
    spans = [llm_span("root", trace_id=trace, span_id=root, start_ns=base, duration_ns=50 * 10**9)]
    spans += [llm_span(f"agent-{i}", trace_id=trace, span_id=p, parent=root, start_ns=base + i) for i, p in enumerate(parents)]
    spans += [llm_span(f"call-{i}", trace_id=trace, span_id=os.urandom(8), parent=parents[i % 99], start_ns=base + 1000 + i)
              for i in range(n - 100)]
    for i in range(0, len(spans), 2000):
        send_spans(collector, spans[i:i + 2000])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        got = collector.store().query("SELECT count() FROM spanledger.otel_traces WHERE TraceId = {t:String}",
                                      {"t": trace.hex()}).result_rows[0][0]
        if got >= n:
            return trace.hex()
        time.sleep(0.2)
    raise RuntimeError("the 10k-span trace was not stored within 120 s")


def served(url: str, method: str, path: str) -> bool:
    import httpx

    answer = httpx.request(method, url + path, timeout=30)
    return not (answer.status_code == 404 and "no such endpoint" in answer.text)


def measure(server, trace_id: str, repeats: int) -> dict:
    from console_support import CHROMIUM_ARGS, chromium_path
    from playwright.sync_api import sync_playwright

    has_reports = served(server.url, "GET", "/v1/reports/spend")
    has_traces = served(server.url, "GET", "/v1/traces/" + trace_id)
    samples: dict[str, list[float]] = {}
    interaction = None
    add = lambda key, value: samples.setdefault(key, []).append(round(value, 1))  # noqa: E731
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        for _ in range(repeats):
            ctx = browser.new_context(viewport={"width": 1400, "height": 900})
            page = ctx.new_page()
            page.goto(server.url + "/#/sql")
            page.wait_for_selector("body[data-probed]")
            add("shell_ready_ms", page.evaluate("performance.now()"))
            add("first_contentful_paint_ms", page.evaluate(
                "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1"))
            page.close()
            page = ctx.new_page()
            if has_reports:
                page.goto(server.url + "/#/costs?range=30d")
                page.wait_for_selector("#spend-chart figure")
            else:
                page.goto(server.url + "/#/sql?q=" + quote(SPEND_SQL))
                page.wait_for_selector("#sql-chart figure")
            add("dashboard_ms", page.evaluate("performance.now()"))
            page.close()
            page = ctx.new_page()
            if has_traces:
                page.goto(server.url + "/#/trace/" + trace_id)
                page.wait_for_selector(".wf-row", timeout=60000)
                add("trace_10k_interactive_ms", page.evaluate("performance.now()"))
            else:
                page.goto(server.url + "/#/sql", wait_until="domcontentloaded")  # as the trace view: no wait for the probe
                start = page.evaluate("performance.now()")
                r = page.evaluate(TRACE_VIA_SQL, [TRACE_SQL, trace_id])
                assert r["spans"] >= 10_000, r
                add("trace_10k_interactive_ms", start + r["total_ms"])
                add("trace_10k_fetch_ms", r["fetch_ms"])
                add("trace_10k_render_ms", r["total_ms"] - r["fetch_ms"])
            if interaction is None and page.evaluate("!!window.__wf"):
                interaction = page.evaluate(INTERACT)
            ctx.close()
        browser.close()
    summary = {k: {"median": statistics.median(v), "max": max(v), "samples": v} for k, v in samples.items()}
    return {"dashboard_via": "GET /v1/reports/spend" if has_reports else "SQL page (POST /v1/sql)",
            "trace_via": "GET /v1/traces/{id}" if has_traces else "POST /v1/sql + Waterfall in the page",
            "timings": summary, "interaction_10k": {k: round(v, 1) for k, v in (interaction or {}).items()}}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workdir", default=f"/tmp/spanledger-bench-console-{os.getpid()}")
    parser.add_argument("--out", default="")
    parser.add_argument("--keep", action="store_true", help="keep the filled store in --workdir and reuse it next run")
    args = parser.parse_args(argv)
    from collector_support import start_collector
    from console_support import build_console_app, http_server

    workdir = Path(args.workdir)
    marker = workdir / f"filled-{args.spans}.json"
    if args.keep and marker.exists():
        store = json.loads(marker.read_text())
    else:
        store = fill(workdir / "data", args.spans)
        if args.keep:
            marker.write_text(json.dumps(store))
    collector = start_collector(workdir / "data")
    server = None
    try:
        trace_id = send_big_trace(collector)  # (with --keep, each run adds one more 10k-span trace)
        server = http_server(build_console_app(collector))  # the collector's whole API app on uvicorn
        result = {"store": store, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **measure(server, trace_id, args.repeats)}
    finally:
        if server:
            server.stop()
        collector.stop(timeout_s=30)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
