"""A store filled by the real instrumentation for the report tests, and what the tests sent.

Two tenants (acme, globex) export through spanledger.configure to a real
collector on port 0, each with its own bearer token; they share user and
session ids on purpose, so a report that leaked across tenants would be seen.
Simulated time (the demo's SimClock) puts every activity at a known instant
over three days, so the tests compute buckets, sums and quantiles themselves
from ``Sent`` -- never from the code under test.
"""

from __future__ import annotations

import datetime as dt
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "collector"))

import spanledger  # noqa: E402
from collector_support import start_collector, token_config, wait_stored  # noqa: E402
from spanledger.activities import Conversation  # noqa: E402
from spanledger.demo.workload import SimClock  # noqa: E402
from spanledger.pricing import PriceBook, TokenUsage  # noqa: E402

OPERATOR = "operator-token-0123456789abcdef"
TOKENS = {"acme": "acme-token-0123456789abcdef", "globex": "globex-token-0123456789abcdef"}
CONFIG = token_config(operators=(OPERATOR,), tenants=TOKENS)


@dataclass
class Call:
    tenant: str
    at: dt.datetime
    agent: str
    user: str
    project: str
    session: str
    ticket: str
    provider: str
    model: str
    input: int
    output: int
    cache: int = 0
    reasoning: int = 0
    provided: str | None = None  # a provider-reported cost
    usd: Decimal | None = None  # what it cost (None: unpriced)
    saving: Decimal = Decimal(0)
    run_ms: float = 0.0
    run_status: str = "completed"  # completed | failed | conflict | paused


@dataclass
class Sent:
    calls: list[Call] = field(default_factory=list)
    spans: dict[str, int] = field(default_factory=dict)  # tenant -> spans ended
    conversation: dict[str, list[str]] = field(default_factory=dict)  # tenant -> steps in sequence order
    project_actions: dict[str, list[tuple[dt.datetime, str, str]]] = field(default_factory=dict)
    ticket_ops: dict[str, list[str]] = field(default_factory=dict)
    product_events: dict[str, list[tuple[dt.datetime, str, str, str, str]]] = field(default_factory=dict)
    problems: dict[str, int] = field(default_factory=dict)
    start: dt.datetime = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)


BOOK = PriceBook()
MODELS = [("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4"), ("openai", "gpt-4o-mini"),
          ("vllm", "acme-private-llm-7")]  # the last has no price anywhere


def _ns(moment: dt.datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def _plan(tenant: str, start: dt.datetime) -> list[Call]:
    """Deterministic LLM calls: three days, several agents, users, sessions and tickets."""
    calls = []
    n = 36 if tenant == "acme" else 10
    agents = ["planner", "coder", "reviewer"]
    for i in range(n):
        provider, model = MODELS[i % 4]
        at = start + dt.timedelta(hours=5 * i, minutes=7 * (i % 5), seconds=11)
        call = Call(tenant, at, agents[i % 3], f"u{i % 4}", f"p{i % 2}", f"s{i % 5}", f"T-{i % 6}", provider, model,
                    input=1000 + 137 * i, output=200 + 31 * i, cache=(256 * (i % 3)), reasoning=(64 * (i % 2)),
                    run_ms=100.0 + 37.0 * i)
        if i % 7 == 3:
            call.provided = f"0.{i:02d}1234"
        if i % 9 == 5:
            call.run_status = "failed"
        elif i % 11 == 4:
            call.run_status = "conflict"
        elif i % 13 == 6:
            call.run_status = "paused"
        calls.append(call)
    for call in calls:
        rates = BOOK.rates(call.provider, call.model)
        if call.provided is not None:
            call.usd = Decimal(call.provided)
        elif rates is not None:
            usage = TokenUsage(input_tokens=call.input, output_tokens=call.output, cache_read_tokens=call.cache,
                               reasoning_tokens=call.reasoning)
            call.usd = BOOK.cost(call.provider, call.model, usage).total_usd
        if rates is not None:
            call.saving = call.cache * (rates.input_mtok - rates.cache_read_mtok) / Decimal(1_000_000)
    return calls


class _Failure(RuntimeError):
    pass


def _send_tenant(tenant: str, address: str, start: dt.datetime, sent: Sent) -> None:
    spanledger.configure(service_name=f"{tenant}-agents", endpoint=f"http://{address}", insecure=True,
                         headers={"authorization": f"Bearer {TOKENS[tenant]}"}, max_queue_size=100_000,
                         schedule_delay_millis=200, set_global_provider=False)
    clock = SimClock(_ns(start))
    ended = 0
    with clock.installed():
        for call in _plan(tenant, start):
            clock.now = _ns(call.at)
            with spanledger.associate(user_id=call.user, project_id=call.project, session_id=call.session,
                                      ticket_id=call.ticket, environment="production"):
                try:
                    with spanledger.agent_run(call.agent, task_id=call.ticket) as run:
                        with spanledger.llm_call(call.model, provider=call.provider) as llm:
                            llm.set_usage(input_tokens=call.input, output_tokens=call.output,
                                          cache_read_tokens=call.cache, reasoning_tokens=call.reasoning)
                            if call.provided is not None:
                                llm.set_cost(call.provided)
                        clock.advance(call.run_ms)
                        if call.run_status == "conflict":
                            run.conflict("two agents edited the same file")
                            ended += 1
                        elif call.run_status == "paused":
                            run.pause("waiting for approval")
                            ended += 1
                        if call.run_status == "failed":
                            raise _Failure("sandbox crashed")
                except _Failure:
                    pass
            ended += 2
            sent.calls.append(call)
        mine = [c for c in sent.calls if c.tenant == tenant]
        # a failed run is one span; a conflict or pause is the run and its event; plus the failed deployment
        sent.problems[tenant] = sum(1 if c.run_status == "failed" else 2 for c in mine if c.run_status != "completed") + 1

        # a conversation: the tool response is back-dated (duration_ms) to before the tool call,
        # so only the sequence puts it in order
        conv_id = "conv-1"
        conv = Conversation(conv_id, session_id="s1", user_id="u1")  # fresh: the registry is per process
        clock.now = _ns(start + dt.timedelta(hours=2))
        conv.user_message("What is the status of job XYZ?")
        clock.advance(10)
        conv.mcp_tool_call("informatica_mcp", "get_job_status", {"job": "XYZ"})
        clock.advance(50)
        conv.mcp_tool_response("informatica_mcp", "get_job_status", duration_ms=120)
        clock.advance(200)
        conv.assistant_response("Job XYZ is running at 75%", tokens=150)
        sent.conversation[tenant] = ["user_message", "mcp_tool_call", "mcp_tool_response", "assistant_response"]
        ended += 4

        actions = [(start + dt.timedelta(hours=1), "project_created", "completed"),
                   (start + dt.timedelta(hours=3), "database_created", "completed"),
                   (start + dt.timedelta(hours=30), "deployment", "failed")]
        if tenant == "acme":
            actions.append((start + dt.timedelta(hours=50), "github_push", "completed"))
        for at, action, status in actions:
            clock.now = _ns(at)
            spanledger.project_action(action, project_id="p0", user_id="u1", details=f"{action} for p0",
                                      status="success" if status == "completed" else "failed")
        sent.project_actions[tenant] = actions
        ended += len(actions)

        ops = ["create", "assign", "update", "close"] if tenant == "acme" else ["create", "close"]
        for k, op in enumerate(ops):
            clock.now = _ns(start + dt.timedelta(hours=4, minutes=k))
            spanledger.ticket_operation(op, "T-1", changes={"status": op}, agent_name="planner")
        sent.ticket_ops[tenant] = ops
        ended += len(ops)

        # product events around midnight UTC, so a zone moves them to another day
        day1 = start + dt.timedelta(days=1)
        events = [(day1 - dt.timedelta(minutes=30), "project_opened", "s-web-1"),
                  (day1 - dt.timedelta(minutes=20), "email_opened", "s-web-1"),
                  (day1 - dt.timedelta(minutes=10), "email_opened", "s-web-1"),
                  (day1 + dt.timedelta(hours=2), "project_subtask_completed", "s-web-2"),
                  (day1 + dt.timedelta(hours=3), "email_archived", "s-web-2")]
        if tenant == "globex":
            events = events[:2]
        recorded = []
        for at, event_type, session in events:
            clock.now = _ns(at)
            spanledger.product_event(event_type, user_id="u1", session_id=session)
            words = event_type.split("_")
            recorded.append((at, event_type, words[0], words[-1], session))
        sent.product_events[tenant] = recorded
        ended += len(recorded)
    spanledger.shutdown()
    sent.spans[tenant] = ended


def fill(tmp_dir: Path) -> tuple[object, Sent]:
    """Start a collector with two tenants, send both workloads through the SDK, wait until stored."""
    collector = start_collector(tmp_dir, CONFIG)
    today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    sent = Sent(start=today - dt.timedelta(days=9))  # the plan spans ~7.5 days, never ahead of now
    for tenant in ("acme", "globex"):
        _send_tenant(tenant, collector.server.address, sent.start, sent)
    wait_stored(collector, sum(sent.spans.values()), timeout=60)
    return collector, sent


def expected_spend(calls: list[Call], key) -> dict:
    """Sums per key(call) the way the spend report defines them (unpriced apart, never $0)."""
    out: dict = {}
    for c in calls:
        e = out.setdefault(key(c), {"llm_calls": 0, "unpriced_calls": 0, "input_tokens": 0, "output_tokens": 0,
                                    "cache_read_tokens": 0, "reasoning_tokens": 0, "usd": Decimal(0),
                                    "cache_savings_usd": Decimal(0), "unpriced_tokens": 0})
        e["llm_calls"] += 1
        e["input_tokens"] += c.input
        e["output_tokens"] += c.output
        e["cache_read_tokens"] += c.cache
        e["reasoning_tokens"] += c.reasoning
        e["cache_savings_usd"] += c.saving
        if c.usd is None:
            e["unpriced_calls"] += 1
            e["unpriced_tokens"] += c.input + c.output
        else:
            e["usd"] += c.usd
    return out


class ReportsServer:
    """The reports router in a FastAPI app on uvicorn, port 0, with the collector's auth (until serve/app.py lands)."""

    def __init__(self, collector) -> None:
        from serve_support import router_app

        from spanledger.collector.serve.reports import router
        from spanledger.collector.serve.uvicorn_thread import UvicornThread

        self._server = UvicornThread(router_app(collector, router), "127.0.0.1:0", name="reports-test-api").start()
        self.url = self._server.url

    def get(self, path: str, token: str | None = OPERATOR, params=None):
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(self.url + path, params=params, headers=headers, timeout=30)

    def close(self) -> None:
        self._server.stop()


@contextmanager
def served(tmp_dir: Path):
    """A filled collector and the reports router over it: (server, sent); ``server.collector`` is the collector."""
    collector, sent = fill(tmp_dir)
    server = ReportsServer(collector)
    server.collector = collector
    try:
        yield server, sent
    finally:
        server.close()
        collector.stop()
