"""Helpers for API tests: HTTP calls with urllib, and a workload sent by the real spanledger instrumentation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal

from collector_support import token_config

OPERATOR = "operator-token-0123456789"
ACME = "acme-token-0123456789ab"
GLOBEX = "globex-token-0123456789"
TENANTS_CONFIG = token_config(operators=(OPERATOR,), tenants={"acme": ACME, "globex": GLOBEX})

# gpt-4o at OpenAI's published prices: $2.50 per million input tokens, $10 per million output tokens
GPT4O_INPUT, GPT4O_OUTPUT = Decimal("2.50") / 10**6, Decimal("10") / 10**6


def call(base: str, method: str, path: str, body=None, token: str | None = None, params=None,
         headers: dict | None = None, raw: bytes | None = None) -> tuple[int, dict]:
    url = base + path + ("?" + urllib.parse.urlencode(params, doseq=True) if params else "")
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method, headers={
        **({"Authorization": f"Bearer {token}"} if token else {}),
        **({"Content-Type": "application/json"} if data is not None else {}), **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        text = err.read()
        try:
            return err.code, json.loads(text)
        except ValueError:
            return err.code, {"raw": text.decode(errors="replace")}


def get(base, path, token=None, **params):
    return call(base, "GET", path, token=token, params=params or None)


WORKLOAD = textwrap.dedent("""
    import json, sys
    import spanledger

    endpoint, token, traces, tag = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    spanledger.configure(service_name=f"svc-{tag}", endpoint=endpoint, insecure=True, schedule_delay_millis=100, capture_content=True,
                         headers={"authorization": f"Bearer {token}"} if token else None,
                         resource_attributes={"deployment.environment.name": "test"})
    sent = []
    for t in range(traces):
        with spanledger.associate(user_id=f"user-{t % 2}", project_id=f"proj-{tag}", session_id=f"sess-{t}"):
            with spanledger.agent_run("planner", task_id=f"T-{t}") as run:
                with spanledger.llm_call("gpt-4o", provider="openai") as llm:
                    llm.set_usage(input_tokens=1000 + t, output_tokens=100 + t)
                with spanledger.tool_call("search", arguments={"q": f"query {t}"}) as tool:
                    pass
                with spanledger.agent_run("coder") as coder:
                    with spanledger.llm_call("gpt-4o", provider="openai") as llm2:
                        llm2.set_usage(input_tokens=2000, output_tokens=500)
            event = spanledger.product_event("page_viewed", user_id=f"user-{t % 2}")
        sent.append({"trace": run.ref.trace_id, "planner": run.ref.span_id, "llm": llm.ref.span_id,
                     "tool": tool.ref.span_id, "coder": coder.ref.span_id, "llm2": llm2.ref.span_id,
                     "event": event.span_id if event else None, "t": t})
    assert spanledger.force_flush(30_000)
    spanledger.shutdown()
    print(json.dumps(sent))
""")


def send_workload(grpc_address: str, traces: int, tag: str = "a", token: str = "") -> list[dict]:
    """Run the workload in a child process (spanledger.configure is once per process); return the ids it made."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run([sys.executable, "-c", WORKLOAD, f"http://{grpc_address}", token, str(traces), tag],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


SPANS_PER_TRACE = 6  # planner, llm, tool, coder, llm2 (one trace) + the product event (a trace of its own)


def llm_cost(input_tokens: int, output_tokens: int) -> Decimal:
    return input_tokens * GPT4O_INPUT + output_tokens * GPT4O_OUTPUT
