"""Realistic OTLP trace requests, serialized once and re-stamped cheaply.

Why: the Python SDK encodes ~11k spans/s per process (MEASURED.md), far below
what the collector must take, so the load generator cannot build spans as it
sends.  Instead a small pool of ExportTraceServiceRequest *templates* is built
here once (agent sessions -> turns -> LLM / tool / MCP calls, several models and
providers, three instrumentation dialects, prompts, events, cached and reasoning
tokens, errors), serialized, and the byte offsets of every id and timestamp are
recorded.  Each request actually sent is a copy of a template whose ids get a
fresh 8-byte (trace) / 4-byte (span) prefix and whose timestamps may be
shifted: a numpy scatter over a 1 MB buffer, ~1 ms, no protobuf re-encoding.

Ids: trace id = 8-byte copy stamp + 8 template bytes; span id = 4-byte copy
stamp + a 4-byte index unique within the template.  So every copy has ids no
other copy has, and parent/child and link references stay consistent.
"""

from __future__ import annotations

import json
import random
import struct
import time
from dataclasses import dataclass

import numpy as np
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from spanledger.collector.wal import read_varint  # the WAL reads OTLP framing the same way

# (provider as gen_ai.provider.name, model, reasoning?, caches?)
MODELS = [
    ("openai", "gpt-4o", False, True),
    ("openai", "gpt-4o-mini", False, True),
    ("openai", "gpt-4.1", False, True),
    ("openai", "o3-mini", True, True),
    ("anthropic", "claude-sonnet-4-20250514", False, True),
    ("anthropic", "claude-3-5-haiku-20241022", False, True),
    ("gcp.gemini", "gemini-2.5-pro", True, True),
    ("gcp.gemini", "gemini-2.0-flash", False, False),
    ("acme", "acme-internal-llm-7b", False, False),  # no price known: exercises 'unknown_model'
]
MODEL_WEIGHTS = [20, 25, 8, 6, 15, 10, 6, 9, 1]
AGENTS = ["orchestrator", "planner", "coder", "reviewer", "researcher", "support-triage", "billing-agent", "qa-tester"]
TOOLS = ["web_search", "read_file", "write_file", "run_tests", "sql_query", "send_email", "create_ticket", "calculator"]
MCP_SERVERS = {"github": ["list_issues", "create_pr", "get_file"], "jira": ["search", "transition"], "slack": ["post_message"]}
# service.name -> instrumentation dialect, content capture on?
SERVICES = {
    "support-bot": ("spanledger", True),
    "code-agent": ("spanledger", False),
    "research-agent": ("openinference", True),
    "sales-assistant": ("openllmetry", False),
}
WORDS = (
    "customer invoice refund order shipment delayed account password reset migrate database schema index "
    "query latency regression test failing build pipeline deploy rollback feature flag pricing plan upgrade "
    "summarize document contract clause review pull request function refactor memory leak timeout retry "
    "the a of to and for with on in please can you explain why how what when should we need"
).split()
ERRORS = [("RateLimitError", "429 Too Many Requests: rate limit reached"), ("TimeoutError", "request timed out after 60s"),
          ("APIConnectionError", "connection reset by peer"), ("ToolError", "tool returned a non-zero exit status")]

KIND_INTERNAL, KIND_CLIENT = 1, 3


def _value(v) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, (list, tuple)):
        return AnyValue(array_value=ArrayValue(values=[_value(x) for x in v]))
    return AnyValue(string_value=str(v))


def _attrs(d: dict) -> list[KeyValue]:
    return [KeyValue(key=k, value=_value(v)) for k, v in d.items() if v is not None]


@dataclass
class _Ctx:
    rng: random.Random
    dialect: str
    content: bool
    next_span: int = 0


class _TraceBuilder:
    """Builds one agent session as a list of Span messages (same trace id)."""

    def __init__(self, ctx: _Ctx, trace_id: bytes, start_ns: int, budget: int):
        self.ctx, self.rng, self.trace_id, self.budget = ctx, ctx.rng, trace_id, budget
        self.spans: list[Span] = []
        self.t = start_ns
        self.user = f"user-{self.rng.randrange(500):04d}"
        self.project = f"proj-{self.rng.randrange(40):03d}"
        self.session = f"sess-{self.rng.getrandbits(48):012x}"
        self.env = self.rng.choice(["prod", "prod", "prod", "staging"])

    def _span_id(self) -> bytes:
        self.ctx.next_span += 1
        return b"\0\0\0\0" + struct.pack(">I", self.ctx.next_span)

    def _sentence(self, n: int) -> str:
        return " ".join(self.rng.choice(WORDS) for _ in range(n))

    def _span(self, name, kind, parent: bytes, start, end, attrs, events=(), error=None, links=()) -> bytes:
        sid = self._span_id()
        s = Span(trace_id=self.trace_id, span_id=sid, parent_span_id=parent, name=name, kind=kind,
                 start_time_unix_nano=start, end_time_unix_nano=end, attributes=_attrs(attrs))
        for ev_t, ev_name, ev_attrs in events:
            s.events.add(time_unix_nano=ev_t, name=ev_name, attributes=_attrs(ev_attrs))
        for l_tid, l_sid in links:
            s.links.add(trace_id=l_tid, span_id=l_sid, attributes=_attrs({"link.reason": "spawned_by"}))
        if error:
            s.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=error[1]))
        elif kind == KIND_CLIENT:
            s.status.CopyFrom(Status(code=Status.STATUS_CODE_OK))
        self.spans.append(s)
        self.budget -= 1
        return sid

    # --- the activities ------------------------------------------------------
    def llm_call(self, parent: bytes, agent: str) -> None:
        r, d = self.rng, self.ctx.dialect
        provider, model, reasoning, caches = r.choices(MODELS, MODEL_WEIGHTS)[0]
        start = self.t + r.randrange(1_000_000, 20_000_000)
        dur = r.randrange(300_000_000, 12_000_000_000)
        self.t = start + dur
        inp, out = r.randrange(200, 60_000), r.randrange(20, 4_000)
        cache_read = r.randrange(0, inp) if caches and r.random() < 0.5 else 0
        cache_write = r.randrange(0, inp - cache_read) if provider == "anthropic" and r.random() < 0.2 else 0
        reason = r.randrange(0, out) if reasoning else 0
        err = r.choice(ERRORS[:3]) if r.random() < 0.03 else None
        prompt = completion = None
        if self.ctx.content:
            prompt = json.dumps([{"role": "system", "content": f"You are {agent}. " + self._sentence(r.randrange(10, 40))},
                                 {"role": "user", "content": self._sentence(r.randrange(20, 150))}])
            completion = json.dumps([{"role": "assistant", "content": self._sentence(r.randrange(10, 120))}])
        cost = None
        if d == "spanledger" and provider != "acme" and r.random() < 0.7:  # the SDK priced it; else the collector does
            ci, co = inp * 2.5e-6, out * 1e-5
            cost = (f"{ci:.12f}", f"{co:.12f}", f"{ci + co:.12f}")
        if d == "spanledger":
            attrs = {
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": provider, "gen_ai.request.model": model,
                "gen_ai.response.model": model, "gen_ai.response.id": f"resp_{r.getrandbits(64):016x}",
                "gen_ai.request.max_tokens": 4096, "gen_ai.request.temperature": round(r.random(), 2),
                "gen_ai.response.finish_reasons": ["stop" if not err else "error"],
                "gen_ai.usage.input_tokens": inp, "gen_ai.usage.output_tokens": out,
                "gen_ai.usage.cache_read.input_tokens": cache_read or None,
                "gen_ai.usage.cache_creation.input_tokens": cache_write or None,
                "gen_ai.usage.reasoning.output_tokens": reason or None,
                "gen_ai.agent.name": agent, "gen_ai.conversation.id": self.session,
                "spanledger.user.id": self.user, "spanledger.project.id": self.project,
                "spanledger.session.id": self.session, "spanledger.environment": self.env,
                "spanledger.tokens.source": "provider", "spanledger.activity.type": "llm_call",
                "spanledger.cost.input_usd": cost and cost[0], "spanledger.cost.output_usd": cost and cost[1],
                "spanledger.cost.total_usd": cost and cost[2], "spanledger.cost.source": cost and "provided",
                "gen_ai.input.messages": prompt, "gen_ai.output.messages": completion,
                "error.type": err and err[0],
            }
            name = f"chat {model}"
        elif d == "openinference":
            attrs = {
                "openinference.span.kind": "LLM", "llm.model_name": model, "llm.provider": provider.split(".")[-1],
                "llm.system": provider.split(".")[-1], "llm.token_count.prompt": inp, "llm.token_count.completion": out,
                "llm.token_count.total": inp + out,
                "llm.token_count.prompt_details.cache_read": cache_read or None,
                "llm.token_count.completion_details.reasoning": reason or None,
                "llm.invocation_parameters": json.dumps({"temperature": 0.2, "max_tokens": 4096}),
                "input.value": prompt, "output.value": completion, "session.id": self.session, "user.id": self.user,
                "agent.name": agent, "metadata": json.dumps({"project": self.project}),
            }
            name = "ChatCompletion"
        else:  # openllmetry
            attrs = {
                "llm.request.type": "chat",
                "gen_ai.system": provider.split(".")[-1].capitalize(), "gen_ai.request.model": model,
                "gen_ai.response.model": model, "gen_ai.usage.prompt_tokens": inp, "gen_ai.usage.completion_tokens": out,
                "llm.usage.total_tokens": inp + out, "gen_ai.usage.cache_read_input_tokens": cache_read or None,
                "gen_ai.usage.cache_creation_input_tokens": cache_write or None, "llm.is_streaming": r.random() < 0.5,
                "traceloop.association.properties.user_id": self.user, "agent.name": agent,
            }
            name = f"{provider.split('.')[-1]}.chat"
        events = []
        if err:
            events.append((self.t - 1000, "exception", {"exception.type": err[0], "exception.message": err[1],
                                                         "exception.stacktrace": "Traceback (most recent call last):\n  ...\n" + err[0]}))
        self._span(name, KIND_CLIENT, parent, start, self.t, attrs, events, err)

    def tool_call(self, parent: bytes, agent: str) -> None:
        r, d = self.rng, self.ctx.dialect
        start = self.t + r.randrange(100_000, 5_000_000)
        self.t = start + r.randrange(2_000_000, 2_000_000_000)
        mcp = r.random() < 0.3
        if mcp:
            server = r.choice(list(MCP_SERVERS))
            tool = r.choice(MCP_SERVERS[server])
            name = f"mcp {server}.{tool}"
        else:
            server, tool = None, r.choice(TOOLS)
            name = f"execute_tool {tool}"
        err = ERRORS[3] if r.random() < 0.02 else None
        args = json.dumps({"q": self._sentence(r.randrange(3, 12))}) if self.ctx.content else None
        if d == "openinference":
            attrs = {"openinference.span.kind": "TOOL", "tool.name": tool, "input.value": args, "session.id": self.session}
        elif d == "openllmetry":
            attrs = {"traceloop.span.kind": "tool", "traceloop.entity.name": tool, "traceloop.workflow.name": agent}
        else:
            attrs = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool, "gen_ai.tool.type": "function",
                     "gen_ai.tool.call.id": f"call_{r.getrandbits(48):012x}", "gen_ai.agent.name": agent,
                     "spanledger.mcp.server": server, "spanledger.activity.type": "mcp_call" if mcp else "tool_call",
                     "spanledger.user.id": self.user, "spanledger.project.id": self.project,
                     "spanledger.session.id": self.session, "spanledger.environment": self.env,
                     "gen_ai.tool.call.arguments": args, "error.type": err and err[0]}
        events = [(self.t - 500, "exception", {"exception.type": err[0], "exception.message": err[1]})] if err else []
        self._span(name, KIND_CLIENT if mcp else KIND_INTERNAL, parent, start, self.t, attrs, events, err)

    def session_trace(self, links=()) -> tuple[bytes, bytes]:
        """Root agent span -> turns -> calls. Returns (trace_id, root span id)."""
        r, d = self.rng, self.ctx.dialect
        agent = r.choice(AGENTS)
        root_start = self.t
        turns_spans = []
        # reserve the root's id first so children can point at it; fill it in at the end
        root_sid = self._span_id()
        self.budget -= 1
        for turn in range(r.randrange(1, 8)):
            if self.budget <= 1:
                break
            t_start = self.t + r.randrange(1_000_000, 50_000_000)
            self.t = t_start
            turn_sid = self._span_id()
            self.budget -= 1
            for _ in range(r.randrange(1, 6)):
                if self.budget <= 0:
                    break
                self.llm_call(turn_sid, agent) if r.random() < 0.55 else self.tool_call(turn_sid, agent)
            turns_spans.append((turn_sid, t_start, self.t, turn))
        # insert turn spans (children were appended before them: order inside a request does not matter)
        for sid, ts, te, turn in turns_spans:
            attrs = ({"openinference.span.kind": "CHAIN", "session.id": self.session} if d == "openinference" else
                     {"traceloop.span.kind": "task", "traceloop.entity.name": f"turn_{turn}"} if d == "openllmetry" else
                     {"spanledger.activity.type": "agent_turn", "gen_ai.agent.name": agent,
                      "spanledger.conversation.sequence": turn, "spanledger.user.id": self.user,
                      "spanledger.project.id": self.project, "spanledger.session.id": self.session})
            self.spans.append(Span(trace_id=self.trace_id, span_id=sid, parent_span_id=root_sid, name="agent.turn",
                                   kind=KIND_INTERNAL, start_time_unix_nano=ts, end_time_unix_nano=te,
                                   attributes=_attrs(attrs),
                                   events=[Span.Event(time_unix_nano=te, name="spanledger.progress",
                                                      attributes=_attrs({"spanledger.progress.percent": 100}))]))
        self.t += r.randrange(1_000_000, 10_000_000)
        if d == "openinference":
            attrs = {"openinference.span.kind": "AGENT", "agent.name": agent, "session.id": self.session, "user.id": self.user}
        elif d == "openllmetry":
            attrs = {"traceloop.span.kind": "agent", "traceloop.entity.name": agent, "traceloop.workflow.name": agent}
        else:
            attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent,
                     "gen_ai.agent.id": f"agent-{agent}-{r.randrange(4)}", "spanledger.activity.type": "agent_run",
                     "spanledger.user.id": self.user, "spanledger.project.id": self.project,
                     "spanledger.ticket.id": f"TCK-{r.randrange(10_000)}" if r.random() < 0.3 else None,
                     "spanledger.session.id": self.session, "spanledger.environment": self.env,
                     "gen_ai.conversation.id": self.session, "spanledger.status": "completed"}
        root = Span(trace_id=self.trace_id, span_id=root_sid, name=f"invoke_agent {agent}", kind=KIND_INTERNAL,
                    start_time_unix_nano=root_start, end_time_unix_nano=self.t, attributes=_attrs(attrs))
        for l_tid, l_sid in links:
            root.links.add(trace_id=l_tid, span_id=l_sid, attributes=_attrs({"link.reason": "spawned_by"}))
        self.spans.append(root)
        return self.trace_id, root_sid


def build_request(spans_per_request: int = 1000, seed: int = 0, start_ns: int | None = None) -> ExportTraceServiceRequest:
    """One request of exactly ``spans_per_request`` spans: whole agent sessions, grouped by service."""
    rng = random.Random(seed)
    start_ns = start_ns if start_ns is not None else time.time_ns() - 3_600_000_000_000
    by_service: dict[str, list[Span]] = {}
    ctx_by_service = {name: _Ctx(rng, dialect, content) for name, (dialect, content) in SERVICES.items()}
    ctx_next = 0
    remaining, last_root = spans_per_request, None
    t = start_ns
    while remaining > 0:
        service = rng.choice(list(SERVICES))
        ctx = ctx_by_service[service]
        ctx.next_span = ctx_next  # span index unique across the whole request
        b = _TraceBuilder(ctx, b"\0" * 8 + rng.getrandbits(64).to_bytes(8, "big"), t, remaining)
        links = [last_root] if last_root and rng.random() < 0.2 else ()
        last_root = b.session_trace(links)
        ctx_next = ctx.next_span
        by_service.setdefault(service, []).extend(b.spans)
        remaining -= len(b.spans)
        t += rng.randrange(10_000_000, 2_000_000_000)
    req = ExportTraceServiceRequest()
    for service, spans in by_service.items():
        dialect = SERVICES[service][0]
        scope = {"spanledger": ("spanledger", "0.1.0"), "openinference": ("openinference.instrumentation.openai", "0.1.30"),
                 "openllmetry": ("opentelemetry.instrumentation.openai.v1", "0.40.2")}[dialect]
        res = Resource(attributes=_attrs({"service.name": service, "service.version": "1.4.2",
                                          "deployment.environment.name": "prod", "host.name": f"{service}-7f9c",
                                          "telemetry.sdk.name": "opentelemetry", "telemetry.sdk.language": "python",
                                          "telemetry.sdk.version": "1.45.2"}))
        req.resource_spans.append(ResourceSpans(resource=res, scope_spans=[
            ScopeSpans(scope=InstrumentationScope(name=scope[0], version=scope[1]), spans=spans)]))
    return req


# --- templates: where the ids and timestamps are, for cheap re-stamping -----------
def _fields(buf: bytes, start: int, end: int):
    """Yield (field number, wire type, value start, value end) of one protobuf message."""
    pos = start
    while pos < end:
        key, pos = read_varint(buf, pos)
        field, wt = key >> 3, key & 7
        if wt == 0:
            _, nxt = read_varint(buf, pos)
        elif wt == 1:
            nxt = pos + 8
        elif wt == 2:
            ln, pos = read_varint(buf, pos)
            nxt = pos + ln
        elif wt == 5:
            nxt = pos + 4
        else:
            raise ValueError(f"unexpected wire type {wt}")
        yield field, wt, pos, nxt
        pos = nxt


class Template:
    """A serialized request plus the offsets of its trace-id stamps, span-id stamps and timestamps."""

    def __init__(self, data: bytes):
        self.data = data
        trace_pos, span_pos, time_pos = [], [], []
        self.spans = self.traces = 0
        traces = set()
        for f, _, s, e in _fields(data, 0, len(data)):
            if f != 1:
                continue
            for f2, _, s2, e2 in _fields(data, s, e):  # ResourceSpans
                if f2 != 2:
                    continue
                for f3, _, s3, e3 in _fields(data, s2, e2):  # ScopeSpans
                    if f3 != 2:
                        continue
                    self.spans += 1
                    for f4, _, s4, e4 in _fields(data, s3, e3):  # Span
                        if f4 == 1:
                            trace_pos.append(s4)
                            traces.add(data[s4:e4])
                        elif f4 in (2, 4) and e4 - s4 == 8:
                            span_pos.append(s4)
                        elif f4 in (7, 8):
                            time_pos.append(s4)
                        elif f4 in (11, 13):  # events, links
                            for f5, _, s5, e5 in _fields(data, s4, e4):
                                if f4 == 11 and f5 == 1:
                                    time_pos.append(s5)
                                elif f4 == 13 and f5 == 1:
                                    trace_pos.append(s5)
                                elif f4 == 13 and f5 == 2:
                                    span_pos.append(s5)
        self.traces = len(traces)
        self._trace_idx = (np.array(trace_pos)[:, None] + np.arange(8)).ravel()
        self._span_idx = (np.array(span_pos)[:, None] + np.arange(4)).ravel()
        self._time_idx = (np.array(time_pos)[:, None] + np.arange(8))  # (n, 8)
        self._base = np.frombuffer(data, dtype=np.uint8)
        self._n_trace, self._n_span = len(trace_pos), len(span_pos)

    def stamp(self, copy_id: int, shift_ns: int = 0, nonce: int = 0) -> bytes:
        """The template with ids unique to (``nonce``, ``copy_id``) (each < 2**32), timestamps moved by ``shift_ns``."""
        buf = self._base.copy()
        trace_stamp = ((nonce << 32) | copy_id).to_bytes(8, "big")
        buf[self._trace_idx] = np.tile(np.frombuffer(trace_stamp, np.uint8), self._n_trace)
        buf[self._span_idx] = np.tile(np.frombuffer(copy_id.to_bytes(4, "big"), np.uint8), self._n_span)
        if shift_ns:
            times = buf[self._time_idx].copy().view("<u8").ravel()
            times += np.uint64(shift_ns) if shift_ns > 0 else 0
            if shift_ns < 0:
                times -= np.uint64(-shift_ns)
            buf[self._time_idx] = times.view(np.uint8).reshape(-1, 8)
        return buf.tobytes()


def make_pool(n_templates: int = 8, spans_per_request: int = 1000, seed: int = 1, start_ns: int | None = None) -> list[Template]:
    """``n_templates`` distinct requests; the load generator cycles over them."""
    return [Template(build_request(spans_per_request, seed * 1000 + i, start_ns).SerializeToString())
            for i in range(n_templates)]


if __name__ == "__main__":  # quick look: sizes and the stamping rate
    t0 = time.perf_counter()
    pool = make_pool(4)
    print(f"built 4 templates in {time.perf_counter() - t0:.2f}s; bytes/request "
          f"{[len(t.data) for t in pool]}, spans {[t.spans for t in pool]}, traces {[t.traces for t in pool]}")
    t0 = time.perf_counter()
    n = 200
    for i in range(n):
        pool[i % 4].stamp(i + 1, 1000)
    dt = time.perf_counter() - t0
    print(f"stamp: {dt / n * 1e3:.2f} ms/request = {n * pool[0].spans / dt:,.0f} spans/s")
