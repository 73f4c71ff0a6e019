"""The demo's simulated workload: an agent team working tickets, through the real instrumentation.

Deterministic for a given seed and scale: the same tickets, models, token counts
and costs every run (only trace ids and wall-clock times differ).  Nothing
calls a model; each LLM call reports a provider-shaped usage object (OpenAI,
Anthropic and Gemini spellings) to ``LLMCall.set_usage``, exactly as real code
does after a response.

Durations are simulated: a :class:`SimClock` replaces the clock of the OTel SDK
and of spanledger for the run (the same hook the ``spanledger.testing``
fixture uses), and the workload advances it by a realistic amount per call
(a 40-second test run, a 3-second model call...).  Traces are staggered in
simulated time so they overlap as in a busy system; reviewer and security
agents run "in parallel" (their spans overlap).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

import spanledger
from spanledger import _clock

TICKETS = [
    ("Add pagination to GET /api/users", "feature"),
    ("Fix race condition in the job scheduler", "bug"),
    ("Upgrade auth to OAuth 2.1 with PKCE", "feature"),
    ("Rate-limit the public API per API key", "feature"),
    ("Partition the orders table by month", "chore"),
    ("CSV export for invoices", "feature"),
]
FAILING_TICKET, CONFLICT_TICKET, RATE_LIMITED_TICKET = 2, 4, 3  # indexes into each block of six


@dataclass(frozen=True)
class Model:
    provider: str
    request: str  # what the code asks for
    response: str  # what the API answers (dated version)
    ms_per_token: float
    style: str  # which usage shape the provider reports: openai | anthropic | google


MODELS = {
    "gpt-4o": Model("openai", "gpt-4o", "gpt-4o-2024-08-06", 11, "openai"),
    "gpt-4o-mini": Model("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", 7, "openai"),
    "o3-mini": Model("openai", "o3-mini", "o3-mini-2025-01-31", 9, "openai"),
    "o4-mini": Model("openai", "o4-mini", "o4-mini-2025-04-16", 9, "openai"),
    "claude-sonnet-4": Model("anthropic", "claude-sonnet-4", "claude-sonnet-4-20250514", 14, "anthropic"),
    "claude-3-5-haiku": Model("anthropic", "claude-3-5-haiku", "claude-3-5-haiku-20241022", 6, "anthropic"),
    "gemini-2.5-pro": Model("gcp.gemini", "gemini-2.5-pro", "gemini-2.5-pro", 10, "google"),
    "gemini-2.5-flash": Model("gcp.gemini", "gemini-2.5-flash", "gemini-2.5-flash", 4, "google"),
    "mistral-large": Model("mistral_ai", "mistral-large-latest", "mistral-large-2411", 12, "openai"),
    "acme-coder-ft": Model("vllm", "acme-coder-ft-2", "acme-coder-ft-2", 5, "openai"),
}


class SimClock:
    """Simulated wall clock in ns; every read ticks 20 µs so events stay ordered."""

    def __init__(self, start_ns: int) -> None:
        self.now = start_ns

    def __call__(self) -> int:
        self.now += 20_000
        return self.now

    def advance(self, ms: float) -> None:
        self.now += int(ms * 1_000_000)

    @contextmanager
    def branches(self) -> Iterator[Callable[[], object]]:
        """``with clock.branches() as branch:`` each ``with branch():`` starts at the fork; ends at the latest."""
        fork, ends = self.now, []

        @contextmanager
        def branch() -> Iterator[None]:
            self.now = fork
            try:
                yield
            finally:
                ends.append(self.now)

        yield branch
        self.now = max(ends, default=fork)

    @contextmanager
    def installed(self) -> Iterator[SimClock]:
        saved = (sdk_trace.time_ns, _clock.time_ns)
        sdk_trace.time_ns, _clock.time_ns = self, self  # type: ignore[assignment]
        try:
            yield self
        finally:
            sdk_trace.time_ns, _clock.time_ns = saved  # type: ignore[assignment]


class SpanCounter(SpanProcessor):
    """Counts the spans a provider ended: what the store must hold afterwards."""

    def __init__(self) -> None:
        self.ended = 0
        self._lock = threading.Lock()

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            self.ended += 1


class SandboxCrashed(RuntimeError):
    """The test sandbox died under the coder agent (the demo's failing agent)."""


class RateLimitError(RuntimeError):
    """HTTP 429 from the model API."""


class Workload:
    """Run with :meth:`run`; ``on_progress(done, total)`` is called after each unit of work."""

    def __init__(self, clock: SimClock, scale: int = 1, seed: int = 7, pace_s: float = 0.02,
                 on_progress: Callable[[int, int], None] | None = None) -> None:
        self.clock, self.scale, self.pace_s = clock, max(int(scale), 1), pace_s
        self.rng = random.Random(seed)
        self.on_progress = on_progress or (lambda done, total: None)
        self.n_tickets = len(TICKETS) * self.scale
        self.n_conversations = 2 * self.scale
        self.total_units = 1 + self.n_tickets + self.n_conversations + self.scale + 1  # setup, ..., events, foreign
        self.done_units = 0
        self.project_id, self.user_id = "proj_7f3a9c", "user_1042"
        self.schedule_start = clock.now

    # -- building blocks ----------------------------------------------------------------
    def _unit_done(self) -> None:
        self.done_units += 1
        self.on_progress(self.done_units, self.total_units)

    def llm(self, key: str, in_tokens: tuple[int, int], out_tokens: tuple[int, int], *, cached: float = 0.0,
            cache_write: int = 0, reasoning: tuple[int, int] = (0, 0), fail: Exception | None = None,
            provided_cost: str | None = None) -> None:
        """One model call: latency from the output length; usage in the provider's own shape."""
        m, rng = MODELS[key], self.rng
        n_in, n_out = rng.randint(*in_tokens), rng.randint(*out_tokens)
        n_reason = rng.randint(*reasoning) if reasoning[1] else 0
        n_cached = int(n_in * cached) // 64 * 64  # providers cache whole blocks
        time.sleep(self.pace_s)
        with spanledger.llm_call(m.request, provider=m.provider, max_tokens=8192, temperature=0.2) as call:
            if fail is not None:
                self.clock.advance(rng.uniform(150, 600))
                raise fail
            self.clock.advance(rng.uniform(250, 900) + (n_out + n_reason) * m.ms_per_token)
            call.set_response(model=m.response, response_id=f"resp_{rng.getrandbits(48):012x}", finish_reasons=["stop"])
            if m.style == "anthropic":  # input_tokens EXCLUDE cache tokens
                call.set_usage({"input_tokens": n_in - n_cached - cache_write, "output_tokens": n_out,
                                "cache_read_input_tokens": n_cached, "cache_creation_input_tokens": cache_write})
            elif m.style == "google":  # thinking tokens are NOT in candidates_token_count
                call.set_usage({"prompt_token_count": n_in, "candidates_token_count": n_out,
                                "thoughts_token_count": n_reason, "cached_content_token_count": n_cached,
                                "total_token_count": n_in + n_out + n_reason})
            else:  # OpenAI: completion tokens include reasoning tokens
                call.set_usage({"prompt_tokens": n_in, "completion_tokens": n_out + n_reason,
                                "total_tokens": n_in + n_out + n_reason,
                                "prompt_tokens_details": {"cached_tokens": n_cached},
                                "completion_tokens_details": {"reasoning_tokens": n_reason}})
            if provided_cost is not None:
                call.set_cost(provided_cost)

    def tool(self, name: str, ms: tuple[float, float], *, mcp_server: str | None = None,
             arguments: dict | None = None, fail: Exception | None = None) -> None:
        with spanledger.tool_call(name, arguments=arguments, mcp_server=mcp_server,
                                  tool_type="mcp" if mcp_server else "function",
                                  call_id=f"call_{self.rng.getrandbits(40):010x}") as call:
            self.clock.advance(self.rng.uniform(*ms))
            if fail is not None:
                raise fail
            call.set_result({"ok": True})

    def instant(self, ms: float) -> float:
        """Advance the clock by an already-finished activity's duration (recorders back-date from now)."""
        self.clock.advance(ms)
        return ms

    # -- the scenario ---------------------------------------------------------------------
    def run(self) -> None:
        with spanledger.associate(project_id=self.project_id, user_id=self.user_id, environment="production"):
            self.project_setup()
            for i in range(self.n_tickets):
                self.clock.now = self.schedule_start + (i + 1) * 95_000_000_000  # a ticket every 95 s
                self.ticket(i)
                self._unit_done()
        for i in range(self.n_conversations):
            self.clock.now = self.schedule_start + (i * 4 + 1) * 130_000_000_000
            self.conversation(i)
            self._unit_done()
        for i in range(self.scale):
            self.clock.now = self.schedule_start + (i * 3 + 2) * 200_000_000_000
            self.product_session(i)
            self._unit_done()

    def project_setup(self) -> None:
        P, db = spanledger.ProjectAction, "acme_proj_7f3a9c"
        with spanledger.agent_run("devops", agent_type="devops", task_id="bootstrap",
                                  description="Create the backend project") as run:
            spanledger.project_action(P.PROJECT_CREATED, details="Project 'Acme API' created with container c-4d21e9",
                                      duration_ms=self.instant(2300))
            with run.turn("design the schema", turn=1):
                self.llm("gpt-4o", (1800, 2600), (700, 1100))
            spanledger.project_action(P.DATABASE_CREATED, duration_ms=self.instant(4100),
                                      details=f"Database '{db}' created with 3 tables: users, posts, comments")
            spanledger.project_action(P.ENDPOINTS_ADDED, details="Added 2 endpoints: GET /api/users, POST /api/users",
                                      duration_ms=self.instant(850))
            spanledger.project_action(P.QUERIES_EXECUTED, details="Executed 5 queries affecting tables: users, posts",
                                      duration_ms=self.instant(120))
            spanledger.project_action(P.GITHUB_PUSH, details="Pushed 5 files to https://github.com/acme/api",
                                      duration_ms=self.instant(1900))
            spanledger.project_action(P.DEPLOYMENT, status="failed", error="fly.io health check failed: /healthz 503",
                                      details="Deploy to fly.io", duration_ms=self.instant(38_000))
            run.progress(80, "retrying the deployment with a longer health-check grace period")
            spanledger.project_action(P.DEPLOYMENT, details="Deployed to fly.io: https://acme-api-7f3a.fly.dev",
                                      duration_ms=self.instant(41_000))
        self._unit_done()

    def ticket(self, i: int) -> None:
        title, kind = TICKETS[i % len(TICKETS)]
        tid, role = f"T-{101 + i}", i % len(TICKETS)
        T = spanledger.TicketOperation
        with spanledger.associate(ticket_id=tid), spanledger.agent_run(
                "orchestrator", agent_type="orchestrator", task_id=tid, description=title) as orch:
            spanledger.ticket_operation(T.CREATE, tid, changed_fields=["title", "priority", "type"],
                                        agent_name="orchestrator", duration_ms=self.instant(40))
            with orch.reasoning("route the ticket"):
                self.llm("gpt-4o-mini", (1500, 2500), (60, 140), cached=0.6)
            spanledger.ticket_operation(T.ASSIGN, tid, assignee="coder", changed_fields=["assignee", "status"],
                                        agent_name="orchestrator", duration_ms=self.instant(25))
            self.planner(tid, kind)
            try:
                self.coder(tid, role)
            except SandboxCrashed as exc:
                spanledger.agent_event("error", "coder", task_id=tid, error=exc, description=str(exc), parent=orch)
                spanledger.ticket_operation(T.UPDATE, tid, changed_fields=["status"], agent_name="orchestrator",
                                            description="blocked: coder failed", duration_ms=self.instant(30))
                orch.pause("coder failed twice; waiting for a human to look at the sandbox")
                return
            with self.clock.branches() as branch:
                with branch():
                    verdict = self.reviewer(tid, conflict=role == CONFLICT_TICKET)
                with branch():
                    self.security(tid)
            if verdict is not None:
                orch.conflict(verdict)
                spanledger.ticket_operation(T.UPDATE, tid, changed_fields=["status"], agent_name="orchestrator",
                                            description="needs a human decision", duration_ms=self.instant(30))
                return
            with orch.reasoning("summarize for the changelog"):
                self.llm("gemini-2.5-flash", (3000, 6000), (150, 300), reasoning=(200, 600))
            spanledger.ticket_operation(T.CLOSE, tid, changed_fields=["status", "resolution"],
                                        agent_name="orchestrator", duration_ms=self.instant(35))

    def planner(self, tid: str, kind: str) -> None:
        with spanledger.agent_run("planner", agent_type="planner", task_id=tid) as run:
            spanledger.agent_event("started", "planner", task_id=tid, parent=run)
            with run.turn("plan", turn=1):
                with run.reasoning("break the ticket into steps"):
                    self.llm("o4-mini" if kind != "bug" else "o3-mini", (2500, 5000), (400, 900),
                             reasoning=(1500, 4000))
                self.tool("repo_search", (60, 300), arguments={"query": "users handler"})
                self.tool("get_issue", (200, 700), mcp_server="github", arguments={"issue": tid})
            run.progress(100, "plan ready: 4 steps")

    def coder(self, tid: str, role: int) -> None:
        with spanledger.agent_run("coder", agent_type="coder", task_id=tid) as run:
            spanledger.agent_event("started", "coder", task_id=tid, parent=run)
            turns = 3 + self.rng.randint(0, 2)
            for turn in range(1, turns + 1):
                with run.turn(f"turn {turn}", turn=turn):
                    if turn == 1 and role == RATE_LIMITED_TICKET:
                        try:
                            self.llm("claude-sonnet-4", (9000, 9000), (0, 0), fail=RateLimitError("429: rate limit"))
                        except RateLimitError:
                            self.clock.advance(2000)  # back off, retry
                    # the system prompt + repo map is cached after the first turn
                    self.llm("claude-sonnet-4", (12_000, 30_000), (600, 2200), cached=0.0 if turn == 1 else 0.7,
                             cache_write=8000 if turn == 1 else 0)
                    for _ in range(self.rng.randint(1, 3)):
                        self.tool("file_read", (2, 25), arguments={"path": "src/api/users.py"})
                    self.tool("file_write", (3, 30), arguments={"path": "src/api/users.py"})
                    if turn == turns:
                        self.tool("run_tests", (8000, 45_000), arguments={"suite": "unit"})
                        if role == FAILING_TICKET:
                            crash = SandboxCrashed("test sandbox OOM-killed (exit 137)")
                            self.tool("run_tests", (20_000, 30_000), arguments={"suite": "integration"}, fail=crash)
                if turn < turns:
                    run.progress(round(100 * turn / turns), f"{turn}/{turns} turns done")
            if role == 0:
                self.llm("acme-coder-ft", (3000, 5000), (200, 400))  # a self-hosted fine-tune nobody prices
            spanledger.project_action(spanledger.ProjectAction.GITHUB_PUSH, project_id=self.project_id,
                                      details=f"Pushed 3 files for {tid}", duration_ms=self.instant(1500))

    def reviewer(self, tid: str, conflict: bool) -> str | None:
        with spanledger.agent_run("reviewer", agent_type="reviewer", task_id=tid) as run:
            self.tool("git_diff", (40, 200))
            with run.reasoning("review the diff"):
                self.llm("gemini-2.5-pro", (20_000, 60_000), (500, 1500), cached=0.5, reasoning=(1000, 3000))
            if conflict:
                reason = "reviewer wants the limiter in middleware; security's patch puts it in the gateway"
                run.conflict(reason)
                return reason
            run.progress(100, "approved")
        return None

    def security(self, tid: str) -> None:
        with spanledger.agent_run("security", agent_type="security", task_id=tid):
            self.tool("dependency_audit", (1500, 6000), mcp_server="snyk", arguments={"manifest": "pyproject.toml"})
            for _ in range(2):
                self.llm("claude-3-5-haiku", (6000, 14_000), (150, 500), cached=0.8)

    def conversation(self, i: int) -> None:
        """A support chat (seed 002): user message, MCP tool call/response, answer — with sequence numbers."""
        from spanledger.activities import Conversation

        conv = Conversation(f"conv-{i + 1:04d}-{self.rng.getrandbits(32):08x}", session_id=f"sess-{i + 1:03d}",
                            user_id=f"user_{2001 + i}")
        questions = [("What is the status of job XYZ?", "get_job_status"),
                     ("Why did it fail yesterday?", "get_job_logs"),
                     ("Restart it with the previous config", "restart_job")]
        with conv.scope():
            for question, mcp_tool in questions[: 2 + i % 2]:
                with spanledger.agent_run("support-assistant", agent_type="assistant"):
                    conv.user_message(question, duration_ms=self.instant(5))
                    self.llm("claude-sonnet-4", (2500, 4000), (40, 90), cached=0.6)
                    conv.mcp_tool_call("informatica_mcp", mcp_tool, {"job_id": "XYZ"}, duration_ms=self.instant(3))
                    took = self.instant(self.rng.uniform(300, 1500))
                    conv.mcp_tool_response("informatica_mcp", mcp_tool, duration_ms=took)
                    self.llm("claude-sonnet-4", (3000, 4500), (80, 220), cached=0.6)
                    conv.assistant_response("Job XYZ is running at 75%", tokens=150, duration_ms=self.instant(2))
            with spanledger.agent_run("support-assistant", agent_type="assistant"):  # a gateway-priced follow-up
                self.llm("mistral-large", (1200, 2000), (100, 200), provided_cost="0.003120")

    def product_session(self, i: int) -> None:
        """Product analytics (seed 004): what the user did in the web app."""
        session, user, device = f"web-{i + 1:03d}", self.user_id, ("desktop", "mobile")[i % 2]
        events = [("page_viewed", "page", "projects"), ("project_opened", "project", self.project_id),
                  ("modal_opened", "modal", "new_ticket"), ("ticket_created", "ticket", "T-101"),
                  ("ai_wizard_completed", "project", self.project_id), ("project_subtask_completed", "subtask", "st-9"),
                  ("page_viewed", "page", "billing"), ("export_downloaded", "report", "usage-csv")]
        for event, entity, entity_id in events:
            spanledger.product_event(event, entity_type=entity, entity_id=entity_id, device_type=device,
                                     user_id=user, session_id=session,
                                     duration_ms=self.instant(self.rng.uniform(50, 4000)),
                                     metadata={"view_mode": "list", "goals_count": 5})
            self.clock.advance(self.rng.uniform(2000, 20_000))

