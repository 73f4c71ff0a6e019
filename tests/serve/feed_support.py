"""Helpers for feed and budget tests: the routers in a FastAPI app on a real uvicorn (port 0), spans sent
with the real OpenTelemetry SDK to a real collector, and a small SSE reader over httpx streaming."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "collector"))

import httpx  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402

from collector_support import token_config  # noqa: E402
from serve_support import router_app  # noqa: E402
from conftest_collector import collector, collector_factory  # noqa: E402,F401 - fixtures for the test modules

from spanledger.collector.serve.uvicorn_thread import UvicornThread  # noqa: E402

OPERATOR = "operator-token-0123456789"
ACME = "acme-token-0123456789abc"
GLOBEX = "globex-token-0123456789ab"
TENANT_CONFIG = token_config(operators=(OPERATOR,), tenants={"acme": ACME, "globex": GLOBEX})


def feed_app(collector, routers=None) -> FastAPI:
    """The feed and budgets routers (or ``routers``, modules exporting ``router``) over ``collector``."""
    from spanledger.collector.serve import budgets, feed

    return router_app(collector, *(module.router for module in routers or (feed, budgets)))


def feed_server(app: FastAPI) -> UvicornThread:
    """The product's uvicorn thread on 127.0.0.1:0, started.  Streams still open at ``stop`` are cut
    after 1 s, so a test's teardown does not wait out the product's 5 s."""
    return UvicornThread(app, "127.0.0.1:0", name="feed-test-api", graceful_shutdown_s=1).start()


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``with serving(feed_app(collector)) as url:`` a real server for the block, stopped after it."""
    server = feed_server(app)
    try:
        yield server.url
    finally:
        server.stop()


def headers(token: str | None = OPERATOR, **extra) -> dict[str, str]:
    out = {"Authorization": f"Bearer {token}"} if token else {}
    out.update(extra)
    return out


class SpanSender:
    """The real OpenTelemetry SDK exporting to the collector over OTLP/gRPC."""

    def __init__(self, collector, token: str | None = OPERATOR, service: str = "feed-tests",
                 batch_size: int = 2000) -> None:
        metadata = (("authorization", f"Bearer {token}"),) if token else None
        exporter = OTLPSpanExporter(endpoint=collector.server.address, insecure=True, headers=metadata)
        self.provider = TracerProvider(resource=Resource.create({"service.name": service}))
        self.provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=100_000,
                                                            max_export_batch_size=batch_size, schedule_delay_millis=50))
        self.tracer = self.provider.get_tracer("spanledger-feed-tests")

    def llm_call(self, *, agent: str = "planner", project: str = "p-1", model: str = "gpt-4o",
                 input_tokens: int = 100, output_tokens: int = 20, activity_type: str = "llm_call",
                 cost: str | None = None, name: str = "chat", user: str = "u-1", start_ns: int | None = None) -> None:
        attributes = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": model,
                      "gen_ai.agent.name": agent, "spanledger.project.id": project, "spanledger.user.id": user,
                      "spanledger.activity.type": activity_type, "gen_ai.usage.input_tokens": input_tokens,
                      "gen_ai.usage.output_tokens": output_tokens}
        if cost is not None:
            attributes["spanledger.cost.total_usd"] = cost
        span = self.tracer.start_span(name, attributes=attributes, start_time=start_ns)
        span.end(end_time=(start_ns + 5_000_000) if start_ns else None)

    def flush(self) -> None:
        assert self.provider.force_flush(30_000), "the SDK could not export every span"

    def close(self) -> None:
        self.provider.shutdown()


@dataclass
class SseEvent:
    kind: str
    data: dict
    id: str | None = None


@dataclass
class SseReader:
    """Reads one SSE stream with httpx; ``events`` fills as they arrive."""

    response: httpx.Response
    events: list[SseEvent] = field(default_factory=list)
    ended: bool = False

    async def run(self) -> None:
        kind, data, event_id = "message", [], None
        try:
            async for line in self.response.aiter_lines():
                if line == "":
                    if data:
                        self.events.append(SseEvent(kind, json.loads("\n".join(data)), event_id))
                    kind, data, event_id = "message", [], None
                elif line.startswith(":") or line.startswith("retry:"):
                    continue
                else:
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "event":
                        kind = value
                    elif name == "data":
                        data.append(value)
                    elif name == "id":
                        event_id = value
        except (httpx.ReadError, httpx.RemoteProtocolError):
            pass
        self.ended = True

    def of(self, kind: str) -> list[SseEvent]:
        return [e for e in self.events if e.kind == kind]


async def wait_for(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)
