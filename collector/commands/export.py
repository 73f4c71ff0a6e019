"""``spanledger export``: activities as CSV / JSON lines, or spans as OTLP/JSON lines, to a file or stdout.

Goes through a running collector's API (GET /v1/export) when one runs on the
data directory, and reads the store directly when none does; either way the
export is streamed block by block.
"""

from __future__ import annotations

import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request

NAME = "export"


def add_parser(sub) -> None:
    from ..cli import _add_store_flags

    p = sub.add_parser(NAME, help="export activities (csv, jsonl) or spans (otlp) for a time range and filters")
    _add_store_flags(p)
    p.add_argument("--format", choices=("csv", "jsonl", "otlp"), default="jsonl",
                   help="csv / jsonl: one row per activity; otlp: OTLP/JSON requests, one per line (POST to /v1/traces)")
    p.add_argument("--since", help="from this time (ISO 8601 or Unix seconds), inclusive")
    p.add_argument("--until", help="to this time, exclusive")
    p.add_argument("--where", help="filter expression, e.g. 'agent:planner AND cost>0.01'")
    p.add_argument("--filter", action="append", default=[], metavar="FIELD=VALUE",
                   help="a simple filter (agent=planner, model=gpt-4o, trace=<id>...); repeatable")
    p.add_argument("--output", "-o", help="write here instead of stdout")


def _params(args) -> dict[str, list[str]]:
    from ..config import ConfigError

    params: dict[str, list[str]] = {}
    for pair in args.filter:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigError(f"--filter {pair!r}: write FIELD=VALUE (e.g. agent=planner)")
        params.setdefault(name, []).append(value)
    for name in ("since", "until", "where"):
        if getattr(args, name):
            params[name] = [getattr(args, name)]
    return params


class _StoreOnly:
    """What run_query needs of a collector, over a store opened directly (no collector running)."""

    def __init__(self, store) -> None:
        self._store = store

    def store(self):
        return self._store


def run(args) -> int:
    from ..app import Overrides, store_config
    from ..cli import EXIT_FAILED, _api_auth, running_collector_api
    from ..config import load_config

    params = _params(args)
    config = load_config(args.config)
    cfg = store_config(config, Overrides(data_dir=args.data_dir, clickhouse_url=args.clickhouse_url))
    out = open(args.output, "wb") if args.output else sys.stdout.buffer  # noqa: SIM115 - closed below
    try:
        api = running_collector_api(cfg.data_dir) if cfg.embedded else None
        if api:
            query = urllib.parse.urlencode([("format", args.format)] + [(k, v) for k, vs in params.items() for v in vs])
            request = urllib.request.Request(f"{api}/v1/export?{query}", headers=_api_auth())
            try:
                with urllib.request.urlopen(request, timeout=600) as response:
                    shutil.copyfileobj(response, out, 1 << 16)
            except urllib.error.HTTPError as exc:
                print(f"spanledger export: the running collector answered {exc.code}: {exc.read()[:500].decode()}",
                      file=sys.stderr)
                return EXIT_FAILED
            return 0
        return _export_direct(cfg, params, args.format, out)
    finally:
        if args.output:
            out.close()


def _export_direct(cfg, params, fmt: str, out) -> int:
    from ..cli import EXIT_FAILED
    from ..errors import QueryRefused
    from ..query.export import export_chunks
    from ..query.filters import FilterError
    from ..store import Store, StoreUnavailable

    if cfg.embedded and not cfg.engine_path.exists():
        print(f"spanledger export: no store at {cfg.data_dir}: start `spanledger collector --data-dir "
              f"{cfg.data_dir}` first", file=sys.stderr)
        return EXIT_FAILED
    try:
        store = Store(cfg)
    except StoreUnavailable as exc:
        print(f"spanledger export: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        for chunk in export_chunks(_StoreOnly(store), params, tenant=None, fmt=fmt):
            out.write(chunk)
    except (FilterError, QueryRefused) as exc:
        print(f"spanledger export: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        store.close()
    return 0
