"""Every read of the store goes through here: the SQL endpoint, reports, the activity API,
the feed, budgets, exports and the console.

``run_query`` is the one entry point.  ``tenant=None`` is the operator (every
tenant's rows); a tenant sees only its own rows.  Today it calls the store's
read-only handle; the query gateway (gateway.py) puts its parser, allow-list,
tenant rewrite and limits behind this same signature.
"""

from __future__ import annotations

from typing import Any


def run_query(collector, sql: str, parameters: dict[str, Any] | None = None, *, tenant: str | None,
              query_id: str | None = None):
    """Run one read-only SELECT for ``tenant`` and return clickhouse-connect's QueryResult.

    Raises QueryRefused / QueryLimitExceeded / QueryBusy (collector.errors), or
    StoreUnavailable when the store is not reachable."""
    from ..store import QueryRejected, StoreUnavailable
    from ..errors import QueryRefused

    import time

    from ..telemetry import observe_query

    started, outcome = time.perf_counter(), "error"
    try:
        store = collector.store()
        if store is None:
            raise StoreUnavailable("the store is not reachable yet; retry shortly")
        try:
            result = store.query(sql, parameters or {}, tenant=tenant)
        except QueryRejected as exc:
            outcome = "refused"
            raise QueryRefused(str(exc)) from exc
        outcome = "ok"
        return result
    finally:  # /metrics: spanledger_query_duration_seconds{outcome}
        observe_query(collector, time.perf_counter() - started, outcome)


def describe_schema(collector, *, tenant: str | None) -> list[dict[str, Any]]:
    """What the caller may read: each table with its columns and types (served by GET /v1/schema).

    The gateway's allow-list is the source of truth; this lists exactly it."""
    from .tenancy import TENANT_TABLES

    store = collector.store()
    if store is None:
        from ..store import StoreUnavailable

        raise StoreUnavailable("the store is not reachable yet; retry shortly")
    db = store.options.database
    names = [store.options.traces_table if t == "otel_traces" else t for t in TENANT_TABLES]
    result = store.query(
        "SELECT table, name, type FROM system.columns WHERE database = {db:String} AND table IN {names:Array(String)} "
        "ORDER BY table, position", {"db": db, "names": names})
    tables: dict[str, list[dict[str, str]]] = {}
    for table, name, type_ in result.result_rows:
        tables.setdefault(table, []).append({"name": name, "type": type_})
    return [{"table": f"{db}.{t}", "columns": cols} for t, cols in tables.items()]


# --- MINIMAL STAND-IN, to be reconciled by the lead with the gateway's run_query_stream -------------
# The `ecosystem` branch (exports) codes against this name and signature.  This version pages through
# run_query with LIMIT/OFFSET over the caller's SQL, so memory stays at one block, tenancy and the
# gateway's checks apply to every page, and no lock is held between pages.  The SQL must have an
# ORDER BY that makes the order total (OFFSET paging re-runs it per page: fine for exports, not fast).
def run_query_stream(collector, sql: str, parameters: dict[str, Any] | None = None, *, tenant: str | None,
                     block_rows: int = 10_000):
    """Yield the rows of one read-only SELECT as blocks (lists of row tuples), never more than one in memory."""
    offset = 0
    params = dict(parameters or {})
    while True:
        params.update(_stream_block=block_rows, _stream_offset=offset)
        result = run_query(collector, f"SELECT * FROM ({sql}) LIMIT {{_stream_block:UInt64}} "
                                      f"OFFSET {{_stream_offset:UInt64}}", params, tenant=tenant)
        rows = result.result_rows
        if rows:
            yield rows
        if len(rows) < block_rows:
            return
        offset += len(rows)
