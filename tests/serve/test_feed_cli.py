"""`spanledger feed` and `spanledger budget` against a real collector's API (real uvicorn) and offline."""

from __future__ import annotations

import json
import threading
import time

import pytest
from feed_support import collector_factory  # noqa: F401 - the fixture
from feed_support import ACME, OPERATOR, TENANT_CONFIG, SpanSender, feed_app, serving

from spanledger.collector.cli import main

pytestmark = pytest.mark.timeout(120)

BUDGETS = TENANT_CONFIG + """
  spanledger_budgets:
    budgets:
      - {name: acme-day, scope: {tenant: acme}, limit_usd: "2.00", window: day}
"""


def test_feed_follows_with_filters_and_stops_after_count(collector_factory, capsys, monkeypatch):
    collector = collector_factory(TENANT_CONFIG)
    monkeypatch.setenv("SPANLEDGER_TOKEN", OPERATOR)
    result = {}
    with serving(feed_app(collector)) as url:
        follower = threading.Thread(target=lambda: result.update(rc=main(
            ["feed", "--api-url", url, "--agent", "planner", "--count", "2", "--format", "json"])))
        follower.start()
        deadline = time.monotonic() + 20
        while collector.feed.subscriber_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        sender = SpanSender(collector)
        for agent in ("coder", "planner", "coder", "planner", "planner"):
            sender.llm_call(agent=agent, cost="0.5")
        sender.flush()
        sender.close()
        follower.join(30)
    assert result.get("rc") == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [a["agent"] for a in lines] == ["planner", "planner"] and lines[0]["cost_usd"] == "0.5"


def test_feed_without_a_collector_says_what_it_needs(tmp_path, capsys):
    assert main(["feed", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "no collector is running" in err and "spanledger collector" in err


def test_feed_reports_a_refused_filter(collector_factory, capsys, monkeypatch):
    collector = collector_factory(TENANT_CONFIG)
    monkeypatch.setenv("SPANLEDGER_TOKEN", ACME)
    with serving(feed_app(collector)) as url:
        assert main(["feed", "--api-url", url, "--tenant", "globex"]) == 2
    assert "needs an operator token" in capsys.readouterr().err


def test_budget_through_the_api_and_offline(collector_factory, tmp_path, capsys, monkeypatch):
    config_file = tmp_path / "otel-config.yaml"
    config_file.write_text(BUDGETS)
    data_dir = tmp_path / "data"
    collector = collector_factory(BUDGETS, data_dir=data_dir)
    sender = SpanSender(collector, token=ACME)
    sender.llm_call(cost="0.5")
    sender.flush()
    sender.close()
    from collector_support import wait_stored

    wait_stored(collector, 1)
    monkeypatch.setenv("SPANLEDGER_TOKEN", ACME)
    with serving(feed_app(collector)) as url:
        assert main(["budget", "--api-url", url, "--format", "json"]) == 0
    through_api = json.loads(capsys.readouterr().out)
    assert [(b["name"], b["spent_usd"], b["percent"]) for b in through_api["budgets"]] == [("acme-day", "0.5", 25.0)]
    collector.stop(timeout_s=10)
    assert main(["budget", "--config", str(config_file), "--data-dir", str(data_dir)]) == 0
    table = capsys.readouterr().out
    assert "acme-day" in table and "25.0%" in table and "0.5" in table and "projected" in table
