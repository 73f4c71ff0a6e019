"""Fuzz the gateway: random combinations of clauses, functions and tables, and random text.

Whatever the gateway admits must (1) call only allow-listed functions and read
only allowed tables, each (for a tenant) inside its tenant filter, in the SQL
that actually runs, and (2) when run on the real engine as ``acme``, return
nothing of ``globex``'s rows, in results or in error messages.  Whatever it
refuses, it refuses with QueryRefused (never another exception).
"""

from __future__ import annotations

import pytest
import sqlglot
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from spanledger.collector.errors import QueryLimitExceeded, QueryRefused
from spanledger.collector.query.functions import function_allowed
from spanledger.collector.query.gateway import QueryGateway, readable_tables
from spanledger.collector.query.limits import QueryLimits
from spanledger.collector.query.sql_check import (DIALECT, TENANT_PARAMETER, _NAMED_FUNCTIONS, _STRUCTURE,
                                                  typed_functions)
from spanledger.collector.store import Store, StoreConfig, migrate

SECRET = "ZZSECRET"
GLOBEX_TRACE = "9e" * 16


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = Store(StoreConfig(data_dir=tmp_path_factory.mktemp("fuzz") / "data"))
    migrate(store.writer, store.options)
    rows = [("acme", "a1" * 16, f"acme-span-{i}") for i in range(4)] + \
           [("globex", GLOBEX_TRACE, f"{SECRET}-{i}") for i in range(3)]
    for tenant, trace, name in rows:
        store.command("INSERT INTO spanledger.otel_traces (TenantId, TraceId, SpanId, SpanName, Timestamp, ServiceName, "
                      "Duration, Model, TotalCost) VALUES ({t:String}, {tr:String}, {s:String}, {n:String}, now64(9), "
                      "{t:String}, 1000, 'gpt-4o', 0.5)", {"t": tenant, "tr": trace, "s": name[-8:], "n": name})
    yield store
    store.close()


TABLES_OK = ["spanledger.otel_traces", "otel_traces", "spanledger.otel_traces", "spanledger.spanledger_usage_hourly",
             "spanledger.spanledger_cost_daily", "spanledger_cost_daily"]
TABLES_BAD = ["system.tables", "system.one", "spanledger.spanledger_spans_unpriced", "spanledger.otel_traces_trace_id_ts",
              "information_schema.tables", "spanledger.spanledger_model_prices", "numbers(10)", "file('/etc/passwd')",
              "merge('spanledger', '.*')", "remote('localhost', system.one)", "{t:Identifier}"]
# every expression is a String, so most admitted queries also run (and so are checked for leaks in results)
COLUMNS = ["TenantId", "Model", "TenantId", "Model", "'a'", "{p:String}", "x.TenantId", "toString(TotalCost)"]
COLUMNS_SPANS = ["SpanName", "TraceId", "x.SpanName", "toString(Duration)"]
FUNCS_OK = ["lower", "upper", "toString", "hex", "reverse", "trimBoth", "lowerUTF8", "toValidUTF8", "base64Encode"]
FUNCS_BAD = ["file", "currentUser", "getSetting", "sleep", "throwIf", "dictGet", "joinGet", "url", "version",
             "hostName", "arrayReduce", "currentDatabase", "getServerSetting", "in", "globalIn", "executable"]
AGGREGATES = ["any", "anyLast", "min", "max", "groupArray", "groupUniqArray", "count"]


def _maybe(draw, bad: list[str], rate: int = 8) -> str | None:
    """One of ``bad`` about once in ``rate`` draws (the harmless None first: hypothesis shrinks toward it)."""
    return draw(st.sampled_from([None] * (rate - 1) + bad))


@st.composite
def expressions(draw, depth: int, spans: bool):
    kinds = ["column"] * 3 + ["func"] * 3 + ["badfunc", "subquery", "lambda", "in"] if depth < 2 else ["column"]
    kind = draw(st.sampled_from(kinds))
    if kind == "column":
        return draw(st.sampled_from(COLUMNS + (COLUMNS_SPANS if spans else [])))
    if kind == "func":
        return f"{draw(st.sampled_from(FUNCS_OK))}({draw(expressions(depth + 1, spans))})"
    if kind == "badfunc":
        return f"toString({draw(st.sampled_from(FUNCS_BAD))}({draw(expressions(depth + 1, spans))}))"
    if kind == "subquery":
        sub = draw(selects(depth + 1, aggregate=True))
        return f"toString(({sub}))"
    if kind == "lambda":
        return f"arrayStringConcat(arrayMap(v -> concat(toString(v), {draw(expressions(depth + 1, spans))}), [1, 2]))"
    target = draw(st.sampled_from(["(" + draw(selects(depth + 1)) + ")"] * 4 + [
        "spanledger.spanledger_spans_unpriced", "otel_traces", "('a', 'b')", "{ids:Array(String)}"]))
    op = draw(st.sampled_from(["IN", "NOT IN", "GLOBAL IN"]))
    return f"toString({draw(expressions(depth + 1, spans))} {op} {target})"


@st.composite
def selects(draw, depth: int = 0, aggregate: bool = False):
    """A SELECT of one String column (``aggregate``: one row) at the top or as a subquery."""
    table = _maybe(draw, TABLES_BAD) or draw(st.sampled_from(TABLES_OK))
    spans = "otel_traces" in table
    expr = draw(expressions(depth, spans))
    if aggregate:
        fn = draw(st.sampled_from(AGGREGATES))
        projection = "toString(count())" if fn == "count" else f"toString({fn}({expr}))"
    else:
        projection = expr
    sql = f"SELECT {projection} FROM {table} AS x"
    if draw(st.booleans()):
        other = _maybe(draw, TABLES_BAD[:4], rate=5) or draw(st.sampled_from(TABLES_OK))
        join = draw(st.sampled_from(["JOIN", "LEFT JOIN", "CROSS JOIN", "FULL JOIN"]))
        sql += f" {join} {other} AS y" + ("" if join == "CROSS JOIN" else " ON x.TenantId = y.TenantId")
    if draw(st.booleans()):
        sql += " ARRAY JOIN [1, 2] AS n"
    for clause in ("PREWHERE", "WHERE"):
        if draw(st.booleans()):
            sql += f" {clause} {draw(expressions(depth + 1, spans))} != ''"
    if aggregate and draw(st.booleans()):
        sql += f" HAVING count() >= 0"
    if not aggregate and draw(st.booleans()):
        sql += f" ORDER BY {draw(expressions(depth + 1, spans))}"
    if draw(st.booleans()):
        sql += draw(st.sampled_from([" LIMIT 3", " LIMIT 2 OFFSET 1"] + ([] if aggregate else [" LIMIT 1 BY 1"])))
    if depth == 0 and draw(st.booleans()):
        sql = draw(st.sampled_from([f"WITH c AS ({sql}) SELECT * FROM c",
                                    f"{sql} UNION ALL {draw(selects(depth + 1))}",
                                    f"WITH c AS (SELECT * FROM spanledger.otel_traces) {sql}",
                                    f"SELECT * FROM ({sql}) AS s",
                                    f"{sql} EXCEPT {draw(selects(depth + 1))}"]))
    if depth == 0:
        sql += _maybe(draw, [" SETTINGS readonly = 0", " FORMAT JSON", " INTO OUTFILE '/tmp/fuzz'"], rate=20) or ""
    return sql


def _assert_only_allowed(sql: str, readable, tenant_scoped: bool) -> None:
    """The SQL that runs: every function allowed, every table allowed and (for a tenant) inside its filter."""
    tree = sqlglot.parse_one(sql, read=DIALECT)
    allowed_tables = set(readable.qualified(tenant_scoped))
    for node in tree.walk():
        if isinstance(node, _NAMED_FUNCTIONS):
            assert function_allowed(node.name), (node.name, sql)
        elif isinstance(node, exp.Func) and not isinstance(node, _STRUCTURE):
            shown = node.sql(DIALECT).split("(", 1)[0].strip()
            assert type(node) in typed_functions() or function_allowed(shown), (shown, sql)
        if isinstance(node, exp.Table):
            name = f"{node.db}.{node.name}" if node.db else node.name
            if not node.db:
                continue  # a CTE reference (the checker qualified every real table)
            assert name in allowed_tables, (name, sql)
            if tenant_scoped:
                select = node.parent.parent if not isinstance(node.parent, exp.Final) else node.parent.parent.parent
                assert isinstance(select, exp.Select) and isinstance(select.parent, exp.Subquery), sql
                assert select.args["where"].this.sql(DIALECT) == f"TenantId = {{{TENANT_PARAMETER}: String}}", sql


def _check_one(store, gateway, sql: str, tenant: str | None) -> None:
    readable = readable_tables(store.options)
    try:
        query, bound, _ = gateway.prepare(store, sql, {"p": "a", "ids": ["x"]}, tenant, None)
    except QueryRefused as exc:
        assert str(exc), sql
        event(f"refused: {exc.construct}")
        return
    event("admitted")
    _assert_only_allowed(query.sql, readable, tenant is not None)
    try:
        result = gateway.run(store, sql, {"p": "a", "ids": ["x"]}, tenant=tenant)
    except (QueryRefused, QueryLimitExceeded) as exc:  # the engine refused (types, unknown columns...)
        text = str(exc)
        event("admitted, the engine refused")
    else:
        event("admitted and ran")
        text = repr(result.result_rows)
    if tenant == "acme":
        assert SECRET not in text and GLOBEX_TRACE not in text and "'globex'" not in text, (sql, text[:300])


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(sql=selects())
def test_random_queries_admit_only_allowed_functions_tables_and_the_tenants_rows(store, sql):
    gateway = QueryGateway(QueryLimits(timeout_s=5, max_memory_bytes=256 << 20))
    _check_one(store, gateway, sql, "acme")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sql=st.one_of(st.text(max_size=200),
                     st.lists(st.sampled_from(["SELECT", "FROM", "WHERE", "(", ")", ",", "file", "system.tables",
                                               "spanledger.otel_traces", "IN", "'x'", "{a:String}", "SETTINGS",
                                               "INTO", "OUTFILE", ";", "KILL", "--", "/*", "*/", "`", '"', "\\",
                                               "1", "=", "->", "[", "]", "UNION ALL", "WITH", "AS", "t"]),
                              max_size=25).map(" ".join)))
def test_random_text_is_refused_cleanly_or_admitted_safely(store, sql):
    gateway = QueryGateway(QueryLimits(timeout_s=5))
    _check_one(store, gateway, sql, "acme")


_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_TEXT, quote_style=st.sampled_from(["backslash", "doubled"]))
def test_string_literals_reach_the_engine_exactly_as_written(store, value, quote_style):
    """The SQL that runs is generated by sqlglot: a literal must mean the same to the engine, or be refused."""
    if quote_style == "backslash":
        literal = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    else:
        literal = "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
    gateway = QueryGateway(QueryLimits(timeout_s=5))
    try:
        result = gateway.run(store, f"SELECT {literal} AS v, count() FROM spanledger.otel_traces", {}, tenant="acme")
    except QueryRefused:
        event("refused")
        return
    event("ran")
    assert result.result_rows == [(value, 4)], (literal, result.result_rows)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=_TEXT.filter(lambda s: s.strip()))
def test_quoted_identifiers_stay_names(store, name):
    """An alias is a name to the engine, never SQL: the column comes back under exactly that name."""
    quoted = "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"
    gateway = QueryGateway(QueryLimits(timeout_s=5))
    try:
        result = gateway.run(store, f"SELECT count() AS {quoted} FROM spanledger.otel_traces", {}, tenant="acme")
    except QueryRefused:
        event("refused")
        return
    event("ran")
    assert list(result.column_names) == [name] and result.result_rows == [(4,)], (quoted, result.column_names)
