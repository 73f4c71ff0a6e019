"""Every read of the store goes through here: the SQL endpoint, reports, the activity API,
the feed, budgets, exports and the console.

``run_query`` is the one entry point (``run_query_stream`` its streaming form).
``tenant=None`` is the operator (every tenant's rows); a tenant sees only its
own rows.  Both go through the query gateway (gateway.py): parser and
allow-lists, tenant rewrite, per-query limits and concurrency slots.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from ..errors import QueryRefused
from .gateway import QueryGateway, readable_tables
from .limits import QueryLimits

_gateways_lock = threading.Lock()
GATEWAY_ATTRIBUTE = "_spanledger_query_gateway"


def gateway_for(collector) -> QueryGateway:
    """The collector's gateway, made on first use from its configuration and kept on the collector
    (anything with a ``store()`` and a ``config`` serves: the CLI reads a data dir through one too)."""
    with _gateways_lock:
        gateway = getattr(collector, GATEWAY_ATTRIBUTE, None)
        if gateway is None:
            config = getattr(collector, "config", None)
            limits = QueryLimits.from_config(config) if config is not None else QueryLimits()
            gateway = QueryGateway(limits)
            setattr(collector, GATEWAY_ATTRIBUTE, gateway)
        return gateway


def _store(collector, sql: str | None = None, parameters=None, tenant: str | None = None):
    """The store, or StoreUnavailable; a query that would be refused anyway is refused first (400, not 503)."""
    store = collector.store()
    if store is None:
        from ..store import StoreUnavailable

        options = getattr(getattr(collector, "store_config", None), "options", None)
        if sql is not None and options is not None:
            gateway_for(collector).check(options, sql, parameters, tenant)
        raise StoreUnavailable("the store is not reachable yet; retry shortly")
    return store


def run_query(collector, sql: str, parameters: dict[str, Any] | None = None, *, tenant: str | None,
              query_id: str | None = None):
    """Run one read-only SELECT for ``tenant`` and return clickhouse-connect's QueryResult.

    Raises QueryRefused / QueryLimitExceeded / QueryBusy / QueryCancelled
    (collector.errors), or StoreUnavailable when the store is not reachable."""
    from ..telemetry import observe_query

    started, outcome = time.perf_counter(), "error"
    try:
        store = _store(collector, sql, parameters, tenant)
        result = gateway_for(collector).run(store, sql, parameters, tenant=tenant, query_id=query_id)
        outcome = "ok"
        return result
    except QueryRefused:
        outcome = "refused"
        raise
    finally:  # /metrics: spanledger_query_duration_seconds{outcome}
        observe_query(collector, time.perf_counter() - started, outcome)


def run_query_stream(collector, sql: str, parameters: dict[str, Any] | None = None, *, tenant: str | None,
                     query_id: str | None = None, block_rows: int | None = None) -> Iterator[Any]:
    """Like run_query, but yields row blocks (lists of row tuples) for exports.

    The SQL is checked before this returns; the query runs while the generator
    is consumed, and closing the generator early cancels it.  The result size
    limit does not apply; the time and rows-read limits do."""
    store = _store(collector, sql, parameters, tenant)
    return gateway_for(collector).stream(store, sql, parameters, tenant=tenant, query_id=query_id,
                                         block_rows=block_rows)


def cancel_query(collector, query_id: str, *, tenant: str | None) -> bool:
    """Cancel a running query (e.g. its HTTP client disconnected); a tenant may cancel only its own."""
    return gateway_for(collector).cancel(query_id, tenant=tenant)


def describe_schema(collector, *, tenant: str | None) -> list[dict[str, Any]]:
    """What the caller may read: each table with its columns and types (served by GET /v1/schema).

    The gateway's allow-list is the source of truth; this lists exactly it
    (the same for every tenant: tenancy narrows rows, not columns; the operator
    also reads the trace-id lookup table, which has no tenant column)."""
    store = _store(collector)
    readable = readable_tables(store.options)
    names = list(readable.names) + (list(readable.operator_only) if tenant is None else [])
    result = store.query(
        "SELECT table, name, type FROM system.columns WHERE database = {db:String} AND table IN {names:Array(String)} "
        "ORDER BY table, position", {"db": readable.database, "names": names})
    tables: dict[str, list[dict[str, str]]] = {}
    for table, name, type_ in result.result_rows:
        tables.setdefault(table, []).append({"name": name, "type": type_})
    return [{"table": f"{readable.database}.{t}", "columns": cols} for t, cols in tables.items()]
