"""The official JavaScript OTLP/HTTP exporter (npm @opentelemetry/exporter-trace-otlp-http, JSON bodies) under
Node.js, into the OTLP/HTTP receiver, checked in the store.

The npm packages are installed once into a cache directory (SPANLEDGER_NODE_CACHE, default
~/.cache/spanledger/node-otlp-http); the test skips only when node or npm is missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from collector_support import FAST_BATCH, rows, wait_stored
from otlp_http_support import start_http_collector, traces_url

PACKAGES = ("@opentelemetry/exporter-trace-otlp-http@0", "@opentelemetry/sdk-trace-base@2",
            "@opentelemetry/resources@2", "@opentelemetry/api@1")
TOKEN = "node-operator-token-0123456789"
SCRIPT = r"""
const api = require('@opentelemetry/api');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
const { resourceFromAttributes } = require('@opentelemetry/resources');

(async () => {
  const exporter = new OTLPTraceExporter({ url: process.env.OTLP_URL,
                                           headers: { authorization: 'Bearer ' + process.env.OTLP_TOKEN } });
  const provider = new BasicTracerProvider({ resource: resourceFromAttributes({ 'service.name': 'node-http' }),
                                             spanProcessors: [new BatchSpanProcessor(exporter)] });
  const tracer = provider.getTracer('node-test');
  const parent = tracer.startSpan('node-parent', { kind: api.SpanKind.SERVER });
  const ctx = api.trace.setSpan(api.context.active(), parent);
  for (let i = 0; i < 4; i++) {
    const child = tracer.startSpan('node-child-' + i, { kind: api.SpanKind.CLIENT, attributes: {
      'gen_ai.request.model': 'gpt-4o', 'gen_ai.provider.name': 'openai', 'gen_ai.usage.input_tokens': 100 + i,
      'gen_ai.usage.output_tokens': 7 } }, ctx);
    child.end();
  }
  parent.end();
  await provider.forceFlush();
  await provider.shutdown();
  console.log(JSON.stringify({ traceId: parent.spanContext().traceId, parentId: parent.spanContext().spanId }));
})().catch((err) => { console.error(err); process.exit(1); });
"""


@pytest.fixture(scope="module")
def node_modules() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node and npm are needed to run the official JavaScript OTLP/HTTP exporter")
    cache = Path(os.environ.get("SPANLEDGER_NODE_CACHE", Path.home() / ".cache" / "spanledger" / "node-otlp-http"))
    cache.mkdir(parents=True, exist_ok=True)
    marker = cache / ("installed-" + "-".join(p.replace("/", "_") for p in PACKAGES))
    if not marker.exists():
        result = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(cache),
                                 *PACKAGES], capture_output=True, timeout=600)
        assert result.returncode == 0, f"npm install failed: {result.stderr.decode()[-2000:]}"
        marker.touch()
    return cache


def test_official_js_http_exporter_spans_are_stored(node_modules, tmp_path):
    config = FAST_BATCH + f"""receivers:
  otlp:
    protocols:
      http: {{auth: {{authenticator: bearertokenauth}}}}
extensions:
  bearertokenauth: {{tokens: ["{TOKEN}"]}}
"""
    collector = start_http_collector(tmp_path / "data", config)
    try:
        script = tmp_path / "send.js"
        script.write_text(SCRIPT)
        env = {**os.environ, "OTLP_URL": traces_url(collector), "OTLP_TOKEN": TOKEN,
               "NODE_PATH": str(node_modules / "node_modules")}
        result = subprocess.run(["node", str(script)], capture_output=True, timeout=120, env=env)
        assert result.returncode == 0, result.stderr.decode()
        sent = json.loads(result.stdout.decode().strip().splitlines()[-1])
        wait_stored(collector, 5)
        found = rows(collector, "SELECT SpanName, TraceId, ParentSpanId, SpanKind, ServiceName, Model, InputTokens "
                                "FROM spanledger.otel_traces ORDER BY SpanName")
        assert [r["SpanName"] for r in found] == [f"node-child-{i}" for i in range(4)] + ["node-parent"]
        assert {r["TraceId"] for r in found} == {sent["traceId"]}
        assert {r["ParentSpanId"] for r in found[:4]} == {sent["parentId"]}
        assert {r["ServiceName"] for r in found} == {"node-http"}
        assert [r["SpanKind"] for r in found] == ["Client"] * 4 + ["Server"]
        assert [r["InputTokens"] for r in found[:4]] == [100, 101, 102, 103]
        assert {r["Model"] for r in found[:4]} == {"gpt-4o"}
        assert collector.metrics.requests.labels("http", "ok")._value.get() >= 1
    finally:
        collector.stop(timeout_s=10)
