"""``spanledger budget``: each budget with its spend, what is left and the projection for its window.

Through the running collector's GET /v1/budgets (or ``--api-url``); when no
collector runs, the budgets of the configuration are evaluated directly on
the data dir's store.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

NAME = "budget"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="budgets: spent, remaining, window and projected spend")
    p.add_argument("--config", type=Path, help="an otel-config.yaml with extensions.spanledger_budgets")
    p.add_argument("--data-dir", help="the data dir (default .spanledger)")
    p.add_argument("--api-url", help="a collector's API instead, e.g. http://localhost:4319")
    p.add_argument("--format", choices=("table", "json"), default="table")


def fetch(args) -> dict:
    from ..app import Overrides, store_config
    from ..cli import QueryFailed, running_collector_api
    from ..config import load_config

    config = load_config(args.config)
    cfg = store_config(config, Overrides(data_dir=args.data_dir))
    base = args.api_url.rstrip("/") if args.api_url else running_collector_api(cfg.data_dir)
    if base:
        token = os.environ.get("SPANLEDGER_TOKEN")
        request = urllib.request.Request(f"{base}/v1/budgets",
                                         headers={"Authorization": f"Bearer {token}"} if token else {})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise QueryFailed(f"{base} does not serve /v1/budgets (a collector without budgets)") from exc
            raise QueryFailed(json.loads(exc.read() or b"{}").get("error", str(exc))) from exc
    return _evaluate_here(config, cfg)


def _evaluate_here(config, cfg) -> dict:
    import datetime as dt

    from ..alerts.evaluator import BudgetEvaluator
    from ..cli import QueryFailed
    from ..store import Store

    if cfg.embedded and not cfg.engine_path.exists():
        raise QueryFailed(f"no store at {cfg.data_dir}: start `spanledger collector --data-dir {cfg.data_dir}` first")
    store = Store(cfg)
    try:
        here = _StoreOnly(store, cfg.data_dir)
        evaluator = BudgetEvaluator(here, config)
        now = dt.datetime.now(dt.timezone.utc)
        return {"budgets": evaluator.statuses(None, now), "time_zone": evaluator.zone_name,
                "evaluated_at": now.isoformat().replace("+00:00", "Z")}
    finally:
        store.close()


class _StoreOnly:
    """What run_query and the evaluator need of a collector, when none runs: the store and the data dir."""

    def __init__(self, store, data_dir: Path) -> None:
        self._store = store
        self.data_dir = data_dir

    def store(self):
        return self._store


def run(args) -> int:
    from ..cli import QueryFailed, format_table

    try:
        result = fetch(args)
    except QueryFailed as exc:
        print(f"spanledger budget: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(result, indent=2))
        return 0
    if not result["budgets"]:
        print("no budgets configured (extensions.spanledger_budgets.budgets in otel-config.yaml; see docs/budgets.md)")
        return 0
    rows = [[b["name"], b["window"]["kind"], b["window"]["start"][:16], b["spent_usd"], b["limit_usd"],
             f"{b['percent']:.1f}%", b["remaining_usd"], b["projected_usd"],
             ",".join(f"{t:g}%" for t in b["fired"]) or "-"] for b in result["budgets"]]
    print(format_table(["budget", "window", "since", "spent", "limit", "used", "left", "projected", "fired"], rows))
    print(f"(times in {result['time_zone']}; projected = spend so far scaled linearly to the whole window)")
    return 0
