"""How a read-side command gets its answer: from a running collector's HTTP API, or from the store directly.

The embedded store admits one process, so while a collector runs on the data
dir the command asks its API (with SPANLEDGER_TOKEN as bearer token when set);
otherwise it opens the store itself and runs the same query code the API runs.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import load_config


class CommandFailed(Exception):
    """What went wrong, in words for the terminal."""


class StoreReader:
    """Just enough of a Collector for the query functions: a store, opened for this command."""

    def __init__(self, store, data_dir: Path | None) -> None:
        self._store = store
        self.data_dir = data_dir

    def store(self):
        return self._store


def add_store_flags(parser) -> None:
    parser.add_argument("--config", type=Path, help="an otel-config.yaml (OpenTelemetry Collector format)")
    parser.add_argument("--data-dir", help="the collector's data dir (default .spanledger)")
    parser.add_argument("--clickhouse-url", help="read a ClickHouse server instead, e.g. http://localhost:8123")


def read(args, path: str, params: dict[str, Any], direct: Callable[[StoreReader], Any]) -> Any:
    """GET ``path`` from the running collector's API, or call ``direct`` on the store when none runs."""
    from ..app import Overrides, store_config
    from ..cli import running_collector_api
    from ..store import Store, StoreUnavailable

    config = load_config(args.config)
    cfg = store_config(config, Overrides(data_dir=args.data_dir, clickhouse_url=args.clickhouse_url))
    api = running_collector_api(cfg.data_dir) if cfg.embedded else None
    if api:
        return _get(api, path, params)
    if cfg.embedded and not cfg.engine_path.exists():
        raise CommandFailed(f"no store at {cfg.data_dir}: start `spanledger collector --data-dir {cfg.data_dir}` "
                            "or run `spanledger demo` first")
    try:
        store = Store(cfg)
    except StoreUnavailable as exc:
        raise CommandFailed(str(exc)) from None
    try:
        return direct(StoreReader(store, cfg.data_dir if cfg.embedded else None))
    except Exception as exc:
        from ..errors import SpanledgerError

        if isinstance(exc, SpanledgerError):
            raise CommandFailed(str(exc)) from None
        raise
    finally:
        store.close()


def _get(api: str, path: str, params: dict[str, Any]) -> Any:
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v not in (None, [], "")}, doseq=True)
    token = os.environ.get("SPANLEDGER_TOKEN")
    request = urllib.request.Request(f"{api}{path}" + (f"?{query}" if query else ""),
                                     headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read() or b"{}").get("error") or str(exc)
        except ValueError:
            message = str(exc)
        if exc.code == 401:
            message += " (set SPANLEDGER_TOKEN)"
        raise CommandFailed(message) from None
    except urllib.error.URLError as exc:
        raise CommandFailed(f"cannot reach the collector's API at {api}: {exc.reason}") from None
