"""``spanledger activities`` and ``spanledger trace``: through a running collector's API, then on the store directly."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal

from api_support import SPANS_PER_TRACE, llm_cost, send_workload
from collector_support import wait_stored


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spanledger.collector.cli", "--log-level", "warning", *args],
                          capture_output=True, text=True, timeout=120)


def test_activities_and_trace_through_the_api_then_directly(collector):
    sent = send_workload(collector.server.address, 3)
    wait_stored(collector, 3 * SPANS_PER_TRACE)
    data = ["--data-dir", str(collector.data_dir)]
    s = sent[1]

    out = _cli("activities", "--agent", "coder", "--type", "agent_run", "--format", "json", *data)
    assert out.returncode == 0, out.stderr
    assert {a["span_id"] for a in json.loads(out.stdout)["activities"]} == {x["coder"] for x in sent}
    table = _cli("activities", "--where", "type:llm_call", "--limit", "2", *data)
    assert table.returncode == 0 and "gpt-4o" in table.stdout and "(2 rows)" in table.stdout
    cursor = table.stdout.strip().splitlines()[-1].split("--cursor ")[1]
    rest = _cli("activities", "--where", "type:llm_call", "--cursor", cursor, "--format", "csv", *data)
    assert rest.returncode == 0 and len(rest.stdout.splitlines()) == 1 + 6 - 2

    tree = _cli("trace", s["llm2"], *data)  # a span id finds its trace
    assert tree.returncode == 0, tree.stderr
    lines = tree.stdout.splitlines()
    total = llm_cost(1001, 101) + llm_cost(2000, 500)
    assert s["trace"] in lines[0] and "5 spans" in lines[0] and str(total.normalize()) in lines[0]
    planner = next(line for line in lines if s["planner"] in line)
    llm2 = next(line for line in lines if s["llm2"] in line)
    assert not planner.startswith(" ")  # the root
    assert len(llm2) - len(llm2.lstrip()) == 4  # two levels below the root: planner > coder > llm

    collector.stop()
    direct = _cli("trace", s["trace"], "--format", "json", *data)
    assert direct.returncode == 0, direct.stderr
    assert Decimal(json.loads(direct.stdout)["totals"]["cost_usd"]) == total
    listed = _cli("activities", "--user", "user-1", "--format", "json", "--limit", "1000", *data)
    assert len(json.loads(listed.stdout)["activities"]) == SPANS_PER_TRACE  # trace t=1 only
    assert json.loads(_cli("activities", "--where", "type:llm_call", "--cursor", cursor, "--format", "json",
                           *data).stdout)["activities"]  # an API cursor works on the store too


def test_bad_input_gets_a_clear_error(collector):
    data = ["--data-dir", str(collector.data_dir)]
    out = _cli("trace", "not-an-id", *data)
    assert out.returncode == 2 and "neither a trace id" in out.stderr
    out = _cli("trace", "0123456789abcdef0123456789abcdef", *data)
    assert out.returncode == 1 and "no trace" in out.stderr
    out = _cli("activities", "--where", "agent:(", *data)
    assert out.returncode == 1 and "where" in out.stderr
    out = _cli("activities", "--limit", "0", *data)
    assert out.returncode == 2 and "--limit" in out.stderr
