"""``spanledger report <name> [filters] [--format table|json|csv]``: a named report on the command line.

While a collector runs on the data dir, the report goes through its API (the
token in ``$SPANLEDGER_TOKEN`` decides the tenant): ``GET /v1/reports/<name>``,
or, on a collector whose API has no report routes yet, the report's SQL
through ``POST /v1/sql``.  With no collector running, the store is opened
directly (as the operator).  ``spanledger report list`` shows every report.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from types import SimpleNamespace

NAME = "report"


def _param_names() -> list[str]:
    from ..query.reports import describe_reports

    names: list[str] = []
    for report in describe_reports():
        names += [p["name"] for p in report["parameters"] if p["name"] not in names]
    return names


def add_parser(sub) -> None:
    from ..cli import _add_store_flags

    p = sub.add_parser(NAME, help="run a named report (spend, top, timelines, agent stats, analytics); 'list' lists them")
    p.add_argument("name", help="the report's name, or 'list'")
    _add_store_flags(p)
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    for name in _param_names():
        p.add_argument(f"--{name.replace('_', '-')}", dest=f"report_{name}", action="append", metavar="VALUE",
                       help=argparse_help(name))


def argparse_help(name: str) -> str:
    from ..query.reports import describe_reports

    for report in describe_reports():
        for p in report["parameters"]:
            if p["name"] == name:
                return p["description"].replace("%", "%%")
    return ""


def run(args) -> int:
    from ..cli import EXIT_FAILED, QueryFailed, format_result
    from ..query.reports import ReportError, describe_reports
    from ..query.filters import FilterError
    from ..store import StoreUnavailable

    if args.name == "list":
        for report in describe_reports():
            own = [p["name"] for p in report["parameters"] if not p.get("filter")]
            print(f"{report['name']:<20} {report['description']}\n{'':<20} parameters: {', '.join(own)} + filters")
        return 0
    raw = {name: values for name in _param_names() if (values := getattr(args, f"report_{name}", None))}
    try:
        body = fetch_report(args.name, raw, args)
    except (QueryFailed, StoreUnavailable, ReportError, FilterError) as exc:
        print(f"spanledger report: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.format == "json":
        print(json.dumps(body, indent=2, default=_plain))
        return 0
    if args.format == "table":
        print(f"{body['report']}: source {body['source']}, range {body['range']['since'] or '-'} .. "
              f"{body['range']['until'] or 'now'}, time zone {body['time_zone']}")
        for note in body.get("notes") or []:
            print(f"note: {note}")
    print(format_result({"columns": body["columns"], "rows": body["rows"]}, args.format))
    if body.get("next_cursor"):
        print(f"next page: --cursor {body['next_cursor']}", file=sys.stderr)
    return 0


def fetch_report(name: str, raw: dict[str, list[str]], args) -> dict:
    """The report's JSON body, from a running collector's API or from the store opened here."""
    from ..app import Overrides, load_price_book, store_config
    from ..cli import QueryFailed, _api_auth, running_collector_api
    from ..config import load_config
    from ..query.reports import Tables, run_report
    from ..serve.reports import deployment_time_zone

    config = load_config(args.config)
    cfg = store_config(config, Overrides(data_dir=args.data_dir, clickhouse_url=args.clickhouse_url))
    ch = config.get("exporters.clickhouse")
    tables = Tables(ch["database"], ch["traces_table_name"])
    holder = SimpleNamespace(config=config)
    zone = deployment_time_zone(holder)
    api = running_collector_api(cfg.data_dir) if cfg.embedded else None
    if api:
        url = f"{api}/v1/reports/{urllib.parse.quote(name, safe='')}?{urllib.parse.urlencode(raw, doseq=True)}"
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=_api_auth()), timeout=120) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            payload = json.loads(exc.read() or b"{}")
            if not (exc.code == 404 and "no such endpoint" in payload.get("error", "")):
                raise QueryFailed(payload.get("error", str(exc))) from exc
        # a collector whose API predates the report routes: run the report's SQL through /v1/sql
        return _normalized(run_report(name, raw, execute=_via_sql_endpoint(api), price_book=load_price_book(config),
                                      operator=True, time_zone=zone, tables=tables))
    from ..query import run_query
    from ..store import Store

    if cfg.embedded and not cfg.engine_path.exists():
        raise QueryFailed(f"no store at {cfg.data_dir}: start `spanledger collector --data-dir {cfg.data_dir}` "
                          "or run `spanledger demo` first")
    store = Store(cfg)
    try:
        holder.store = lambda: store

        def execute(sql, parameters):
            result = run_query(holder, sql, parameters, tenant=None)
            return list(result.column_names), [list(row) for row in result.result_rows]

        return _normalized(run_report(name, raw, execute=execute, price_book=load_price_book(config), operator=True,
                                      time_zone=zone, tables=tables))
    finally:
        store.close()


def _via_sql_endpoint(api: str):
    from ..cli import QueryFailed, _api_auth

    def execute(sql, parameters):
        body = json.dumps({"query": sql, "parameters": {k: _bindable(v) for k, v in parameters.items()}}).encode()
        request = urllib.request.Request(f"{api}/v1/sql", data=body,
                                         headers={"Content-Type": "application/json", **_api_auth()})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                result = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise QueryFailed(json.loads(exc.read() or b"{}").get("error", str(exc))) from exc
        return result["columns"], result["rows"]
    return execute


def _bindable(value):
    """A parameter as JSON the engine binds: times as UTC 'YYYY-MM-DD hh:mm:ss.ffffff', decimals as text."""
    if isinstance(value, dt.datetime):
        utc = value.astimezone(dt.timezone.utc)
        return utc.strftime("%Y-%m-%d %H:%M:%S.%f" if utc.microsecond else "%Y-%m-%d %H:%M:%S")
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    return value


def _plain(value):
    from ..serve.json_encoding import json_default

    return json_default(value)


def _normalized(body: dict) -> dict:
    return json.loads(json.dumps(body, default=_plain))
