"""What ``spanledger demo`` prints after the run: plain SQL on the store, rendered for a terminal.

Every number comes from the stored rows (never from the workload's own
bookkeeping), so the report is also a check that the pipeline kept them.
Costs are exact Decimals in the store and rounded here for display only.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from . import render

RUN_FILTER = "ResourceAttributes['spanledger.demo.run'] = {run:String}"


class Report:
    def __init__(self, store, db: str, table: str, run_id: str) -> None:
        self.store, self.db, self.table, self.run_id = store, db, table, run_id
        self.shown_trace: str | None = None

    def rows(self, select: str, tail: str = "", extra_where: str = "", **params: str) -> list[dict]:
        where = RUN_FILTER + (f" AND {extra_where}" if extra_where else "")
        result = self.store.query(f"SELECT {select} FROM {self.db}.{self.table} WHERE {where} {tail}",
                                  {"run": self.run_id, **params})
        return [dict(zip(result.column_names, row)) for row in result.result_rows]

    def render(self) -> str:
        return "\n".join([self.by_model(), self.by_agent(), self.tokens(), self.activities(), self.costliest(),
                          self.tree(), ""])

    # -- sections -----------------------------------------------------------------------
    def by_model(self) -> str:
        rows = self.rows(
            "Provider, Model, count() AS calls, countIf(StatusCode = 'Error') AS failed, sum(InputTokens) AS input, "
            "sum(CacheReadTokens) AS cache_read, sum(CacheWriteTokens) AS cache_write, sum(OutputTokens) AS output, "
            "sum(ReasoningTokens) AS reasoning, sum(TotalCost) AS cost, "
            "arrayStringConcat(arraySort(groupUniqArrayIf(CostSource, CostSource != '')), '+') AS source",
            "GROUP BY Provider, Model ORDER BY cost DESC, calls DESC, Model", "Model != ''")
        body = [[r["Provider"], r["Model"], render.count(r["calls"]), render.count(r["failed"]) if r["failed"] else "",
                 render.count(r["input"]), render.count(r["cache_read"]), render.count(r["cache_write"]),
                 render.count(r["output"]), render.count(r["reasoning"]),
                 "n/a" if r["source"] == "unknown_model" else render.money(r["cost"]), r["source"] or "no usage"]
                for r in rows]
        total = sum((r["cost"] for r in rows), Decimal(0))
        body.append(["", "total", render.count(sum(r["calls"] for r in rows)), "", "", "", "", "", "",
                     render.money(total), ""])
        columns = ["provider", "model", "calls", "failed", "input tok", "cache read", "cache write", "output tok",
                   "reasoning", "cost", "cost source"]
        return render.section("Spend by model", columns, body)

    def by_agent(self) -> str:
        rows = self.rows(
            "AgentName, groupArrayIf(ActivityStatus, Operation = 'invoke_agent') AS outcomes, "
            "countIf(Model != '') AS llm_calls, countIf(Operation = 'execute_tool') AS tool_calls, "
            "countIf(StatusCode = 'Error') AS errors, sum(InputTokens + OutputTokens) AS tokens, "
            "sum(TotalCost) AS cost",
            "GROUP BY AgentName ORDER BY cost DESC, AgentName", "AgentName != ''")
        body = []
        for r in rows:
            outcomes = Counter(r["outcomes"])
            shown = ", ".join(f"{n} {status}" for status, n in sorted(outcomes.items(), key=lambda kv: -kv[1]))
            body.append([r["AgentName"], render.count(len(r["outcomes"])), shown, render.count(r["llm_calls"]),
                         render.count(r["tool_calls"]), render.count(r["errors"]) if r["errors"] else "",
                         render.count(r["tokens"]), render.money(r["cost"])])
        columns = ["agent", "runs", "outcomes", "llm calls", "tool calls", "errors", "tokens", "cost"]
        return render.section("Spend by agent", columns, body)

    def tokens(self) -> str:
        r = self.rows(
            "count() AS spans, uniqExact(TraceId) AS traces, uniqExact(ServiceName) AS services, "
            "countIf(Model != '') AS llm_calls, sum(InputTokens) AS input, sum(CacheReadTokens) AS cache_read, "
            "sum(CacheWriteTokens) AS cache_write, sum(OutputTokens) AS output, sum(ReasoningTokens) AS reasoning, "
            "sum(TotalCost) AS cost, sumIf(TotalCost, CostSource = 'computed') AS computed, "
            "sumIf(TotalCost, CostSource = 'provided') AS provided, countIf(CostSource = 'unknown_model') AS unpriced, "
            "countIf(StatusCode = 'Error') AS errors")[0]
        services = self.rows("ServiceName, count() AS spans, sum(TotalCost) AS cost",
                             "GROUP BY ServiceName ORDER BY ServiceName")
        lines = [
            render.heading("Tokens and cost"),
            f"  input tokens   {render.count(r['input']):>12}   of which cache read {render.count(r['cache_read'])}, "
            f"cache write {render.count(r['cache_write'])}",
            f"  output tokens  {render.count(r['output']):>12}   of which reasoning {render.count(r['reasoning'])}",
            f"  total cost     {render.money(r['cost']):>12}   {render.money(r['computed'])} priced from token counts, "
            f"{render.money(r['provided'])} reported by a gateway; "
            f"{r['unpriced']} call(s) on an unpriced model (no cost, not $0)",
            f"  spans          {render.count(r['spans']):>12}   in {render.count(r['traces'])} traces, "
            f"{render.count(r['llm_calls'])} LLM calls, {render.count(r['errors'])} errors",
        ]
        lines += [f"    service {s['ServiceName']:<18} {render.count(s['spans']):>7} spans  {render.money(s['cost'])}"
                  for s in services]
        return "\n".join(lines)

    def activities(self) -> str:
        rows = self.rows(
            "if(ActivityType != '', ActivityType, concat('otel:', if(Operation != '', Operation, 'span'))) AS kind, "
            "count() AS spans, countIf(StatusCode = 'Error') AS errors, "
            "arrayStringConcat(arraySlice(arraySort(groupUniqArray(SpanName)), 1, 4), ', ') AS examples",
            "GROUP BY kind ORDER BY spans DESC, kind")
        body = [[r["kind"], render.count(r["spans"]), render.count(r["errors"]) if r["errors"] else "",
                 _clip(r["examples"], 70)] for r in rows]
        return render.section("What was recorded", ["activity", "spans", "errors", "e.g."], body)

    def costliest(self) -> str:
        rows = self.rows(
            "TraceId, anyIf(SpanName, ParentSpanId = '') AS root, anyIf(TicketId, TicketId != '') AS ticket, "
            "count() AS spans, countIf(StatusCode = 'Error') AS errors, sum(TotalCost) AS cost, "
            "max(toUnixTimestamp64Nano(Timestamp) + Duration) - min(toUnixTimestamp64Nano(Timestamp)) AS duration",
            "GROUP BY TraceId ORDER BY cost DESC, TraceId LIMIT 5")
        body = [[r["TraceId"], r["root"], r["ticket"], render.count(r["spans"]),
                 render.count(r["errors"]) if r["errors"] else "", render.millis(r["duration"]),
                 render.money(r["cost"])]
                for r in rows]
        columns = ["trace id", "root span", "ticket", "spans", "errors", "duration", "cost"]
        return render.section("The 5 costliest traces", columns, body)

    def tree(self) -> str:
        pick = self.rows("TraceId, countIf(StatusCode = 'Error') AS failed, sum(TotalCost) AS cost",
                         "GROUP BY TraceId ORDER BY failed DESC, cost DESC, TraceId LIMIT 1")
        if not pick:
            return ""
        trace_id = self.shown_trace = pick[0]["TraceId"]
        spans = self.rows(
            "SpanId, ParentSpanId, SpanName, toUnixTimestamp64Nano(Timestamp) AS start, Duration, StatusCode, "
            "StatusMessage, ActivityStatus, Operation, InputTokens, OutputTokens, CacheReadTokens, ReasoningTokens, "
            "TotalCost, TicketId", "ORDER BY Timestamp, SpanId", "TraceId = {trace:String}", trace=trace_id)
        nodes = [render.TreeNode(s["SpanId"], s["ParentSpanId"], _label(s), int(s["start"]), s["StatusCode"] == "Error")
                 for s in spans]
        what = "the trace with the most errors" if pick[0]["failed"] else "the costliest trace"
        ticket = next((s["TicketId"] for s in spans if s["TicketId"]), "")
        title = f"One trace: {what}{f' (ticket {ticket})' if ticket else ''}"
        return f"{render.heading(title)}\n  trace {trace_id} · ✗ = error status\n\n{render.render_tree(nodes)}"


def _label(s: dict) -> str:
    parts = [s["SpanName"]] + ([render.millis(s["Duration"])] if s["Duration"] >= 100_000 else [])
    if s["InputTokens"] or s["OutputTokens"]:
        tok = f"{render.count(s['InputTokens'])} in / {render.count(s['OutputTokens'])} out tok"
        extras = [f"{render.count(s['CacheReadTokens'])} cached"] if s["CacheReadTokens"] else []
        extras += [f"{render.count(s['ReasoningTokens'])} reasoning"] if s["ReasoningTokens"] else []
        parts.append(tok + (f" ({', '.join(extras)})" if extras else ""))
    if s["TotalCost"]:
        parts.append(render.money(s["TotalCost"]))
    if s["Operation"] == "invoke_agent" and s["ActivityStatus"] not in ("", "completed"):
        parts.append(f"[{s['ActivityStatus']}]")
    if s["StatusCode"] == "Error" and s["StatusMessage"]:
        parts.append(_clip(s["StatusMessage"], 60))
    return " · ".join(parts)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
