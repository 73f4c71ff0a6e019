"""``spanledger report`` through a running collector's API, and directly on its data dir once it stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal

from reports_support import OPERATOR, TOKENS, expected_spend, fill


def cli(*args, token=None):
    env = {**os.environ}
    env.pop("SPANLEDGER_TOKEN", None)
    if token:
        env["SPANLEDGER_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "spanledger.collector.cli", "report", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_report_command_through_the_api_then_on_the_data_dir(tmp_path):
    collector, sent = fill(tmp_path / "store")
    data_dir = str(tmp_path / "store")
    try:
        want = expected_spend([c for c in sent.calls if c.tenant == "acme"], lambda c: c.model)
        out = cli("spend", "--data-dir", data_dir, "--group-by", "model", "--bucket", "none", "--format", "json",
                  token=TOKENS["acme"])
        assert out.returncode == 0, out.stderr
        body = json.loads(out.stdout)
        got = {r[0]: Decimal(r[body["columns"].index("usd")]) for r in body["rows"]}
        assert got == {m: w["usd"] for m, w in want.items()}
        assert body["source"] == "spanledger.spanledger_usage_hourly"

        out = cli("conversation", "--data-dir", data_dir, "--id", "conv-1", token=OPERATOR)
        assert out.returncode == 0, out.stderr
        assert "source spanledger.otel_traces" in out.stdout and "mcp_tool_response" in out.stdout

        out = cli("spend", "--data-dir", data_dir, "--group-by", "colour", token=OPERATOR)
        assert out.returncode == 1 and "group_by: 'colour' is not one of" in out.stderr
    finally:
        collector.stop()

    out = cli("top", "--data-dir", data_dir, "--key", "user", "--format", "csv")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("user,value,usd")
    everyone = expected_spend(sent.calls, lambda c: c.user)
    assert {line.split(",")[0]: Decimal(line.split(",")[1]) for line in lines[1:]} == \
        {u: w["usd"] for u, w in everyone.items()}

    out = cli("list")
    assert out.returncode == 0 and "analytics_summary" in out.stdout
