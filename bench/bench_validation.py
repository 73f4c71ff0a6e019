"""Validation cost per span: the receiver's ``check_request`` on realistic requests, now vs a baseline.

Why: validation is the only per-span Python work on the ingest path (every
request is checked before it is acknowledged), so its µs/span bounds what one
receiver core can take.  Both versions run in this process on the same bytes,
interleaved, so the ratio is meaningful even on a drifting machine.

    .venv/bin/python bench/bench_validation.py                      # vs 4cc9676 (before the integrity work)
    .venv/bin/python bench/bench_validation.py --baseline-rev HEAD~3 --repeats 20

Payloads: bench/payloads.py templates (1000 GenAI spans, ~750 KB, provided
costs on most LLM spans, tokens on every LLM span), plus the same requests
with one bad number (forces the attribute walk) and a canonical-encoding
miss (forces the wire-type check).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.payloads import build_request  # noqa: E402
from spanledger.collector.ingest import validation as current  # noqa: E402
from spanledger.collector.wal import _varint  # noqa: E402


def load_baseline(rev: str):
    """The validation module as it was at ``rev``, importable beside the current one."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:collector/ingest/validation.py"],
                            check=True, capture_output=True, text=True).stdout
    path = Path("/tmp") / f"spanledger_validation_{rev.replace('/', '_').replace('~', '_')}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("spanledger.collector.ingest._baseline_validation", path)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "spanledger.collector.ingest"
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def payloads() -> dict[str, tuple[bytes, int]]:
    plain = build_request(1000, seed=3)
    spans = sum(len(ss.spans) for rs in plain.resource_spans for ss in rs.scope_spans)
    bad = type(plain)()
    bad.CopyFrom(plain)
    bad.resource_spans[0].scope_spans[0].spans[0].attributes.add(key="gen_ai.usage.cost").value.double_value = -1.0
    data = plain.SerializeToString()
    # a copy of the first span with an explicit default (kind = 0): valid OTLP, not protobuf's canonical bytes
    span = plain.resource_spans[0].scope_spans[0].spans[0].SerializeToString() + b"\x30\x00"
    non_canonical = data + _field(1, _field(2, _field(2, span)))
    # the WAL's tenant field in client bytes: an unknown field, so every span's wire types are checked
    injected = data + _varint(1001 << 3 | 2) + b"\x04evil"
    return {"plain": (data, spans), "one-bad-number": (bad.SerializeToString(), spans),
            "non-canonical": (non_canonical, spans + 1), "wal-field-injected": (injected, spans)}


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def per_span_us(check, data: bytes, spans: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        check(data)
        times.append(time.perf_counter() - started)
    return statistics.median(times) / spans * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-rev", default="4cc9676")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "validation.json"))
    args = parser.parse_args()
    baseline = load_baseline(args.baseline_rev)
    results = {}
    for name, (data, spans) in payloads().items():
        assert current.check_request(data).accepted + current.check_request(data).rejected == spans
        rounds = [(per_span_us(baseline.check_request, data, spans, args.repeats),
                   per_span_us(current.check_request, data, spans, args.repeats)) for _ in range(3)]
        before = statistics.median(r[0] for r in rounds)
        after = statistics.median(r[1] for r in rounds)
        results[name] = {"spans": spans, "bytes": len(data), "baseline_us_per_span": round(before, 2),
                         "current_us_per_span": round(after, 2), "ratio": round(after / before, 2)}
        print(f"{name:16s} {spans} spans, {len(data) / 1e6:.2f} MB: baseline {before:.2f} µs/span, "
              f"now {after:.2f} µs/span ({after / before:.2f}x)")
    Path(args.out).write_text(json.dumps({"baseline_rev": args.baseline_rev, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
