"""`spanledger demo` end to end: a real subprocess, a real collector, then exact facts on its store.

The demo runs once per module (~5 s); the store is opened in this process only
after the demo process has exited (the embedded engine admits one process).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from spanledger.collector.store import Store, StoreConfig
from spanledger.pricing import PriceBook
from spanledger.usage import TokenUsage

T = "spanledger.otel_traces"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    data = tmp_path_factory.mktemp("demo") / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    proc = subprocess.run([sys.executable, "-m", "spanledger.collector.cli", "demo", "--data-dir", str(data)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, f"demo failed:\nSTDOUT:\n{proc.stdout}\nSTDERR:\n{proc.stderr}"
    return data, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def store(demo):
    data, _, _ = demo
    store = Store(StoreConfig(data_dir=Path(data)))
    yield store
    store.close()


def q(store, sql, **params):
    return store.query(sql, params).result_rows


def sent(stdout: str) -> int:
    match = re.search(r"([\d,]+) spans sent", stdout)
    assert match, stdout
    return int(match.group(1).replace(",", ""))


def test_output_has_every_section_real_models_and_a_cost(demo):
    _, out, err = demo
    for section in ("Spend by model", "Spend by agent", "Tokens and cost", "What was recorded",
                    "The 5 costliest traces", "One trace:", "Query it yourself", "spanledger sql"):
        assert section in out
    for model in ("claude-sonnet-4", "claude-3-5-haiku", "gpt-4o-mini", "o4-mini", "o3-mini",
                  "gemini-2.5-pro", "gemini-2.5-flash"):
        assert model in out
    total = Decimal(re.search(r"total cost\s+\$([\d,.]+)", out).group(1).replace(",", ""))
    assert total > 0
    assert "├─" in out and "└─" in out and "✗" in out
    assert "100%" in err  # the progress bar finished (on stderr)
    assert str(demo[0]) in out  # tells the user where the data is


def test_every_span_sent_is_stored_once(demo, store):
    _, out, _ = demo
    n = sent(out)
    assert 200 <= n <= 1000
    assert q(store, f"SELECT count(), uniqExact(TraceId, SpanId) FROM {T}")[0] == (n, n)


def test_every_parent_exists_in_its_trace_and_each_trace_has_one_root(store):
    orphans = q(store, f"""
        SELECT count() FROM {T} AS c
        LEFT ANTI JOIN (SELECT TraceId, SpanId FROM {T}) AS p ON c.TraceId = p.TraceId AND c.ParentSpanId = p.SpanId
        WHERE c.ParentSpanId != ''""")[0][0]
    assert orphans == 0
    assert q(store, f"SELECT countIf(ParentSpanId = ''), uniqExact(TraceId) FROM {T}")[0][0] == \
        q(store, f"SELECT uniqExact(TraceId) FROM {T}")[0][0]
    # durations are simulated, not zero: a ticket's trace lasts minutes
    assert q(store, f"SELECT max(Duration) FROM {T} WHERE SpanName = 'invoke_agent orchestrator'")[0][0] > 60e9


def test_failures_conflicts_and_pauses_are_recorded(store):
    errors = dict(q(store, f"SELECT SpanName, count() FROM {T} WHERE StatusCode = 'Error' GROUP BY SpanName"))
    assert errors.get("invoke_agent coder", 0) >= 1  # the failing agent
    assert errors.get("agent_error", 0) >= 1
    assert errors.get("chat claude-sonnet-4", 0) >= 1  # a rate-limited call
    assert errors.get("project.deployment", 0) >= 1
    statuses = {s for (s,) in q(store, f"SELECT DISTINCT ActivityStatus FROM {T} WHERE Operation = 'invoke_agent'")}
    assert {"completed", "failed", "paused", "conflict"} <= statuses
    crashed = q(store, f"SELECT StatusMessage, SpanAttributes['error.type'] FROM {T} "
                       "WHERE SpanName = 'invoke_agent coder' AND StatusCode = 'Error'")
    assert "SandboxCrashed" in crashed[0][0] and crashed[0][1].endswith("SandboxCrashed")


def test_reasoning_and_cache_tokens_where_the_models_report_them(store):
    rows = {m: (cr, cw, rs) for m, cr, cw, rs in q(store, f"""
        SELECT Model, sum(CacheReadTokens), sum(CacheWriteTokens), sum(ReasoningTokens)
        FROM {T} WHERE Model != '' GROUP BY Model""")}
    for model in ("o4-mini-2025-04-16", "o3-mini-2025-01-31", "gemini-2.5-pro", "gemini-2.5-flash"):
        assert rows[model][2] > 0, model
    for model in ("claude-sonnet-4-20250514", "claude-3-5-haiku-20241022", "gpt-4o-mini-2024-07-18", "gemini-2.5-pro"):
        assert rows[model][0] > 0, model
    assert rows["claude-sonnet-4-20250514"][1] > 0  # cache creation
    assert rows["claude-sonnet-4-20250514"][2] == 0
    # parts never exceed their whole
    assert q(store, f"SELECT count() FROM {T} WHERE CacheReadTokens + CacheWriteTokens > InputTokens "
                    "OR ReasoningTokens > OutputTokens")[0][0] == 0


def test_costs_equal_what_the_price_book_computes(store):
    book = PriceBook()
    rows = q(store, f"""
        SELECT Provider, Model, InputTokens, OutputTokens, CacheReadTokens, CacheWriteTokens, ReasoningTokens,
               InputCost, OutputCost, TotalCost, CostSource, ServiceName
        FROM {T} WHERE Model != '' AND InputTokens + OutputTokens > 0""")
    sources = {r[10] for r in rows}
    assert sources == {"computed", "provided", "unknown_model"}
    checked = 0
    for provider, model, i, o, cr, cw, rs, in_cost, out_cost, total, source, service in rows:
        if source == "computed":
            cost = book.cost(provider, model, TokenUsage(i, o, cr, cw, rs))
            assert cost is not None, (provider, model)
            assert (in_cost, out_cost, total) == (cost.input_usd, cost.output_usd, cost.total_usd), (model, service)
            checked += 1
        elif source == "provided":
            assert model == "mistral-large-2411" and total == Decimal("0.003120")
        else:
            assert model == "acme-coder-ft-2" and total == 0
    assert checked >= 50
    # spans from the plain OTel SDK were normalized and priced by the collector itself
    foreign = q(store, f"SELECT Provider, Model, CacheReadTokens, CostSource FROM {T} "
                       "WHERE ServiceName = 'docs-rag-service' AND Model != '' ORDER BY Model")
    assert [(p, m, c) for p, m, c, _ in foreign] == [
        ("anthropic", "claude-3-5-haiku-20241022", 4096), ("openai", "gpt-4o-2024-08-06", 0),
        ("openai", "gpt-4o-mini-2024-07-18", 1024)]
    assert {s for *_, s in foreign} == {"computed"}


def test_the_hourly_rollup_agrees_with_the_spans_and_the_printed_total(demo, store):
    raw = q(store, f"SELECT count(), sum(InputTokens), sum(OutputTokens), sum(TotalCost) FROM {T}")[0]
    rollup = q(store, "SELECT sum(Spans), sum(InputTokens), sum(OutputTokens), sum(TotalCost) "
                      "FROM spanledger.spanledger_usage_hourly")[0]
    assert tuple(raw) == tuple(rollup)
    printed = Decimal(re.search(r"total cost\s+\$([\d,.]+)", demo[1]).group(1).replace(",", ""))
    assert printed == raw[3].quantize(Decimal("0.0001"))


def test_the_seeds_activities_are_all_there(store):
    kinds = dict(q(store, f"SELECT ActivityType, count() FROM {T} GROUP BY ActivityType"))
    for kind in ("ticket_operation", "agent_run", "agent_turn", "agent_reasoning", "tool_call", "llm_call",
                 "agent_started", "agent_progress", "agent_error", "agent_paused", "agent_conflict_detected",
                 "project_action", "conversation", "product_event"):
        assert kinds.get(kind, 0) > 0, kind
    actions = {a for (a,) in q(store, f"SELECT DISTINCT SpanAttributes['spanledger.project.action'] FROM {T} "
                                      "WHERE ActivityType = 'project_action'")}
    assert {"project_created", "database_created", "endpoints_added", "deployment", "github_push"} <= actions
    mcp = q(store, f"SELECT count() FROM {T} WHERE ToolName != '' AND SpanAttributes['spanledger.mcp.server'] != ''")
    assert mcp[0][0] > 0
    # conversation activities are numbered 1, 2, 3... in order within each conversation
    for conv, seqs in q(store, f"""
            SELECT ConversationId, arrayMap(x -> toUInt32(x.2), arraySort(groupArray((Timestamp,
                   SpanAttributes['spanledger.conversation.sequence']))))
            FROM {T} WHERE ActivityType = 'conversation' GROUP BY ConversationId"""):
        assert seqs == list(range(1, len(seqs) + 1)), conv
    first = q(store, f"SELECT SpanAttributes['spanledger.conversation.activity'] FROM {T} "
                     "WHERE ActivityType = 'conversation' ORDER BY Timestamp LIMIT 4")
    assert [a for (a,) in first] == ["user_message", "mcp_tool_call", "mcp_tool_response", "assistant_response"]


def _documented_queries() -> list[tuple[str, str]]:
    import re

    text = (Path(__file__).resolve().parents[2] / "docs" / "queries.md").read_text()
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    return [(s.splitlines()[0], sql) for s in sections for sql in re.findall(r"```sql\n(.*?)```", s, flags=re.S)]


def test_every_documented_query_runs_and_answers(store):
    trace_id = q(store, "SELECT TraceId FROM spanledger.otel_traces GROUP BY TraceId ORDER BY count() DESC LIMIT 1")[0][0]
    conversation = q(store, "SELECT ConversationId FROM spanledger.otel_traces WHERE ConversationId != '' "
                            "AND SpanAttributes['spanledger.conversation.sequence'] != '' LIMIT 1")[0][0]
    params = {"trace_id": trace_id, "conversation_id": conversation, "daily_limit": "1.0",
              "user": "nobody", "project": "nothing"}
    queries = _documented_queries()
    assert len(queries) >= 10
    for title, sql in queries:
        used = {k: v for k, v in params.items() if "{" + k + ":" in sql}
        result = store.query(sql, used).result_rows
        assert result, f"the documented query '{title}' returned nothing on the demo's data"
