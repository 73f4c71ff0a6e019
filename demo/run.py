"""``spanledger demo``: a real collector, a simulated agent team, and what it cost — in one command.

1. starts a collector in this process on the embedded store (a temporary
   directory unless ``--data-dir``), listening on a free loopback port;
2. configures the real instrumentation against it (real OTLP/gRPC) and runs
   the simulated workload of :mod:`.demo_workload`, plus a few spans from a
   plain OpenTelemetry SDK in other conventions (OpenInference, OpenLLMetry,
   older GenAI spellings) that the collector normalizes and prices itself;
3. waits until every span sent is stored, then prints spend by model and by
   agent, tokens, the costliest traces and one trace as a tree — all plain SQL
   on the store, the same SQL a user can run with ``spanledger sql``.

No network beyond loopback, no API key, no model call.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from . import render
from .report import Report
from .workload import SimClock, SpanCounter, Workload

CONFIG = "processors:\n  batch:\n    timeout: 200ms\n"
RUN_ATTRIBUTE = "spanledger.demo.run"
SIMULATED_SPAN_S = 30 * 60  # the workload is laid out over the last half hour (per unit of scale)


class DemoFailed(Exception):
    pass


def run_demo(data_dir: str | None, scale: int) -> int:
    """Run the demo; 0 on success, 1 (with a message on stderr) on failure."""
    if scale < 1 or scale > 1000:
        print("spanledger demo: --scale must be between 1 and 1000", file=sys.stderr)
        return 1
    temporary = tempfile.TemporaryDirectory(prefix="spanledger-demo-") if data_dir is None else None
    path = Path(temporary.name if temporary else data_dir).resolve()
    try:
        with _quiet_collector_logs():
            _run(path, scale, keep=temporary is None)
        return 0
    except DemoFailed as exc:
        print(f"\nspanledger demo: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a demo must end with a message, not a traceback
        logging.getLogger(__name__).debug("demo failed", exc_info=True)
        print(f"\nspanledger demo: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        if temporary is not None:
            temporary.cleanup()


@contextmanager
def _quiet_collector_logs():
    """The collector's INFO lines would break the progress bar; warnings still show."""
    logger = logging.getLogger("spanledger.collector")
    saved = logger.level
    if logger.getEffectiveLevel() > logging.DEBUG:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(saved)


def _start_collector(path: Path):
    from spanledger.collector.app import Collector, Overrides
    from spanledger.collector.cli import running_collector_api
    from spanledger.collector.config import load_config
    from spanledger.collector.store import StoreUnavailable

    api = running_collector_api(path)
    if api:  # the embedded store admits one process, and two collectors must not share a WAL
        raise DemoFailed(f"a collector is already running on {path} (its API: {api}); stop it or pick another "
                         "--data-dir")
    collector = Collector(load_config(text=CONFIG),
                          Overrides(grpc_endpoint="127.0.0.1:0", api_endpoint="127.0.0.1:0", data_dir=str(path)))
    try:
        collector.start()
    except (StoreUnavailable, OSError) as exc:
        collector.stop(5)
        raise DemoFailed(f"cannot start the collector on {path}: {exc}") from exc
    deadline = time.monotonic() + 15
    while collector.store() is None:
        if time.monotonic() > deadline:
            collector.stop(5)
            raise DemoFailed(f"the store did not come up: {collector.store_error}")
        time.sleep(0.05)
    return collector


def _foreign_provider(endpoint: str, run_id: str):
    """A plain OTel SDK pipeline, as another team's service would have: not spanledger's."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    counter = SpanCounter()
    provider = TracerProvider(resource=Resource.create({"service.name": "docs-rag-service", RUN_ATTRIBUTE: run_id}),
                              shutdown_on_exit=False)
    provider.add_span_processor(counter)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True),
                                                   schedule_delay_millis=200))
    return provider, counter


def _run(path: Path, scale: int, keep: bool) -> None:
    import spanledger

    out = sys.stdout
    run_id = os.urandom(6).hex()
    print("spanledger demo — a simulated AI agent team, traced through a real collector\n", file=out)
    collector = _start_collector(path)
    foreign, configured = None, False
    try:
        address = collector.server.address
        print(f"  collector  OTLP/gRPC on {address}, storing into {collector.store_config.describe()}", file=out)
        counter = SpanCounter()
        settings = spanledger.configure(
            service_name="acme-agents", endpoint=f"http://{address}", insecure=True, schedule_delay_millis=200,
            resource_attributes={RUN_ATTRIBUTE: run_id, "deployment.environment.name": "demo"},
            span_processors=[counter])
        if settings is not None and settings.disabled:
            raise DemoFailed("OTEL_SDK_DISABLED is set, so no span would be recorded: unset it to run the demo")
        if settings is None or settings.endpoint.rstrip("/") != f"http://{address}":
            raise DemoFailed("spanledger is already configured in this process for another endpoint (or its set-up "
                             "failed, see the log above); the demo needs its own pipeline")
        configured = True
        foreign, foreign_counter = _foreign_provider(f"http://{address}", run_id)
        before = spanledger.stats()  # counters are per process: compare this run's deltas

        clock = SimClock(time.time_ns() - SIMULATED_SPAN_S * scale * 1_000_000_000)
        bar = render.ProgressBar(1)
        workload = Workload(clock, scale=scale, on_progress=lambda done, total: bar.update(
            done, f"{done}/{total} jobs · {counter.ended + foreign_counter.ended:,} spans"))
        bar.total = workload.total_units
        print(f"  workload   {workload.n_tickets} tickets worked by orchestrator, planner, coder, reviewer and "
              f"security agents · {workload.n_conversations} support chats · product analytics · scale {scale}\n",
              file=out, flush=True)
        started = time.monotonic()
        with clock.installed():
            workload.run()
            send_foreign_spans(foreign.get_tracer("openinference.instrumentation.openai"), clock, workload.rng, scale)
            workload.done_units += 1
        sent_s = time.monotonic() - started
        expected = counter.ended + foreign_counter.ended
        bar.finish(f"{workload.total_units}/{workload.total_units} jobs · {expected:,} spans")

        if not spanledger.force_flush(30_000) or not foreign.force_flush(30_000):
            raise DemoFailed("the exporters could not deliver every span within 30 s")
        stats = spanledger.stats()
        dropped, failed = stats.spans_dropped - before.spans_dropped, stats.spans_failed - before.spans_failed
        if dropped or failed:
            raise DemoFailed(f"the instrumentation dropped {dropped} spans and failed to export {failed}")
        print(f"  {expected:,} spans sent ({counter.ended:,} via spanledger, {foreign_counter.ended} from a plain "
              f"OTel SDK in OpenInference/OpenLLMetry/GenAI-v1 conventions) in {sent_s:.1f} s", file=out)
        waited = _wait_until_stored(collector, expected, run_id, timeout_s=60 + 5 * scale)
        print(f"  {expected:,} spans stored in ClickHouse {waited:.1f} s after the last one was sent", file=out)

        report = Report(collector.store(), collector.store_config.options.database,
                        collector.store_config.options.traces_table, run_id)
        out.write(report.render())
        out.write(_hints(path, keep, report))
        out.flush()
    finally:
        if configured:
            spanledger.shutdown()
        if foreign is not None:
            foreign.shutdown()
        collector.stop(30)


def _wait_until_stored(collector, expected: int, run_id: str, timeout_s: float) -> float:
    """Until the WAL is drained and a count() on the store sees every span this run sent."""
    options = collector.store_config.options
    sql = (f"SELECT count() FROM {options.database}.{options.traces_table} "
           f"WHERE ResourceAttributes['{RUN_ATTRIBUTE}'] = {{run:String}}")
    started = time.monotonic()
    last_segments, stored = -1, 0
    while True:
        snapshot = collector.stats_snapshot()
        if snapshot["spans_rejected"]:
            raise DemoFailed(f"the collector rejected {snapshot['spans_rejected']} spans")
        stored = int(collector.store().query(sql, {"run": run_id}).result_rows[0][0])
        settled = snapshot["wal_unstored_bytes"] == 0 and snapshot["segments_stored"] == last_segments
        if stored == expected and settled:
            return time.monotonic() - started
        if stored > expected:
            raise DemoFailed(f"the store holds {stored} spans of this run but {expected} were sent")
        if time.monotonic() - started > timeout_s:
            problem = snapshot["last_store_error"] or snapshot["store_error"] or "no error reported"
            raise DemoFailed(f"only {stored} of {expected} spans were stored after {timeout_s:.0f} s ({problem})")
        last_segments = snapshot["segments_stored"]
        time.sleep(0.1)


def _hints(path: Path, keep: bool, report: Report) -> str:
    db = report.db
    where = f" --data-dir {path}" if keep else " --data-dir ./spanledger-demo"
    lines = [render.heading("Query it yourself")]
    if not keep:
        lines.append("  This run's store was temporary and is gone; keep one with "
                     "`spanledger demo --data-dir ./spanledger-demo`, then:")
    else:
        lines.append(f"  Everything above is in {path}:")
    lines += [
        f"  spanledger sql \"SELECT Model, sum(TotalCost) AS usd FROM {db}.spanledger_usage_hourly "
        f"GROUP BY Model ORDER BY usd DESC\"{where}",
        f"  spanledger sql \"SELECT SpanName, Duration/1e6 AS ms, TotalCost FROM {db}.{report.table} "
        f"WHERE TraceId = '{report.shown_trace or '<trace id>'}' ORDER BY Timestamp\"{where}",
    ]
    return "\n".join(lines) + "\n"


def send_foreign_spans(tracer, clock: SimClock, rng, scale: int = 1) -> int:
    """Spans as other instrumentations write them; the collector normalizes and prices them itself.

    Returns how many spans were ended (a plain OTel SDK tracer, not spanledger's).
    """
    from opentelemetry.trace import SpanKind

    ended = 0
    for i in range(scale):
        clock.now -= 600_000_000_000  # ten minutes earlier than the last workload span
        # OpenInference (Arize Phoenix / OpenInference instrumentors): a RAG chain.
        with tracer.start_as_current_span("rag_query", attributes={
                "openinference.span.kind": "CHAIN", "session.id": f"oi-sess-{i}", "user.id": "user_3001"}):
            with tracer.start_as_current_span("retrieve", attributes={"openinference.span.kind": "RETRIEVER"}):
                clock.advance(rng.uniform(60, 250))
            prompt, cached = rng.randint(1500, 2500), 1024
            with tracer.start_as_current_span("ChatCompletion", kind=SpanKind.CLIENT, attributes={
                    "openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini-2024-07-18",
                    "llm.provider": "openai",
                    "llm.token_count.prompt": prompt, "llm.token_count.completion": 180,
                    "llm.token_count.total": prompt + 180, "llm.token_count.prompt_details.cache_read": cached}):
                clock.advance(rng.uniform(900, 2000))
        # OpenLLMetry / Traceloop: a workflow around an Anthropic call.
        with tracer.start_as_current_span("summarize_docs.workflow", attributes={
                "traceloop.span.kind": "workflow", "traceloop.entity.name": "summarize_docs"}):
            prompt = rng.randint(4500, 6000)
            with tracer.start_as_current_span("anthropic.chat", kind=SpanKind.CLIENT, attributes={
                    "gen_ai.system": "Anthropic", "gen_ai.request.model": "claude-3-5-haiku-20241022",
                    "llm.usage.prompt_tokens": prompt, "llm.usage.completion_tokens": 340,
                    "gen_ai.usage.cache_read_input_tokens": 4096}):
                clock.advance(rng.uniform(1200, 2500))
        # The GenAI conventions in their older spellings (gen_ai.system, prompt/completion tokens).
        with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.usage.prompt_tokens": rng.randint(800, 1200),
                "gen_ai.usage.completion_tokens": 120}):
            clock.advance(rng.uniform(700, 1500))
        ended += 6
    return ended
