"""What the flatten view's normalization costs per span: the current view against the previous one, in one engine.

Why: normalization (spanledger_flatten_mv) was the largest single item of the
store path (8-14 us/span).  This loads the same WAL segments (bench/payloads.py
templates, 1000 GenAI spans per request, segments as large as the collector's
WAL seals them) into three Null copies of the raw table, interleaved:

* ``decode_only``: no view (ClickHouse's Protobuf decoding alone);
* ``previous_view``: bench/reference_sql/flatten_mv_previous.sql into a Null table;
* ``current_view``: the flatten view as migrated now (read back from the engine) into a Null table;

and prints CPU us/span and spans/s for each, and normalization (view - decode)
per span.  Also, for each view, what the engine spends analysing its query at every
INSERT (``EXPLAIN PLAN`` of the query as the engine stored it, SQL functions expanded:
that text, not the file's, is what an INSERT analyses) and, with ``--memory``, the
memory of one segment insert: the smallest ``max_memory_usage`` (MiB, to 8 MiB) at
which it succeeds, into the Null sink and through the whole store path.  Extra variants (experiments) can be given as SQL files with
``--variant name=path`` (same placeholders as schema/900).

    .venv/bin/python -m bench.bench_normalize [--segments 4] [--requests 50] [--memory] [--json bench/results/normalize.json]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.payloads import make_pool  # noqa: E402
from spanledger.collector.store import Store, StoreConfig, migrate  # noqa: E402
from spanledger.collector.store.ddl import render, split_statements  # noqa: E402
from spanledger.collector.wal import encode_record  # noqa: E402

PREVIOUS_VIEW = Path(__file__).parent / "reference_sql" / "flatten_mv_previous.sql"
DB = "spanledger"


def _stored_select(store: Store, view: str) -> str:
    """The view's query as the engine stored it (what every INSERT analyses)."""
    ddl = store.write_query(f"SELECT create_table_query FROM system.tables WHERE database = '{DB}' "
                            f"AND name = '{view}'").result_rows[0][0]
    return ddl[re.search(r"\sAS\s+(?=WITH\b|SELECT\b)", ddl).end():]


def analysis_ms(store: Store, raws: dict[str, str], rounds: int = 5) -> dict[str, float]:
    """Median CPU ms of EXPLAIN PLAN of each view's stored query, interleaved."""
    selects = {name: _stored_select(store, raw.replace("bench_raw_", "bench_mv_")) for name, raw in raws.items()}
    cpu: dict[str, list[float]] = {name: [] for name in selects}
    for n in range(rounds + 1):
        for name, select in (selects.items() if n % 2 == 0 else reversed(selects.items())):
            c0 = time.process_time()
            store.write_query(f"EXPLAIN PLAN {select}")
            if n:  # the first round warms up
                cpu[name].append(time.process_time() - c0)
    return {name: round(statistics.median(v) * 1e3, 1) for name, v in cpu.items()}


def insert_memory_mib(store: Store, raw: str, path: Path, step: int = 8) -> int:
    """The smallest max_memory_usage (MiB, to ``step``) at which inserting the segment into ``raw`` succeeds."""
    low, high = 0, 4096
    while high - low > step:
        mid = (low + high) // 2
        settings = dict(store._protobuf_settings(f"memory-{raw}-{mid}"), max_memory_usage=mid << 20)
        try:
            store.command(f"INSERT INTO {DB}.{raw} FROM INFILE '{path}' FORMAT Protobuf", settings=settings)
            high = mid
        except Exception as exc:  # the engine's MEMORY_LIMIT_EXCEEDED; anything else is a real failure
            if "MEMORY_LIMIT_EXCEEDED" not in str(exc) and "memory limit" not in str(exc).lower():
                raise
            low = mid
    return high


def store_path_memory_mib(store: Store, path: Path) -> dict[str, int]:
    """Insert memory of the whole store path (flatten, pricing hop, spans, lookup, rollups, trace rows)
    with the current flatten view, then with the previous one swapped in (the migrated store is a scratch copy)."""
    out = {"current_view": insert_memory_mib(store, "spanledger_otlp_raw", path)}
    previous = rendered_view(store, PREVIOUS_VIEW)
    store.command(f"DROP VIEW {DB}.spanledger_flatten_mv")
    store.command(previous)
    out["previous_view"] = insert_memory_mib(store, "spanledger_otlp_raw", path)
    return out


def _view_into(store: Store, name: str, ddl: str) -> str:
    """Create ``ddl`` (a CREATE MATERIALIZED VIEW of the flatten view) reading bench_raw_<name> into a Null table."""
    raw, sink, view = f"bench_raw_{name}", f"bench_sink_{name}", f"bench_mv_{name}"
    for table in (raw, sink):
        store.command(f"DROP TABLE IF EXISTS {DB}.{table}")
    store.command(f"DROP VIEW IF EXISTS {DB}.{view}")
    store.command(f"CREATE TABLE {DB}.{raw} AS {DB}.spanledger_otlp_raw ENGINE = Null")
    if ddl:
        store.command(f"CREATE TABLE {DB}.{sink} AS {DB}.spanledger_spans_ingest ENGINE = Null")
        ddl = (ddl.replace(f"{DB}.spanledger_flatten_mv", f"{DB}.{view}")
                  .replace(f"TO {DB}.spanledger_spans_ingest", f"TO {DB}.{sink}")
                  .replace(f"FROM {DB}.spanledger_otlp_raw", f"FROM {DB}.{raw}"))
        store.command(ddl)
    return raw


def rendered_view(store: Store, path: Path) -> str:
    """The CREATE MATERIALIZED VIEW in ``path``, rendered; the file's own functions are created first."""
    statements = split_statements(render(path.read_text(encoding="utf-8"), store.options))
    for statement in statements:
        if statement.startswith("CREATE OR REPLACE FUNCTION"):
            store.command(statement)
    (view,) = [s for s in statements if s.startswith("CREATE MATERIALIZED VIEW")]
    return view


def current_view(store: Store) -> str:
    return store.write_query(f"SELECT create_table_query FROM system.tables WHERE database = '{DB}' "
                             "AND name = 'spanledger_flatten_mv'").result_rows[0][0]


def write_segments(directory: Path, segments: int, requests: int) -> tuple[list[Path], int]:
    pool = make_pool(8)
    paths, spans, copy = [], 0, 0
    for n in range(segments):
        records = []
        for _ in range(requests):
            copy += 1
            tpl = pool[copy % len(pool)]
            records.append(encode_record(tpl.stamp(copy, nonce=3), ""))
            spans += tpl.spans
        path = directory / f"segment-{n}.wal"
        path.write_bytes(b"".join(records))
        paths.append(path)
    return paths, spans // segments


def run(segments: int, requests: int, variants: dict[str, Path], memory: bool = False) -> dict:
    work = Path(tempfile.mkdtemp(prefix="spanledger-normalize-"))
    store = Store(StoreConfig(data_dir=work / "store"))
    migrate(store.writer, store.options)
    paths, spans_per_segment = write_segments(work, segments + 1, requests)
    targets = {"decode_only": _view_into(store, "decode", ""),
               "previous_view": _view_into(store, "previous", rendered_view(store, PREVIOUS_VIEW)),
               "current_view": _view_into(store, "current", current_view(store))}
    for name, path in variants.items():
        targets[name] = _view_into(store, name, rendered_view(store, path))
    cpu: dict[str, list[float]] = {name: [] for name in targets}
    wall: dict[str, list[float]] = {name: [] for name in targets}
    for n, path in enumerate(paths):
        order = list(targets.items()) if n % 2 == 0 else list(reversed(targets.items()))
        for name, table in order:
            t0, c0 = time.perf_counter(), time.process_time()
            store.command(f"INSERT INTO {DB}.{table} FROM INFILE '{path}' FORMAT Protobuf",
                          settings=store._protobuf_settings(f"{name}-{n}"))
            if n:  # the first segment warms up every path
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    views = {name: raw for name, raw in targets.items() if name != "decode_only"}
    analysis = analysis_ms(store, views)
    memory_mib = {name: insert_memory_mib(store, raw, paths[-1]) for name, raw in targets.items()} if memory else {}
    store_path_mib = store_path_memory_mib(store, paths[-1]) if memory else {}
    store.close()
    out = {"segments": segments, "spans_per_segment": spans_per_segment, "paths": {}}
    decode_us = statistics.median(cpu["decode_only"]) / spans_per_segment * 1e6
    for name in targets:
        us = statistics.median(cpu[name]) / spans_per_segment * 1e6
        out["paths"][name] = {"cpu_us_per_span": round(us, 3),
                              "spans_per_s": round(spans_per_segment / statistics.median(wall[name]), 1),
                              "normalize_us_per_span": round(us - decode_us, 3),
                              "analysis_ms_per_insert": analysis.get(name),
                              "insert_memory_mib": memory_mib.get(name),
                              "store_path_memory_mib": store_path_mib.get(name)}
    prev, cur = out["paths"]["previous_view"], out["paths"]["current_view"]
    out["current_over_previous_normalize"] = round(cur["normalize_us_per_span"] / prev["normalize_us_per_span"], 3)
    out["current_over_previous_analysis"] = round(cur["analysis_ms_per_insert"] / prev["analysis_ms_per_insert"], 3)
    if memory:
        out["current_over_previous_memory"] = round(cur["insert_memory_mib"] / prev["insert_memory_mib"], 3)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--segments", type=int, default=4, help="timed segments (one more warms up)")
    parser.add_argument("--requests", type=int, default=50, help="1000-span requests per segment (the WAL seals at 50k spans)")
    parser.add_argument("--variant", action="append", default=[], help="name=path.sql: another flatten view to time")
    parser.add_argument("--memory", action="store_true", help="also bisect each path's insert memory (~10 inserts per path)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    variants = {v.split("=", 1)[0]: Path(v.split("=", 1)[1]) for v in args.variant}
    out = run(args.segments, args.requests, variants, memory=args.memory)
    print(f"{out['spans_per_segment']} spans per segment, {out['segments']} timed segments, medians:")
    print(f"{'path':<22}{'CPU us/span':>12}{'spans/s':>12}{'normalize us/span':>19}{'analysis ms':>13}{'memory MiB':>12}")
    for name, figures in out["paths"].items():
        analysis, memory = figures["analysis_ms_per_insert"], figures["insert_memory_mib"]
        print(f"{name:<22}{figures['cpu_us_per_span']:>12.2f}{figures['spans_per_s']:>12,.0f}"
              f"{figures['normalize_us_per_span']:>19.2f}{'' if analysis is None else analysis:>13}"
              f"{'' if memory is None else memory:>12}")
    if args.memory:
        print("whole store path, one segment insert: " + ", ".join(
            f"{name} {out['paths'][name]['store_path_memory_mib']} MiB" for name in ("previous_view", "current_view")))
    print(f"normalization, current / previous view: {out['current_over_previous_normalize']:.2f}; "
          f"analysis per INSERT: {out['current_over_previous_analysis']:.2f}"
          + (f"; insert memory: {out['current_over_previous_memory']:.2f}" if args.memory else ""))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
