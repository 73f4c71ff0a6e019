"""The query gateway: the one door between a caller's SQL and the store.

Every query from the API, reports, exports or the console passes here:

1. **check** (sql_check.py): one SELECT, every node of its syntax tree on an
   allow-list (clauses, pure functions, the readable tables), then rewritten so
   each table reads only the caller's tenant.  Cached by (sql, tenant or
   operator) in an LRU, so a report sending the same text again costs a lookup.
2. **admit**: at most ``per_tenant_concurrency`` queries per tenant and
   ``max_concurrency`` in all run at once; beyond, QueryBusy (HTTP 429) at once
   rather than a queue that lets one tenant make another wait.
3. **bound**: per-query settings the caller cannot lift (limits.py); each query
   gets its own id and reader connection, so ``cancel(query_id)`` stops only it
   and never touches the collector's inserts.

Nothing here depends on session state: the tenant is a bound parameter of the
rewritten SQL and the limits ride on each query.
"""

from __future__ import annotations

import functools
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import QueryBusy, QueryCancelled, QueryRefused
from .limits import CANCELLED_CODES, QueryLimits, limit_error
from .sql_check import TENANT_PARAMETER, CheckedQuery, ReadableTables, check_parameter_names, check_query

READABLE_TABLES = ("otel_traces", "otel_traces_trace_rows", "spanledger_usage_hourly",
                   "spanledger_cost_daily")  # each has TenantId
# The trace-id lookup (TraceId -> Start, End) has no TenantId: for a tenant it would list every
# tenant's trace ids, so only the operator reads it (tenants filter otel_traces by TraceId).
CACHE_SIZE = 1024
MARKER_PREFIX = "spanledger-gateway:"
_QUERY_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def readable_tables(options) -> ReadableTables:
    """The tables a caller may read, named as this store names them (``traces_table_name`` may differ)."""
    names = tuple(t.replace("otel_traces", options.traces_table, 1) if t.startswith("otel_traces") else t
                  for t in READABLE_TABLES)
    return ReadableTables(options.database, names, operator_only=(f"{options.traces_table}_trace_id_ts",))


@functools.lru_cache(maxsize=CACHE_SIZE)
def checked(sql: str, readable: ReadableTables, tenant_scoped: bool) -> CheckedQuery:
    """check_query, remembered: the rewrite does not depend on which tenant (it is a bound parameter)."""
    return check_query(sql, readable, tenant_scoped=tenant_scoped)


class _Slots:
    """Concurrency: a small pool per tenant and a global cap, taken without waiting."""

    def __init__(self, per_tenant: int, total: int) -> None:
        self.per_tenant = per_tenant
        self.total = total
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}
        self._all = 0

    @contextmanager
    def take(self, tenant: str | None) -> Iterator[None]:
        key = "" if tenant is None else tenant
        with self._lock:
            mine = self._running.get(key, 0)
            if mine >= self.per_tenant:
                who = "the operator" if tenant is None else f"tenant {tenant!r}"
                raise QueryBusy(f"{who} already has {mine} queries running (the limit per tenant is "
                                f"{self.per_tenant}): retry when one finishes, or raise "
                                "extensions.spanledger_api.query_limits.per_tenant_concurrency", retry_after_s=1.0)
            if self._all >= self.total:
                raise QueryBusy(f"the collector is running {self._all} queries, its limit "
                                "(extensions.spanledger_api.query_limits.max_concurrency): retry shortly",
                                retry_after_s=1.0)
            self._running[key] = mine + 1
            self._all += 1
        try:
            yield
        finally:
            with self._lock:
                self._all -= 1
                left = self._running[key] - 1
                if left:
                    self._running[key] = left
                else:
                    del self._running[key]


class QueryGateway:
    """Checks, admits, bounds and runs queries for one collector."""

    def __init__(self, limits: QueryLimits) -> None:
        self.limits = limits
        self._slots = _Slots(limits.per_tenant_concurrency, limits.max_concurrency)
        self._running: dict[str, tuple[str | None, Any]] = {}  # query_id -> (tenant, store)
        self._running_lock = threading.Lock()

    def prepare(self, store, sql: str, parameters: dict[str, Any] | None, tenant: str | None,
                query_id: str | None) -> tuple[CheckedQuery, dict[str, Any], str]:
        """The checked query, its full parameters (the tenant's bound last) and its query id."""
        query = self.check(store.options, sql, parameters, tenant)
        parameters = dict(parameters or {})
        if query.tenant_scoped and query.tables:
            parameters[TENANT_PARAMETER] = tenant  # set last: a caller's '__' names were refused above
        if query_id is None:
            query_id = uuid.uuid4().hex
        elif not isinstance(query_id, str) or not _QUERY_ID.match(query_id):
            raise QueryRefused("query_id must be 1-64 letters, digits or '_.:-'", construct="query_id")
        return query, parameters, query_id

    def check(self, options, sql: str, parameters: dict[str, Any] | None, tenant: str | None) -> CheckedQuery:
        """Refuse what the gateway will not run (QueryRefused); needs only the schema options, not the store."""
        if not isinstance(sql, str):
            raise QueryRefused("the query must be text", construct="query")
        check_parameter_names(parameters or {})
        if tenant is not None and (not isinstance(tenant, str) or not tenant):
            raise ValueError("tenant must be a non-empty name, or None for the operator")
        return checked(sql, readable_tables(options), tenant is not None)

    @contextmanager
    def _running_query(self, store, tenant: str | None, query_id: str) -> Iterator[str]:
        with self._running_lock:
            if query_id in self._running:
                raise QueryRefused(f"a query with id {query_id!r} is already running: use a new id",
                                   construct="query_id")
            self._running[query_id] = (tenant, store)
        try:
            yield MARKER_PREFIX + query_id
        finally:
            with self._running_lock:
                self._running.pop(query_id, None)

    def run(self, store, sql: str, parameters: dict[str, Any] | None, *, tenant: str | None,
            query_id: str | None = None):
        """Run one checked, tenant-scoped, bounded SELECT; returns clickhouse-connect's QueryResult."""
        query, bound, query_id = self.prepare(store, sql, parameters, tenant, query_id)
        with self._slots.take(tenant), self._running_query(store, tenant, query_id) as marker:
            return self._engine_call(lambda: store.read(query.sql, bound, self.limits.settings(marker=marker)))

    def stream(self, store, sql: str, parameters: dict[str, Any] | None, *, tenant: str | None,
               query_id: str | None = None, block_rows: int | None = None) -> Iterator[Any]:
        """Yield row blocks of one checked SELECT (time and rows-read limits hold; the result size limit does not).

        The query is checked when this is called; its slot and reader are held
        until the generator is exhausted or closed (closing it cancels the query)."""
        query, bound, query_id = self.prepare(store, sql, parameters, tenant, query_id)
        return self._stream(store, query, bound, tenant, query_id, block_rows)

    def _stream(self, store, query: CheckedQuery, bound: dict[str, Any], tenant: str | None,
                query_id: str, block_rows: int | None = None) -> Iterator[Any]:
        with self._slots.take(tenant), self._running_query(store, tenant, query_id) as marker:
            settings = self.limits.settings(marker=marker, stream=True)
            if block_rows:  # rows per block the engine hands over: what an export holds in memory at once
                settings["max_block_size"] = max(1, min(int(block_rows), 1 << 20))
            with self._engine_errors(), store.read_stream(query.sql, bound, settings) as blocks:
                try:
                    yield from blocks
                except GeneratorExit:  # the consumer stopped early: stop the engine's work before closing
                    try:
                        store.cancel(marker)
                    except Exception:  # noqa: BLE001 - best effort; the query's time limit still holds
                        pass
                    raise

    def cancel(self, query_id: str, *, tenant: str | None) -> bool:
        """Cancel a running query by id; a tenant may cancel only its own queries. True if one was running."""
        with self._running_lock:
            entry = self._running.get(query_id)
        if entry is None or (tenant is not None and entry[0] != tenant):
            return False
        return entry[1].cancel(MARKER_PREFIX + query_id) > 0

    def _engine_call(self, call):
        with self._engine_errors():
            return call()

    @contextmanager
    def _engine_errors(self) -> Iterator[None]:
        from ..store import QueryRejected

        try:
            yield
        except QueryRejected as exc:
            limited = limit_error(exc.code, self.limits)
            if limited is not None:
                raise limited from None
            if exc.code in CANCELLED_CODES:
                raise QueryCancelled("the query was cancelled (its client went away, or it was cancelled by id)") from None
            raise QueryRefused(f"the query failed: {_engine_text(str(exc))}", construct="engine") from None


def _engine_text(text: str) -> str:
    """The engine's message without its stack or version trailer, short enough to read."""
    marker = "DB::Exception:"
    if marker in text:
        text = text.split(marker, 1)[1]
    for cut in ("Stack trace", " In query ", " In scope ", " SETTINGS max_execution_time"):
        text = text.split(cut, 1)[0]
    text = text.strip()
    return text[:500]
