"""What instrumentation costs the agent: span overhead, token counting, bursts.

Run: .venv/bin/python bench/bench_instrumentation.py [--quick]

Measured in ONE process, interleaved round by round so machine drift hits every
variant alike, and reported as ratios to a bare OTel SDK span:

* bare      — OTel SDK span, N attributes, BatchSpanProcessor + no-op exporter;
* activity  — ``spanledger.activity`` with the same N attributes, spanledger's
              own pipeline (association processor + counting batch processor)
              with the same no-op exporter (target <= 1.3x);
* llm       — ``spanledger.llm_call`` with provider usage and a provided cost,
              vs a bare span with as many attributes as it ends with (target <= 2x);
* llm+price — the same, cost computed from the price book;
* llm+count — no usage given: tokens counted from a 2 KB prompt and the output;
* token counting throughput (MB/s of text) for o200k_base and cl100k_base;
* burst     — 10k spans/s paced from one process, default configuration,
              real OTLP/gRPC export to a sink in another process: drops counted.

Prints a table and writes bench/results/instrumentation.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import spanledger
from spanledger.tokens import count_tokens

RESULTS = Path(__file__).parent / "results" / "instrumentation.json"
N_ATTRIBUTES = 12
WORDS = (
    "the agent plan tool call result error retry budget token cost model user project ticket deploy database "
    "query endpoint summarise revenue churn customer invoice latency throughput memory context window cache "
    "reasoning step observe act function argument schema json value list report quarterly metrics growth"
).split()


class NoOpExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def realistic_text(rng: random.Random, size: int) -> str:
    """English-like prose with numbers, punctuation, code and JSON fragments (not one repeated phrase)."""
    parts: list[str] = []
    length = 0
    while length < size:
        kind = rng.random()
        if kind < 0.75:
            sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 18)))
            piece = sentence.capitalize() + rng.choice([".", ".", "?", "!", ";"]) + " "
        elif kind < 0.9:
            piece = json.dumps({rng.choice(WORDS): rng.randint(0, 10**6), "items": rng.sample(WORDS, 3)}) + "\n"
        else:
            piece = f"def {rng.choice(WORDS)}_{rng.randint(1, 99)}(x):\n    return x * {rng.random():.3f}\n"
        parts.append(piece)
        length += len(piece)
    return "".join(parts)[:size]


def per_span_us(fn: Callable[[], None], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def span_overhead(rounds: int, batch: int) -> dict[str, float]:
    rng = random.Random(1)
    prompt = realistic_text(rng, 500)
    bare_attrs = {f"attr.{i}": f"value-{i}" for i in range(N_ATTRIBUTES - 1)}
    bare_attrs["prompt"] = prompt
    activity_attrs = dict(list(bare_attrs.items())[1:])  # + spanledger.activity.type = N attributes
    long_prompt = realistic_text(rng, 2048)

    bare_provider = TracerProvider(shutdown_on_exit=False)
    bare_provider.add_span_processor(BatchSpanProcessor(NoOpExporter(), max_queue_size=65536))
    bare = bare_provider.get_tracer("bench")
    spanledger.configure(service_name="bench", exporter=NoOpExporter(), set_global_provider=False)

    def llm_provided() -> None:
        with spanledger.llm_call("gpt-4o", provider="openai") as call:
            call.set_response(model="gpt-4o-2024-08-06")
            call.set_usage(input_tokens=1200, output_tokens=300, cache_read_tokens=1024)
            call.set_cost("0.004810", input_usd="0.001810", output_usd="0.003")

    def llm_priced() -> None:
        with spanledger.llm_call("gpt-4o", provider="openai") as call:
            call.set_response(model="gpt-4o-2024-08-06")
            call.set_usage(input_tokens=1200, output_tokens=300, cache_read_tokens=1024)

    def llm_counted() -> None:
        with spanledger.llm_call("gpt-4o", provider="openai", prompt=long_prompt) as call:
            call.set_output("The quarterly revenue grew 12% while churn fell to 3.1%.")

    llm_provided()  # learn how many attributes an LLM span ends with
    llm_attr_count = _last_attribute_count(llm_provided)
    bare_llm_attrs = {f"attr.{i}": f"value-{i}" for i in range(llm_attr_count)}

    def bare_span() -> None:
        with bare.start_as_current_span("op", attributes=bare_attrs):
            pass

    def bare_llm_span() -> None:
        with bare.start_as_current_span("chat gpt-4o", attributes=bare_llm_attrs):
            pass

    def activity_span() -> None:
        with spanledger.activity("op", attributes=activity_attrs):
            pass

    variants: dict[str, Callable[[], None]] = {
        "bare": bare_span,
        "activity": activity_span,
        "bare_llm": bare_llm_span,
        "llm_provided": llm_provided,
        "llm_priced": llm_priced,
        "llm_counted": llm_counted,
    }
    for fn in variants.values():  # warm up caches (price book, encodings)
        per_span_us(fn, 200)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            samples[name].append(per_span_us(fn, batch if name != "llm_counted" else max(batch // 10, 20)))
        time.sleep(0.02)  # let the export threads drain between rounds
    spanledger.shutdown()
    bare_provider.shutdown()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    medians["llm_attribute_count"] = llm_attr_count
    return medians


def _last_attribute_count(make_span: Callable[[], None]) -> int:
    from spanledger.testing import capture_spans

    with capture_spans() as captured:
        make_span()
        return len(captured.spans()[0].attributes)


def token_throughput(seconds: float) -> dict[str, float]:
    rng = random.Random(2)
    prompts = [realistic_text(rng, 2048) for _ in range(200)]
    size = sum(len(p.encode()) for p in prompts)
    out = {}
    for model, encoding in (("gpt-4o", "o200k_base"), ("gpt-4", "cl100k_base")):
        count_tokens(prompts[0], model)  # load the vocabulary
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for prompt in prompts:
                count_tokens(prompt, model)
            done += size
        out[encoding] = done / (time.perf_counter() - start) / 1e6
    return out


def _sink(port_queue: multiprocessing.Queue, count_value) -> None:  # type: ignore[type-arg]
    """An OTLP TraceService that parses nothing: counts spans cheaply and answers OK."""
    from concurrent import futures

    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    def export(request_bytes: bytes, context) -> bytes:
        request = trace_service_pb2.ExportTraceServiceRequest.FromString(request_bytes)
        n = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        with count_value.get_lock():
            count_value.value += n
        return b""

    handler = grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.trace.v1.TraceService",
        {"Export": grpc.unary_unary_rpc_method_handler(export)},
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=[("grpc.max_receive_message_length", 64 << 20)])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    port_queue.put(port)
    server.wait_for_termination()


def burst(rate: int, seconds: float, max_queue_size: int | None = None) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    ports: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    received = ctx.Value("q", 0)
    sink = ctx.Process(target=_sink, args=(ports, received), daemon=True)
    sink.start()
    port = ports.get(timeout=60)
    before = spanledger.stats()
    spanledger.configure(
        service_name="burst", endpoint=f"http://127.0.0.1:{port}", max_queue_size=max_queue_size, set_global_provider=False
    )
    total = int(rate * seconds)
    interval = 1.0 / rate
    start = time.perf_counter()
    for i in range(total):
        target = start + i * interval
        while time.perf_counter() < target:
            pass
        with spanledger.llm_call("gpt-4o", provider="openai") as call:
            call.set_usage(input_tokens=1200, output_tokens=300)
    produce_s = time.perf_counter() - start
    peak_queue = spanledger.stats().spans_queued
    flush_start = time.perf_counter()
    spanledger.force_flush(120_000)
    drain_s = time.perf_counter() - flush_start
    spanledger.shutdown()
    after = spanledger.stats()
    deadline = time.time() + 10
    while received.value < after.spans_exported - before.spans_exported and time.time() < deadline:
        time.sleep(0.05)
    sink.terminate()
    return {
        "max_queue_size": max_queue_size or "default (65536)",
        "spans": total,
        "target_rate": rate,
        "achieved_rate": total / produce_s,
        "queue_at_end_of_burst": peak_queue,
        "drain_seconds": drain_s,
        "dropped": after.spans_dropped - before.spans_dropped,
        "failed": after.spans_failed - before.spans_failed,
        "exported": after.spans_exported - before.spans_exported,
        "received_by_sink": received.value,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    args = parser.parse_args()
    rounds, batch = (5, 500) if args.quick else (25, 2000)

    overhead = span_overhead(rounds, batch)
    tokens = token_throughput(0.5 if args.quick else 2.0)
    bursts = burst(10_000, 1.0 if args.quick else 3.0)
    sdk_default_queue = burst(10_000, 1.0 if args.quick else 3.0, max_queue_size=2048)

    ratios = {
        "activity_vs_bare": overhead["activity"] / overhead["bare"],
        "llm_provided_vs_bare": overhead["llm_provided"] / overhead["bare_llm"],
        "llm_priced_vs_bare": overhead["llm_priced"] / overhead["bare_llm"],
        "llm_counted_vs_bare": overhead["llm_counted"] / overhead["bare_llm"],
    }
    rows = [
        ("bare OTel span, %d attrs" % N_ATTRIBUTES, overhead["bare"], 1.0, ""),
        ("spanledger.activity, %d attrs" % N_ATTRIBUTES, overhead["activity"], ratios["activity_vs_bare"], "<= 1.3"),
        ("bare OTel span, %d attrs" % overhead["llm_attribute_count"], overhead["bare_llm"], 1.0, ""),
        ("llm_call, provided usage + cost", overhead["llm_provided"], ratios["llm_provided_vs_bare"], "<= 2.0"),
        ("llm_call, computed cost", overhead["llm_priced"], ratios["llm_priced_vs_bare"], ""),
        ("llm_call, tokens counted (2 KB prompt)", overhead["llm_counted"], ratios["llm_counted_vs_bare"], ""),
    ]
    print(f"\n{'variant':44} {'µs/span':>9} {'ratio':>7}  target")
    for name, us, ratio, target in rows:
        print(f"{name:44} {us:9.2f} {ratio:7.2f}  {target}")
    print(f"\ntoken counting: o200k_base {tokens['o200k_base']:.1f} MB/s, cl100k_base {tokens['cl100k_base']:.1f} MB/s")
    for label, result in (("burst, default config", bursts), ("burst, SDK default queue 2048", sdk_default_queue)):
        print(
            f"{label}: {result['spans']} LLM spans at {result['target_rate']}/s target, "
            f"achieved {result['achieved_rate']:.0f}/s; queue at end {result['queue_at_end_of_burst']}, "
            f"drained in {result['drain_seconds']:.1f} s; dropped {result['dropped']}, failed {result['failed']}, "
            f"received by sink {result['received_by_sink']}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()},
                "rounds": rounds,
                "batch": batch,
                "attributes": N_ATTRIBUTES,
                "us_per_span_median": overhead,
                "ratios": ratios,
                "token_counting_mb_per_s": tokens,
                "burst": bursts,
                "burst_with_sdk_default_queue": sdk_default_queue,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
