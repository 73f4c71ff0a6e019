"""Ingest before and after removing the pricing backflow, in one run.

"Before" is the collector at a given commit (default 4cc9676: parking table,
re-ingest, exclusive gate), exported to a directory and put first on
PYTHONPATH for its collector process; "after" is this tree.  Both take the
same templates from bench.loadgen for the same time on fresh data
directories, alternating so drift hits both; the figures are spans committed
per second and collector CPU per span (bench.ingest.collector_run).

    python -m bench.pricing_backflow --seconds 50 [--before-commit 4cc9676]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench import loadgen
from bench.ingest import collector_run

REPO = Path(__file__).resolve().parent.parent


def export_commit(commit: str, target: Path) -> Path:
    """The package tree of ``commit`` laid out as installed (spanledger/, spanledger/collector/, ...)."""
    src = target / "src"
    shutil.rmtree(target, ignore_errors=True)
    src.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    pkg = target / "path" / "spanledger"
    shutil.copytree(src / "instrumentation", pkg)
    for sub in ("collector", "schema", "demo"):
        if (src / sub).exists():
            shutil.copytree(src / sub, pkg / sub)
    return target / "path"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=50)
    parser.add_argument("--before-commit", default="4cc9676")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "pricing-backflow.json"))
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="spanledger-backflow-"))
    before_path = export_commit(args.before_commit, work / "before")
    cfg = loadgen.LoadConfig(target="", processes=1, concurrency=8, duration_s=args.seconds, spans_per_request=1000,
                             templates=8)
    templates = loadgen.build_templates(cfg)
    runs = {"before": [], "after": []}
    saved = os.environ.get("PYTHONPATH")
    try:
        for _ in range(args.rounds):
            for name in ("before", "after"):
                if name == "before":
                    os.environ["PYTHONPATH"] = str(before_path)
                elif saved is None:
                    os.environ.pop("PYTHONPATH", None)
                else:
                    os.environ["PYTHONPATH"] = saved
                res = collector_run(cfg, templates, work / name)
                runs[name].append({k: res[k] for k in ("spans_acked", "all_stored_once", "left_unpriced", "cost_sources",
                                                       "committed_spans_per_s", "collector_cores",
                                                       "collector_cpu_us_per_span", "collector_peak_rss_mib")})
                print(name, json.dumps(runs[name][-1]), flush=True)
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    best = lambda name, key: max(r[key] or 0 for r in runs[name])  # noqa: E731
    least = lambda name, key: min(r[key] for r in runs[name])  # noqa: E731
    out = {"before_commit": args.before_commit, "seconds": args.seconds, "runs": runs, "ratios": {
        "ingest_after_over_before": round(best("after", "committed_spans_per_s") / max(best("before", "committed_spans_per_s"), 1), 3),
        "cpu_per_span_after_over_before": round(least("after", "collector_cpu_us_per_span")
                                                / least("before", "collector_cpu_us_per_span"), 3)}}
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(json.dumps(out["ratios"]))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
