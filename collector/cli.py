"""The ``spanledger`` command: collector, migrate, sql, demo."""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import signal
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

from .config import ConfigError, load_config

EXIT_USAGE, EXIT_FAILED = 2, 1


def _add_store_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="an otel-config.yaml (OpenTelemetry Collector format)")
    parser.add_argument("--data-dir", help="where the embedded store and the WAL live (default .spanledger)")
    parser.add_argument("--clickhouse-url", help="store into a ClickHouse server instead, e.g. http://localhost:8123")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spanledger", description="Tracing for what AI agents do and what it costs.")
    parser.add_argument("--log-level", default=os.environ.get("SPANLEDGER_LOG_LEVEL"),
                        help="debug, info, warning or error (default: service.telemetry.logs.level, else info)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("collector", help="receive OTLP/gRPC and store spans in ClickHouse")
    _add_store_flags(p)
    p.add_argument("--grpc-endpoint", help="HOST:PORT to receive OTLP/gRPC on (default localhost:4317)")
    p.add_argument("--api-endpoint", help="HOST:PORT of the query API (default localhost:4319)")

    p = sub.add_parser("migrate", help="create or upgrade the schema, then exit")
    _add_store_flags(p)

    p = sub.add_parser("sql", help="run one read-only SQL query")
    p.add_argument("query")
    _add_store_flags(p)
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="bind {NAME:Type} in the query (server-side binding)")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")

    p = sub.add_parser("demo", help="run a simulated multi-agent workload through a real collector and show it")
    p.add_argument("--data-dir", help="keep the demo's store here (default: a temporary directory)")
    p.add_argument("--scale", type=int, default=1, help="multiply the workload (default 1)")
    for module in command_modules():
        module.add_parser(sub)
    return parser


def command_modules():
    """Subcommands that live in their own module under collector/commands/ (each: add_parser(sub), run(args))."""
    import importlib

    from .commands import COMMAND_MODULES

    return [importlib.import_module(f".commands.{name}", __package__) for name in COMMAND_MODULES]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=(args.log_level or "info").upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        builtin = {"collector": cmd_collector, "migrate": cmd_migrate, "sql": cmd_sql, "demo": cmd_demo}
        if args.command in builtin:
            return builtin[args.command](args)
        return next(m for m in command_modules() if m.NAME == args.command).run(args)
    except ConfigError as exc:
        print(f"spanledger: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _overrides(args):
    from .app import Overrides

    return Overrides(grpc_endpoint=getattr(args, "grpc_endpoint", None), data_dir=args.data_dir,
                     clickhouse_url=args.clickhouse_url, api_endpoint=getattr(args, "api_endpoint", None))


def cmd_collector(args) -> int:
    from .app import Collector, DataDirInUse
    from .store import StoreUnavailable

    config = load_config(args.config)
    if not args.log_level:  # the flag wins over service.telemetry.logs.level, as in the Collector
        logging.getLogger().setLevel(config.get("service.telemetry.logs.level").upper())
    collector = Collector(config, _overrides(args))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        collector.start()
    except DataDirInUse as exc:
        print(f"spanledger collector: cannot start: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (StoreUnavailable, OSError) as exc:
        print(f"spanledger collector: cannot start: {exc}", file=sys.stderr)
        collector.stop(5)
        return EXIT_FAILED
    print(f"spanledger collector: OTLP/gRPC on {collector.server.address}, query API on {collector.api.url}, "
          f"storing into {collector.store_config.describe()}", flush=True)
    stop.wait()
    drained = collector.stop(timeout_s=30)
    if not drained:
        print("spanledger collector: stopped before every segment was stored; the WAL keeps them for the next start",
              file=sys.stderr)
    if any(writer.is_alive() for writer in collector.writers):
        # a writer is stuck inside a store call: the engine's own exit handlers could wait for it,
        # and everything acknowledged is already in the fsynced WAL, so leave now
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def cmd_migrate(args) -> int:
    from .app import store_config
    from .store import Store, migrate

    config = load_config(args.config)
    store = Store(store_config(config, _overrides(args)))
    try:
        report = migrate(store.writer, store.options)
    finally:
        store.close()
    applied = ", ".join(report.applied) or "nothing (already up to date)"
    print(f"schema version {report.current_version} in {store.config.describe()}; applied: {applied}")
    return 0


def _parse_params(pairs: list[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigError(f"--param {pair!r}: write NAME=VALUE")
        params[name] = value
    return params


def running_collector_api(data_dir: Path) -> str | None:
    """The API URL of a live collector on ``data_dir``, if one runs."""
    from .app import RUNTIME_FILE

    try:
        info = json.loads((data_dir / RUNTIME_FILE).read_text())
        os.kill(int(info["pid"]), 0)
        return info["api"] or None
    except (OSError, ValueError, KeyError):
        return None


def run_sql(query: str, parameters: dict, config_path: Path | None, data_dir: str | None,
            clickhouse_url: str | None = None) -> dict:
    """Run a read-only query through a running collector, or directly on the store when none runs."""
    from .app import Overrides, store_config
    from .store import Store

    config = load_config(config_path)
    cfg = store_config(config, Overrides(data_dir=data_dir, clickhouse_url=clickhouse_url))
    api = running_collector_api(cfg.data_dir) if cfg.embedded else None
    if api:
        request = urllib.request.Request(f"{api}/v1/sql", data=json.dumps({"query": query, "parameters": parameters}).encode(),
                                         headers={"Content-Type": "application/json", **_api_auth()})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise QueryFailed(json.loads(exc.read() or b"{}").get("error", str(exc))) from exc
    from .serve.http_api import result_to_json
    from .store import QueryRejected

    if cfg.embedded and not (cfg.engine_path / "status").exists() and not cfg.engine_path.exists():
        raise QueryFailed(f"no store at {cfg.data_dir}: start `spanledger collector --data-dir {cfg.data_dir}` "
                          "or run `spanledger demo` first")
    store = Store(cfg)
    try:
        return json.loads(json.dumps(result_to_json(store.query(query, parameters)), default=_json_default))
    except QueryRejected as exc:
        raise QueryFailed(str(exc)) from exc
    finally:
        store.close()


def _json_default(value):
    from .serve.http_api import json_default

    return json_default(value)


def _api_auth() -> dict[str, str]:
    token = os.environ.get("SPANLEDGER_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


class QueryFailed(Exception):
    pass


def cmd_sql(args) -> int:
    from .store import StoreUnavailable

    try:
        result = run_sql(args.query, _parse_params(args.param), args.config, args.data_dir, args.clickhouse_url)
    except (QueryFailed, StoreUnavailable) as exc:
        print(f"spanledger sql: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(format_result(result, args.format))
    return 0


def format_result(result: dict, fmt: str) -> str:
    columns, rows = result["columns"], result["rows"]
    if fmt == "json":
        return json.dumps([dict(zip(columns, row)) for row in rows], indent=2, default=str)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    return format_table(columns, rows)


def format_table(columns: list[str], rows: list[list]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.rjust(w) if _numeric(v) else v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join([line, rule, *body, f"({len(rows)} row{'s' if len(rows) != 1 else ''})"])


def _cell(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    return str(value)


def _numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def cmd_demo(args) -> int:
    from spanledger.demo.run import run_demo

    return run_demo(data_dir=args.data_dir, scale=args.scale)


if __name__ == "__main__":
    sys.exit(main())
