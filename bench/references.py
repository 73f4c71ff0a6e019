"""The references the collector's ingest rate is divided by, measured on the same spans.

Each runs in a fresh process (the embedded engine opens one data directory per
process, and a fresh process keeps CPU accounting clean):

* ``decode_only``: ``ExportTraceServiceRequest.ParseFromString`` of the very
  requests sent, in one Python process: what any Python receiver that decodes
  pays before doing anything else.
* ``pipeline_insert``: the store's own load path without the collector: the
  same requests written as WAL segments (same record format and segment size
  as the collector's WAL) and loaded with ``Store.load_segment`` into a fresh
  store, prices already resolved.  ClickHouse decodes, normalizes, prices and
  writes the rows, trace-id lookup and rollups: everything but receive + WAL.
* ``flat_insert``: the *raw insert of the same spans*: the rows the pipeline
  produced, exported as Native files (one per segment) and inserted into a
  fresh store's ``otel_traces`` (with its lookup and rollup views, as in
  production), one INSERT per segment.  No decoding, normalization or pricing.
"""

from __future__ import annotations

import inspect
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path


def in_fresh_process(fn, *args):
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as ex:
        return ex.submit(fn, *args).result()


def _cpu() -> float:
    return time.process_time()  # all threads of this process, the engine's included


def decode_only(templates: list[bytes], n_requests: int) -> dict:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from bench.payloads import Template

    pool = [Template(t) for t in templates]
    bodies = [pool[i % len(pool)].stamp(i + 1) for i in range(min(n_requests, 64))]
    spans = 0
    t0, c0 = time.perf_counter(), _cpu()
    for i in range(n_requests):
        req = ExportTraceServiceRequest()
        req.ParseFromString(bodies[i % len(bodies)])
        spans += pool[i % len(pool)].spans
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    return {"spans": spans, "seconds": round(wall, 3), "spans_per_s": round(spans / wall, 1),
            "cpu_s": round(cpu, 3), "cpu_us_per_span": round(cpu / spans * 1e6, 3)}


def _segment_limits() -> tuple[int, int]:
    from spanledger.collector.wal import WriteAheadLog

    params = inspect.signature(WriteAheadLog.__init__).parameters
    return params["segment_max_spans"].default, params["segment_max_bytes"].default


def _open_store(data_dir: Path):
    from spanledger.collector.store import Store, StoreConfig, migrate

    store = Store(StoreConfig(data_dir=data_dir))
    migrate(store.writer, store.options)
    return store


def pipeline_insert(templates: list[bytes], n_requests: int, workdir: str, nonce: int = 7) -> dict:
    from spanledger.collector.pricing.lookup import CollectorPricing
    from spanledger.collector.wal import encode_record
    from spanledger.pricing import default_price_book

    from bench.payloads import Template

    work = Path(workdir)
    shutil.rmtree(work, ignore_errors=True)
    (work / "segments").mkdir(parents=True)
    pool = [Template(t) for t in templates]
    max_spans, max_bytes = _segment_limits()

    # Segments as the collector's WAL seals them: by span count or size, whichever first.
    segments, ranges, buf, n_spans, lo = [], [], [], 0, 1
    for i in range(n_requests + len(pool)):  # the first len(pool) requests are the warm-up segment
        tpl = pool[i % len(pool)]
        buf.append(encode_record(tpl.stamp(i + 1, nonce=nonce), ""))
        n_spans += tpl.spans
        last = i == n_requests + len(pool) - 1
        if i == len(pool) - 1 or n_spans + tpl.spans > max_spans or sum(map(len, buf)) + len(buf[-1]) > max_bytes or last:
            path = work / "segments" / f"{len(segments):06d}.wal"
            path.write_bytes(b"".join(buf))
            segments.append((path, n_spans))
            ranges.append((lo, i + 2))  # copy ids [lo, hi)
            buf, n_spans, lo = [], 0, i + 2

    store = _open_store(work / "store")
    pricing = CollectorPricing(store, default_price_book())
    # steady state: every model of the payload already priced (the collector publishes before each load)
    from spanledger.collector.pricing.pairs import model_pairs

    pricing.publish_pairs(set().union(*(model_pairs(path.read_bytes()) for path, _ in segments)))
    store.load_segment(segments[0][0], "warmup")

    t0, c0 = time.perf_counter(), _cpu()
    for n, (path, _) in enumerate(segments[1:], 1):
        store.load_segment(path, f"seg-{n}")
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    spans = sum(s for _, s in segments[1:])
    staged = store.write_query("SELECT countIf(CostSource = 'pending') FROM spanledger.otel_traces").result_rows[0][0]
    stored = store.write_query("SELECT count() FROM spanledger.otel_traces").result_rows[0][0]

    breakdown = _pipeline_breakdown(store, [p for p, _ in segments[1:]], spans)

    # Export each timed segment's rows for flat_insert.
    exports = []
    for n, (lo, hi) in enumerate(ranges[1:], 1):
        out = work / "native" / f"{n:06d}.native"
        out.parent.mkdir(exist_ok=True)
        store.command(
            f"INSERT INTO FUNCTION file('{out}', 'Native') SELECT * FROM spanledger.otel_traces "
            f"WHERE substring(TraceId, 1, 16) >= '{(nonce << 32) | lo:016x}' AND substring(TraceId, 1, 16) < '{(nonce << 32) | hi:016x}'")
        exports.append(str(out))
    store.close()
    return {"spans": spans, "segments": len(segments) - 1, "segment_max_spans": max_spans,
            "seconds": round(wall, 3), "spans_per_s": round(spans / wall, 1), "cpu_s": round(cpu, 3),
            "cpu_us_per_span": round(cpu / spans * 1e6, 3), "stored_total": int(stored), "left_unpriced": int(staged),
            "breakdown": breakdown, "native_files": exports}


def _pipeline_breakdown(store, paths: list[Path], spans: int) -> dict:
    """Where the pipeline's time goes: the same segments into (a) a Null copy of the raw
    table (ClickHouse's Protobuf decoding only), (b) the same plus a copy of the flatten
    view into a Null table (decoding + normalization).  The rest of the full pipeline is
    pricing + writing the rows, the trace-id lookup and the rollups."""
    db = "spanledger"
    for t in ("bench_raw_null", "bench_raw2", "bench_flat_null"):
        store.command(f"DROP TABLE IF EXISTS {db}.{t}")
    store.command(f"DROP VIEW IF EXISTS {db}.bench_flatten_mv")
    store.command(f"CREATE TABLE {db}.bench_raw_null AS {db}.spanledger_otlp_raw ENGINE = Null")
    store.command(f"CREATE TABLE {db}.bench_raw2 AS {db}.spanledger_otlp_raw ENGINE = Null")
    store.command(f"CREATE TABLE {db}.bench_flat_null AS {db}.spanledger_spans_ingest ENGINE = Null")
    ddl = store.write_query(f"SELECT create_table_query FROM system.tables WHERE database = '{db}' "
                            "AND name = 'spanledger_flatten_mv'").result_rows[0][0]
    ddl = (ddl.replace(f"{db}.spanledger_flatten_mv", f"{db}.bench_flatten_mv")
              .replace(f"TO {db}.spanledger_spans_ingest", f"TO {db}.bench_flat_null")
              .replace(f"FROM {db}.spanledger_otlp_raw", f"FROM {db}.bench_raw2"))
    store.command(ddl)
    # the previous view's normalization (bench/reference_sql/flatten_mv_previous.sql) on the same segments
    from bench.bench_normalize import PREVIOUS_VIEW, _view_into, rendered_view

    previous = _view_into(store, "previous", rendered_view(store, PREVIOUS_VIEW))
    out = {}
    for label, table in (("clickhouse_decode_only", "bench_raw_null"), ("decode_and_normalize", "bench_raw2"),
                         ("decode_and_previous_normalize", previous)):
        t0, c0 = time.perf_counter(), _cpu()
        for n, path in enumerate(paths):
            store.command(f"INSERT INTO {db}.{table} FROM INFILE '{path}' FORMAT Protobuf",
                          settings=store._protobuf_settings(f"{label}-{n}"))
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
        out[label] = {"spans_per_s": round(spans / wall, 1), "cpu_us_per_span": round(cpu / spans * 1e6, 3)}
    return out


def flat_insert(native_files: list[str], workdir: str) -> dict:
    work = Path(workdir)
    shutil.rmtree(work, ignore_errors=True)
    store = _open_store(work / "store")
    t0, c0 = time.perf_counter(), _cpu()
    for path in native_files:
        store.command(f"INSERT INTO spanledger.otel_traces FROM INFILE '{path}' FORMAT Native")
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    spans = int(store.write_query("SELECT count() FROM spanledger.otel_traces").result_rows[0][0])
    store.close()
    return {"spans": spans, "inserts": len(native_files), "seconds": round(wall, 3), "spans_per_s": round(spans / wall, 1),
            "cpu_s": round(cpu, 3), "cpu_us_per_span": round(cpu / spans * 1e6, 3)}


if __name__ == "__main__":  # the references alone, for a quick look
    import json
    import sys
    import tempfile

    from bench.payloads import make_pool

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    tpls = [t.data for t in make_pool(8)]
    with tempfile.TemporaryDirectory() as d:
        print("decode", json.dumps(in_fresh_process(decode_only, tpls, n)))
        p = in_fresh_process(pipeline_insert, tpls, n, d + "/pipe")
        files = p.pop("native_files")
        print("pipeline", json.dumps(p))
        print("flat", json.dumps(in_fresh_process(flat_insert, files, d + "/flat")))
