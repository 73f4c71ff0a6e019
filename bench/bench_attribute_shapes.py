"""What storing kvlists and nested arrays as JSON costs the store path.

Why: the WAL's AnyValue now declares kvlist_value and a second nesting level
(schema/otlp_wal.proto), so ClickHouse decodes more columns for every attribute
value and the flatten view runs larger functions.  This loads the same WAL
segments (bench/payloads.py, 1000 GenAI spans per request) through the
pipeline as it is now and as it was at ``--baseline-rev``, side by side in one
engine (the baseline in its own database, its functions renamed), interleaved,
and prints spans/s for each.

    .venv/bin/python bench/bench_attribute_shapes.py [--baseline-rev 4cc9676] [--segments 6] [--requests 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.payloads import build_request  # noqa: E402
from spanledger.collector.store import Store, StoreConfig, migrate  # noqa: E402
from spanledger.collector.store.ddl import SchemaOptions, render, split_statements  # noqa: E402
from spanledger.collector.wal import encode_record  # noqa: E402

_OLD_SCALAR = ("string_value Nullable(String), bool_value Nullable(Bool), int_value Nullable(Int64), "
               "double_value Nullable(Float64), bytes_value Nullable(String)")
_OLD_ANY_VALUE = f"Tuple({_OLD_SCALAR}, array_value Tuple(values Array(Tuple({_OLD_SCALAR}))))"


def _git_show(rev: str, path: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{path}"], check=True, capture_output=True,
                          text=True).stdout


def baseline_store(directory: Path, rev: str) -> Store:
    """A store (database spanledger_base) whose ingest pipeline and WAL schema are those of ``rev``."""
    store = Store(StoreConfig(data_dir=directory, options=SchemaOptions(database="spanledger_base")))
    migrate(store.writer, store.options)
    pipeline = _git_show(rev, "schema/900_ingest_pipeline.sql").replace("${any_value_type}", _OLD_ANY_VALUE)
    pipeline = render(pipeline, store.options)
    for function in ("spanledger_scalar_to_string", "spanledger_anyvalue_to_string", "spanledger_attributes_to_map"):
        pipeline = pipeline.replace(function + " ", function + "_v0 ").replace(function + "(", function + "_v0(")
    for statement in split_statements(pipeline):
        store.writer.command(statement)
    store._wal_schema = _git_show(rev, "schema/otlp_wal.proto")
    return store


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-rev", default="4cc9676")
    parser.add_argument("--segments", type=int, default=6)
    parser.add_argument("--requests", type=int, default=10, help="1000-span requests per segment")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="spanledger-shapes-"))
    stores = {"baseline": baseline_store(work, args.baseline_rev), "current": Store(StoreConfig(data_dir=work))}
    migrate(stores["current"].writer, stores["current"].options)
    timings: dict[str, list[float]] = {name: [] for name in stores}
    spans = 0
    for n in range(args.segments):
        requests = [build_request(1000, seed=n * 100 + i) for i in range(args.requests)]
        spans = sum(len(ss.spans) for r in requests for rs in r.resource_spans for ss in rs.scope_spans)
        segment = work / f"segment-{n}.wal"
        segment.write_bytes(b"".join(encode_record(r.SerializeToString(), "") for r in requests))
        order = list(stores.items()) if n % 2 == 0 else list(reversed(stores.items()))
        for name, store in order:
            started = time.perf_counter()
            store.load_segment(segment, f"shapes-{n}")
            timings[name].append(time.perf_counter() - started)
    for name, store in stores.items():
        db = store.options.database
        stored = store.query(f"SELECT count() FROM {db}.otel_traces").result_rows[0][0]
        # the parking table of the backflow design exists only in a baseline from before schema 020
        has_parking = store.query(f"SELECT count() FROM system.tables WHERE database = '{db}' "
                                  "AND name = 'spanledger_spans_unpriced'").result_rows[0][0]
        parked = store.query(f"SELECT count() FROM {db}.spanledger_spans_unpriced").result_rows[0][0] if has_parking else 0
        assert stored + parked == spans * args.segments, (name, stored, parked)
    base, now = statistics.median(timings["baseline"]), statistics.median(timings["current"])
    print(f"segment of {spans} spans: baseline {spans / base:,.0f} spans/s ({base * 1000:.0f} ms), "
          f"current {spans / now:,.0f} spans/s ({now * 1000:.0f} ms): {now / base:.2f}x the time")
    for store in stores.values():
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
