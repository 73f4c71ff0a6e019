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
from .demo_report import Report
from .demo_workload import SimClock, SpanCounter, Workload, send_foreign_spans

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
    from .app import Collector, Overrides
    from .config import load_config
    from .store import StoreUnavailable

    collector = Collector(load_config(text=CONFIG),
                          Overrides(grpc_endpoint="127.0.0.1:0", api_endpoint="127.0.0.1:0", data_dir=str(path)))
    try:
        collector.start()
    except (StoreUnavailable, OSError) as exc:
        collector.stop(5)
        raise DemoFailed(f"cannot start the collector on {path}: {exc}") from exc
    deadline = time.monotonic() + 30
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
    foreign = None
    try:
        address = collector.server.address
        print(f"  collector  OTLP/gRPC on {address}, storing into {collector.store_config.describe()}", file=out)
        counter = SpanCounter()
        settings = spanledger.configure(
            service_name="acme-agents", endpoint=f"http://{address}", insecure=True, schedule_delay_millis=200,
            resource_attributes={RUN_ATTRIBUTE: run_id, "deployment.environment.name": "demo"},
            span_processors=[counter])
        if settings is None or settings.disabled or settings.endpoint.rstrip("/") != f"http://{address}":
            raise DemoFailed("spanledger is disabled (OTEL_SDK_DISABLED) or already configured in this process "
                             "for another endpoint; the demo needs its own pipeline")
        foreign, foreign_counter = _foreign_provider(f"http://{address}", run_id)

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
            tally = workload.run()
            tally.foreign_spans = send_foreign_spans(foreign.get_tracer("openinference.instrumentation.openai"),
                                                     clock, workload.rng, scale)
            workload.done_units += 1
        sent_s = time.monotonic() - started
        expected = counter.ended + foreign_counter.ended
        bar.finish(f"{workload.total_units}/{workload.total_units} jobs · {expected:,} spans")

        if not spanledger.force_flush(30_000) or not foreign.force_flush(30_000):
            raise DemoFailed("the exporters could not deliver every span within 30 s")
        stats = spanledger.stats()
        if stats.spans_dropped or stats.spans_failed:
            raise DemoFailed(f"the instrumentation dropped {stats.spans_dropped} and failed to export "
                             f"{stats.spans_failed} spans")
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
