"""Every Grafana dashboard query runs against a filled store.

Grafana's macros are replaced with concrete values the way the ClickHouse data source expands them
($__timeFilter(c) -> c >= toDateTime(from) AND c <= toDateTime(to); $__timeInterval(c) ->
toStartOfInterval(toDateTime(c), INTERVAL n second); ${var:singlequote} -> 'a','b')."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
import yaml
from collector_support import RawClient, make_span, new_request, rows, wait_stored

GRAFANA = Path(__file__).resolve().parents[2] / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


def expand(sql: str, start_s: int, end_s: int, variables: dict[str, list[str]], interval_s: int = 3600) -> str:
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)",
                 lambda m: f"{m[1]} >= toDateTime({start_s}) AND {m[1]} <= toDateTime({end_s})", sql)
    sql = re.sub(r"\$__timeInterval\(([^)]+)\)",
                 lambda m: f"toStartOfInterval(toDateTime({m[1]}), INTERVAL {interval_s} second)", sql)
    for name, values in variables.items():
        sql = sql.replace(f"${{{name}:singlequote}}", ",".join("'" + v.replace("'", "\\'") + "'" for v in values))
        sql = sql.replace(f"${{{name}}}", values[0])
    assert "$" not in sql, f"a macro or variable the test does not expand: {sql}"
    return sql


def panels():
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                yield pytest.param(dashboard, panel, target["rawSql"], id=f"{path.stem}:{panel['title']}")


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    from collector_support import start_collector

    collector = start_collector(tmp_path_factory.mktemp("grafana"))
    client = RawClient(collector.server.address)
    now = time.time_ns()
    sent = 0
    for t in range(4):
        request, scope = new_request("support-bot" if t % 2 else "planner-svc")
        trace_id = os.urandom(16)
        root = make_span(scope, "invoke_agent", trace_id=trace_id, start_ns=now - 3600 * 10**9,
                         attributes={"gen_ai.agent.name": "planner", "gen_ai.operation.name": "invoke_agent"})
        llm = make_span(scope, "chat gpt-4o", trace_id=trace_id, parent=root.span_id, start_ns=now - 3000 * 10**9,
                        duration_ns=(t + 1) * 200_000_000, attributes={
                            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                            "gen_ai.request.model": "gpt-4o", "gen_ai.agent.name": "planner", "user.id": f"user-{t}",
                            "gen_ai.usage.input_tokens": 10_000, "gen_ai.usage.output_tokens": 500,
                            "gen_ai.usage.cache_read.input_tokens": 6_000})
        if t == 3:
            llm.status.code, llm.status.message = 2, "upstream timeout"
        client.export(request.SerializeToString())
        sent += 2
    client.close()
    wait_stored(collector, sent)
    yield collector
    collector.stop(timeout_s=10)


def test_dashboards_exist_and_use_the_provisioned_data_source():
    datasource = yaml.safe_load((GRAFANA / "provisioning/datasources/spanledger-clickhouse.yaml").read_text())
    source = datasource["datasources"][0]
    assert source["type"] == "grafana-clickhouse-datasource"
    assert source["jsonData"]["traces"] == {"defaultDatabase": "spanledger", "defaultTable": "otel_traces",
                                            "otelEnabled": True, "otelVersion": "latest", "durationUnit": "nanoseconds"}
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/spanledger.yaml").read_text())
    assert provider["providers"][0]["type"] == "file"
    assert len(DASHBOARDS) >= 2
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] and dashboard["panels"]
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == source["uid"]


@pytest.mark.parametrize("dashboard, panel, sql", list(panels()))
def test_every_panel_query_runs_and_returns_rows(filled, dashboard, panel, sql):
    now = int(time.time())
    variables = {"service": ["support-bot", "planner-svc"], "monthly_budget_usd": ["250"]}
    found = rows(filled, expand(sql, now - 7 * 86400, now + 60, variables))
    assert found, f"{panel['title']} returned no rows on a filled store"
    if panel["title"] == "Cache savings by model (USD)":
        assert found[0]["model"] == "gpt-4o" and float(found[0]["saved_usd"]) > 0
    if panel["title"] == "Month-to-date spend vs budget":
        assert float(found[0]["spent_usd"]) > 0 and float(found[0]["budget_usd"]) == 250


@pytest.mark.parametrize("dashboard", [json.loads(p.read_text()) for p in DASHBOARDS], ids=[p.stem for p in DASHBOARDS])
def test_variable_queries_run(filled, dashboard):
    now = int(time.time())
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            assert rows(filled, expand(variable["query"], now - 86400, now + 60, {}))


def test_cache_savings_panel_agrees_with_the_reports(filled):
    """The panel writes the saving formula again in SQL (Grafana wants literal SQL, it cannot call
    collector/query/reports/rates.py): at the collector's own prices both must give the same money."""
    from decimal import Decimal

    from spanledger.collector.query.reports.rates import saving_rates

    dashboard = json.loads((GRAFANA / "dashboards/spanledger-spend.json").read_text())
    (sql,) = [t["rawSql"] for p in dashboard["panels"] if p["title"] == "Cache savings by model (USD)" for t in p["targets"]]
    now = int(time.time())
    (found,) = rows(filled, expand(sql, now - 7 * 86400, now + 60, {}))
    rate = saving_rates(filled.price_book, [("openai", "gpt-4o")])[("openai", "gpt-4o")]
    assert found["cache_read_tokens"] == 4 * 6_000
    assert rate > 0 and Decimal(str(found["saved_usd"])) == rate * found["cache_read_tokens"]
