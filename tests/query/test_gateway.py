"""The gateway on a real embedded store: what it admits runs on chDB and reads only the caller's tenant.

The demo's spans (a real collector in a subprocess) are copied into two tenants
of one store: ``acme`` gets every demo span, ``globex`` a different half.  A
reference database holding only acme's rows tells what acme must see: every
documented query (docs/queries.md) run through the gateway as acme answers
exactly what it answers directly on the reference.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from spanledger.collector.errors import QueryBusy, QueryRefused
from spanledger.collector.query.gateway import QueryGateway, checked
from spanledger.collector.query.limits import QueryLimits
from spanledger.collector.store import SchemaOptions, Store, StoreConfig, migrate

DOCS = Path(__file__).resolve().parents[2] / "docs" / "queries.md"


def documented_queries() -> list[tuple[str, str]]:
    text = DOCS.read_text()
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    return [(s.splitlines()[0], sql) for s in sections for sql in re.findall(r"```sql\n(.*?)```", s, flags=re.S)]


def _columns(store: Store, database: str) -> list[str]:
    return [r[0] for r in store.write_query(
        "SELECT name FROM system.columns WHERE database = {db:String} AND table = 'otel_traces' "
        "AND default_kind NOT IN ('MATERIALIZED', 'ALIAS') ORDER BY position", {"db": database}).result_rows]


def copy_spans(store: Store, target_db: str, tenant: str, where: str = "1", name_suffix: str = "") -> None:
    """INSERT ... SELECT the demo's spans (TenantId '') as ``tenant``; the rollups and lookup fill through their views."""
    cols = _columns(store, "spanledger")
    exprs = {"TenantId": "{tenant:String}"}
    if name_suffix:
        exprs["SpanName"] = f"concat(SpanName, '{name_suffix}')"
    select = ", ".join(exprs.get(c, f"`{c}`") for c in cols)
    store.command(f"INSERT INTO {target_db}.otel_traces ({', '.join(f'`{c}`' for c in cols)}) "
                  f"SELECT {select} FROM spanledger.otel_traces WHERE TenantId = '' AND {where}", {"tenant": tenant})


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    data = tmp_path_factory.mktemp("gateway") / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    proc = subprocess.run([sys.executable, "-m", "spanledger.collector.cli", "demo", "--data-dir", str(data)],
                          capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr
    store = Store(StoreConfig(data_dir=data))
    migrate(store.writer, SchemaOptions(database="reference"))
    copy_spans(store, "spanledger", "acme")
    copy_spans(store, "spanledger", "globex", where="cityHash64(SpanId) % 2 = 0", name_suffix="-globex")
    copy_spans(store, "reference", "acme")
    yield store
    store.close()


@pytest.fixture
def gateway():
    return QueryGateway(QueryLimits(timeout_s=20))


def _rows(result) -> list[tuple]:
    return sorted((tuple(str(v) for v in row) for row in result.result_rows))


def test_every_documented_query_answers_for_a_tenant_exactly_what_its_own_rows_give(store, gateway):
    trace_id = store.query("SELECT TraceId FROM spanledger.otel_traces WHERE TenantId = 'acme' "
                           "GROUP BY TraceId ORDER BY count() DESC, TraceId LIMIT 1").result_rows[0][0]
    conversation = store.query("SELECT ConversationId FROM spanledger.otel_traces WHERE ConversationId != '' "
                               "AND SpanAttributes['spanledger.conversation.sequence'] != '' "
                               "ORDER BY ConversationId LIMIT 1").result_rows[0][0]
    params = {"trace_id": trace_id, "conversation_id": conversation, "daily_limit": "1.0",
              "user": "nobody", "project": "nothing"}
    queries = documented_queries()
    assert len(queries) >= 10
    compared = 0
    for title, sql in queries:
        used = {k: v for k, v in params.items() if "{" + k + ":" in sql}
        if "otel_traces_trace_id_ts" in sql:  # no TenantId there: operator only (test below)
            with pytest.raises(QueryRefused, match="operator only"):
                gateway.run(store, sql, used, tenant="acme")
            continue
        expected = _rows(store.query(re.sub(r"\bspanledger\.(?=otel_traces|spanledger_)", "reference.", sql), used))
        got = _rows(gateway.run(store, sql, used, tenant="acme"))
        assert got == expected, (title, len(got), len(expected), sql)
        assert expected, f"'{title}' returned nothing: the comparison would prove nothing"
        assert not any("-globex" in cell for row in got for cell in row), title
        compared += 1
    assert compared >= 8


def test_the_operator_reads_every_tenant_and_the_lookup_table(store, gateway):
    for title, sql in documented_queries():
        if "otel_traces_trace_id_ts" in sql:
            trace_id = store.query("SELECT TraceId FROM spanledger.otel_traces WHERE TenantId = 'globex' "
                                   "LIMIT 1").result_rows[0][0]
            used = {"trace_id": trace_id} if "{trace_id:" in sql else {}
            assert gateway.run(store, sql, used, tenant=None).result_rows, title
    total = gateway.run(store, "SELECT TenantId, count() FROM spanledger.otel_traces GROUP BY TenantId "
                               "ORDER BY TenantId", {}, tenant=None).result_rows
    direct = store.query("SELECT TenantId, count() FROM spanledger.otel_traces GROUP BY TenantId ORDER BY TenantId").result_rows
    assert total == direct and [t for t, _ in total] == ["", "acme", "globex"]


def _count(store, gateway, sql, tenant, **params) -> int:
    return int(gateway.run(store, sql, params, tenant=tenant).result_rows[0][0])


CLAUSE_QUERIES = {  # each reads otel_traces through a different clause; the answer is acme's rows only
    "FROM": "SELECT count() FROM spanledger.otel_traces",
    "unqualified": "SELECT count() FROM otel_traces",
    "alias and qualified column": "SELECT count(t.SpanId) FROM spanledger.otel_traces AS t",
    "db.table.column": "SELECT count(spanledger.otel_traces.SpanId) FROM spanledger.otel_traces",
    "WITH": "WITH s AS (SELECT SpanId FROM spanledger.otel_traces) SELECT count() FROM s",
    "nested WITH": "WITH a AS (SELECT SpanId FROM spanledger.otel_traces), b AS (SELECT * FROM a) SELECT count() FROM b",
    "scalar WITH": "WITH (SELECT count() FROM spanledger.otel_traces) AS n SELECT n",
    "SELECT list": "SELECT (SELECT count() FROM spanledger.otel_traces)",
    "WHERE IN": "SELECT count() FROM spanledger.otel_traces WHERE SpanId IN (SELECT SpanId FROM spanledger.otel_traces)",
    "GLOBAL IN": "SELECT (SELECT count() FROM spanledger.otel_traces WHERE 1 GLOBAL IN (SELECT 1))",
    "PREWHERE": "SELECT count() FROM spanledger.otel_traces PREWHERE SpanId != ''",
    "JOIN": "SELECT count() FROM spanledger.otel_traces AS a JOIN spanledger.otel_traces AS b ON a.SpanId = b.SpanId "
            "AND a.TenantId = b.TenantId AND a.Timestamp = b.Timestamp",
    "HAVING": "SELECT sum(c) FROM (SELECT SpanId, count() AS c FROM spanledger.otel_traces GROUP BY SpanId "
              "HAVING count() >= (SELECT 0 FROM spanledger.otel_traces LIMIT 1))",
    "UNION": "SELECT sum(c) FROM (SELECT count() AS c FROM spanledger.otel_traces UNION ALL SELECT 0)",
    "subquery in FROM": "SELECT count() FROM (SELECT * FROM spanledger.otel_traces)",
    "lambda": "SELECT length(arrayFilter(x -> x IN (SELECT SpanId FROM spanledger.otel_traces), "
              "(SELECT groupArray(SpanId) FROM spanledger.otel_traces)))",
}


@pytest.mark.parametrize("clause", list(CLAUSE_QUERIES))
def test_every_clause_reads_only_the_callers_rows(store, gateway, clause):
    acme = int(store.query("SELECT count() FROM spanledger.otel_traces WHERE TenantId = 'acme'").result_rows[0][0])
    globex = int(store.query("SELECT count() FROM spanledger.otel_traces WHERE TenantId = 'globex'").result_rows[0][0])
    assert acme != globex
    assert _count(store, gateway, CLAUSE_QUERIES[clause], "acme") == acme
    assert _count(store, gateway, CLAUSE_QUERIES[clause], "globex") == globex
    assert _count(store, gateway, CLAUSE_QUERIES[clause], "nobody") == 0


def test_rollups_read_only_the_callers_rows(store, gateway):
    for table in ("spanledger_usage_hourly", "spanledger_cost_daily"):
        direct = store.query(f"SELECT TenantId, round(sum(TotalCost), 9) FROM spanledger.{table} "
                             "GROUP BY TenantId ORDER BY TenantId").result_rows
        by_tenant = dict(direct)
        assert by_tenant["acme"] != by_tenant["globex"]
        for tenant in ("acme", "globex"):
            for final in ("", " FINAL"):  # FINAL stays on the table, inside the tenant filter
                got = gateway.run(store, f"SELECT round(sum(TotalCost), 9) FROM spanledger.{table}{final}", {},
                                  tenant=tenant)
                assert got.result_rows[0][0] == by_tenant[tenant]


def test_a_cached_check_is_reused_for_every_tenant_and_binds_each_ones_name(store, gateway):
    sql = "SELECT count() FROM spanledger.otel_traces WHERE SpanName != {x:String}"
    checked.cache_clear()
    a = _count(store, gateway, sql, "acme", x="?")
    g = _count(store, gateway, sql, "globex", x="?")
    info = checked.cache_info()
    assert (info.misses, info.hits) == (1, 1) and a != g


def test_parameters_stay_values_and_reserved_names_are_refused(store, gateway):
    sql = "SELECT count() FROM spanledger.otel_traces WHERE TenantId = {t:String}"
    assert _count(store, gateway, sql, "acme", t="globex") == 0  # a filter inside acme's rows, not a way out
    for name in ("__tenant", "__x", "a b", "1x"):
        with pytest.raises(QueryRefused, match="parameter"):
            gateway.run(store, "SELECT 1", {name: "globex"}, tenant="acme")


def test_per_tenant_slots_refuse_the_extra_query_but_not_another_tenant(store):
    gateway = QueryGateway(QueryLimits(per_tenant_concurrency=1, max_concurrency=2))
    stream = gateway.stream(store, "SELECT SpanId FROM spanledger.otel_traces", {}, tenant="acme")
    first = next(stream)  # the stream holds acme's one slot while open
    assert first
    with pytest.raises(QueryBusy, match="per_tenant_concurrency") as busy:
        gateway.run(store, "SELECT 1", {}, tenant="acme")
    assert busy.value.retry_after_s > 0
    assert gateway.run(store, "SELECT 1", {}, tenant="globex").result_rows == [(1,)]
    stream.close()
    assert gateway.run(store, "SELECT 1", {}, tenant="acme").result_rows == [(1,)]


def test_a_stream_yields_every_row_of_the_tenant_without_the_result_limit(store):
    gateway = QueryGateway(QueryLimits(max_result_rows=10))
    acme = int(store.query("SELECT count() FROM spanledger.otel_traces WHERE TenantId = 'acme'").result_rows[0][0])
    rows = [row for block in gateway.stream(store, "SELECT SpanName FROM spanledger.otel_traces", {}, tenant="acme")
            for row in block]
    assert len(rows) == acme > 10 and not any(name.endswith("-globex") for (name,) in rows)
    from spanledger.collector.errors import QueryLimitExceeded

    with pytest.raises(QueryLimitExceeded, match="max_result_rows"):
        gateway.run(store, "SELECT SpanName FROM spanledger.otel_traces", {}, tenant="acme")


def test_describe_schema_lists_what_each_caller_may_read(store):
    from spanledger.collector.query import describe_schema

    class Holder:
        config = None

        def store(self):
            return store

    tenant = {t["table"] for t in describe_schema(Holder(), tenant="acme")}
    operator = {t["table"] for t in describe_schema(Holder(), tenant=None)}
    assert tenant == {"spanledger.otel_traces", "spanledger.otel_traces_trace_rows", "spanledger.spanledger_usage_hourly",
                      "spanledger.spanledger_cost_daily"}
    assert operator == tenant | {"spanledger.otel_traces_trace_id_ts"}


def test_closing_a_stream_early_cancels_its_query_on_the_engine(store):
    gateway = QueryGateway(QueryLimits(timeout_s=60))
    burner = ("SELECT cityHash64(a, b) FROM (SELECT arrayJoin(range(100000)) AS a) AS x "
              "CROSS JOIN (SELECT arrayJoin(range(100000)) AS b) AS y WHERE cityHash64(a, b) % 1000 = 0")
    stream = gateway.stream(store, burner, {}, tenant="acme")
    assert next(stream)
    import time

    t0 = time.monotonic()
    stream.close()
    closed_s = time.monotonic() - t0
    left = store.query("SELECT count() FROM system.processes "
                       "WHERE startsWith(Settings['log_comment'], 'spanledger-gateway:')").result_rows[0][0]
    assert left == 0 and closed_s < 30, closed_s
    assert gateway.run(store, "SELECT 1", {}, tenant="acme").result_rows == [(1,)]


def test_the_global_cap_refuses_beyond_max_concurrency_whoever_asks(store):
    gateway = QueryGateway(QueryLimits(per_tenant_concurrency=2, max_concurrency=1))
    stream = gateway.stream(store, "SELECT SpanId FROM spanledger.otel_traces", {}, tenant="acme")
    assert next(stream)
    for who in ("globex", None):
        with pytest.raises(QueryBusy, match="max_concurrency"):
            gateway.run(store, "SELECT 1", {}, tenant=who)
    stream.close()
    assert gateway.run(store, "SELECT 1", {}, tenant=None).result_rows == [(1,)]


def test_query_ids_are_checked_and_unique_while_running(store, gateway):
    for bad in ("", "a b", "x" * 65, "id'; KILL", 7):
        with pytest.raises(QueryRefused, match="query_id"):
            gateway.run(store, "SELECT 1", {}, tenant="acme", query_id=bad)
    stream = gateway.stream(store, "SELECT SpanId FROM spanledger.otel_traces", {}, tenant="acme", query_id="report-1")
    assert next(stream)
    with pytest.raises(QueryRefused, match="already running"):
        gateway.run(store, "SELECT 1", {}, tenant="globex", query_id="report-1")
    assert gateway.cancel("report-1", tenant="globex") is False  # not globex's query
    stream.close()
    assert gateway.run(store, "SELECT 1", {}, tenant="acme", query_id="report-1").result_rows == [(1,)]
