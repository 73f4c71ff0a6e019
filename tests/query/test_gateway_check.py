"""The gateway's checker, rewrite, limits and configuration, without an engine (see test_gateway.py for chDB)."""

from __future__ import annotations

import pytest
import sqlglot

from spanledger.collector.config import ConfigError, load_config
from spanledger.collector.errors import QueryRefused
from spanledger.collector.query.functions import function_allowed
from spanledger.collector.query.limits import QueryLimits, engine_code, limit_error
from spanledger.collector.query.sql_check import MAX_QUERY_CHARS, ReadableTables, check_query

READABLE = ReadableTables("spanledger", ("otel_traces", "spanledger_usage_hourly", "spanledger_cost_daily"),
                          operator_only=("otel_traces_trace_id_ts",))


def tenant(sql: str) -> str:
    return check_query(sql, READABLE, tenant_scoped=True).sql


def refused(sql: str, tenant_scoped: bool = True) -> QueryRefused:
    with pytest.raises(QueryRefused) as info:
        check_query(sql, READABLE, tenant_scoped=tenant_scoped)
    return info.value


def test_a_table_becomes_a_tenant_filtered_subquery_under_its_own_name():
    assert tenant("SELECT SpanName FROM spanledger.otel_traces WHERE UserId = {u:String}") == (
        "SELECT SpanName FROM (SELECT * FROM spanledger.otel_traces WHERE TenantId = {__tenant: String}) "
        "AS otel_traces WHERE UserId = {u: String}")
    assert "AS t WHERE" in tenant("SELECT t.SpanName FROM otel_traces AS t WHERE 1")
    assert tenant("SELECT spanledger.otel_traces.SpanName FROM spanledger.otel_traces").startswith(
        "SELECT otel_traces.SpanName FROM (SELECT")


def test_the_operator_is_checked_but_not_rewritten():
    out = check_query("SELECT count() FROM otel_traces_trace_id_ts", READABLE, tenant_scoped=False).sql
    assert out == "SELECT count() FROM spanledger.otel_traces_trace_id_ts"
    assert "operator only" in str(refused("SELECT count() FROM otel_traces_trace_id_ts"))
    assert refused("SELECT file('x')", tenant_scoped=False).construct == "file"


def test_every_table_reference_is_rewritten_wherever_it_is():
    sql = ("WITH a AS (SELECT TraceId FROM otel_traces) SELECT (SELECT count() FROM spanledger.spanledger_cost_daily), "
           "arrayMap(x -> x IN (SELECT Model FROM spanledger.spanledger_usage_hourly), ['m']) FROM a "
           "JOIN spanledger.otel_traces AS b ON a.TraceId = b.TraceId WHERE b.SpanId IN (SELECT SpanId FROM otel_traces) "
           "UNION ALL SELECT 1, [1] FROM spanledger.otel_traces FINAL")
    out = tenant(sql)
    tree = sqlglot.parse_one(out, read="clickhouse")
    tables = list(tree.find_all(sqlglot.exp.Table))
    real = [t for t in tables if t.db]
    assert len(real) == 6 and all(t.name != "a" or not t.db for t in tables)
    assert out.count("WHERE TenantId = {__tenant: String}") == 6


def test_a_cte_is_a_table_only_inside_the_query_that_defines_it():
    assert tenant("WITH c AS (SELECT 1 AS x) SELECT * FROM c") == "WITH c AS (SELECT 1 AS x) SELECT * FROM c"
    assert tenant("WITH c AS (SELECT 1 AS x) SELECT (SELECT count() FROM c)")
    assert refused("SELECT * FROM (WITH c AS (SELECT 1) SELECT * FROM c) AS s JOIN c ON 1").construct == "table"
    assert refused("WITH c AS (SELECT * FROM c) SELECT 1").construct == "table"  # not recursive: c is not yet defined
    assert refused("WITH c AS (SELECT 1) SELECT * FROM spanledger.c").construct == "table"  # qualified: not the CTE


def test_prewhere_is_folded_into_where_around_tenant_subqueries():
    out = tenant("SELECT count() FROM otel_traces PREWHERE SpanName = 'x' WHERE Duration > 1")
    assert "PREWHERE" not in out and "WHERE (SpanName = 'x') AND (Duration > 1)" in out


@pytest.mark.parametrize("sql, construct", [
    ("SELECT 1 SETTINGS max_threads = 1", "SETTINGS"),
    ("SELECT 1 UNION ALL SELECT 2 SETTINGS readonly = 0", "SETTINGS"),
    ("SELECT 1 FORMAT JSON", "FORMAT"),
    ("(SELECT 1) FORMAT JSON", "FORMAT"),
    ("(SELECT 1) SETTINGS readonly = 0", "SETTINGS"),
    ("SELECT * FROM (SELECT 1) AS s SETTINGS readonly = 0", "SETTINGS"),
    ("SELECT `file`('/etc/passwd')", "file"),
    ("SELECT * REPLACE (file('x') AS a) FROM otel_traces", "file"),
    ("SELECT 1 INTO OUTFILE '/tmp/x'", "INTO"),
    ("SELECT * FROM {t:Identifier}", "table function"),
    ("SELECT {c:Identifier}", "Identifier parameter"),
    ("SELECT {__tenant:String}", "parameter"),
    ("SELECT x FROM otel_traces WHERE x IN otel_traces", "IN <table>"),
    ("SELECT * FROM numbers(10)", "table function"),
    ("SELECT * FROM system.one", "system table"),
    ("SELECT 1; SELECT 2", "multiple statements"),
    ("SHOW TABLES", "SHOW"),
    ("   ", "empty"),
    ("SELEC 1", "syntax"),
])
def test_refusals_name_the_construct(sql, construct):
    assert refused(sql).construct == construct


def test_deep_nesting_and_huge_queries_are_refused_not_crashed():
    deep = "SELECT " + "(" * 3000 + "1" + ")" * 3000
    assert refused(deep).construct in ("depth", "syntax")
    assert refused("SELECT " + "1 + " * MAX_QUERY_CHARS + "1").construct == "size"


def test_string_literals_survive_the_round_trip_exactly():
    for value in ["it's", "back\\slash", "quote\\'s", "new\nline", "tab\t", "{x:String}", "'; DROP TABLE x; --"]:
        literal = "'" + value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\t", "\\t") + "'"
        out = tenant(f"SELECT {literal} AS v")
        parsed = sqlglot.parse_one(out, read="clickhouse")
        assert parsed.expressions[0].this.this == value, (value, out)


@pytest.mark.parametrize("name, allowed", [
    ("sum", True), ("sumIf", True), ("uniqExactIf", True), ("avgOrNull", True), ("countDistinct", True),
    ("quantilesTDigestIf", True), ("LOWER", True), ("toStartOfHour", True),
    ("file", False), ("FILE", False), ("sumState", False), ("dictGetString", False), ("xIf", False), ("IfIf", False),
    ("arrayReduce", False), ("sleepEachRow", False), ("getSettingIf", False),
])
def test_function_allow_list_and_combinators(name, allowed):
    assert function_allowed(name) is allowed


def test_limits_come_from_config_with_memory_a_share_of_the_ceiling():
    shipped = load_config(text="{}")
    defaults = QueryLimits.from_config(shipped)
    ceiling_mib = shipped.get("processors.memory_limiter.limit_mib")
    assert defaults.max_memory_bytes == (ceiling_mib // 2 // 4) << 20 and defaults.timeout_s == 30
    custom = QueryLimits.from_config(load_config(text="""
processors: {memory_limiter: {limit_mib: 1000}}
extensions: {spanledger_api: {query_limits: {timeout: 1500ms, max_concurrency: 2, per_tenant_concurrency: 1}}}
"""))
    assert (custom.timeout_s, custom.max_memory_bytes, custom.max_concurrency, custom.per_tenant_concurrency) == (
        1.5, 250 << 20, 2, 1)
    with pytest.raises(ConfigError, match="query_limits.timeout"):
        load_config(text="extensions: {spanledger_api: {query_limits: {timeout: soon}}}")
    with pytest.raises(ConfigError, match="query_limits.max_threads: unknown key"):
        load_config(text="extensions: {spanledger_api: {query_limits: {max_threads: 1}}}")
    settings = defaults.settings(marker="m")
    assert list(settings)[-1] == "readonly" and settings["result_overflow_mode"] == "throw"
    assert "max_result_rows" not in defaults.settings(marker="m", stream=True)


class _EngineError(Exception):
    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


@pytest.mark.parametrize("code, key", [(159, "timeout"), (241, "max_memory_mib"), (158, "max_rows_to_read"),
                                       (396, "max_result_rows")])
def test_engine_limit_errors_are_classified_by_code(code, key):
    limits = QueryLimits()
    assert engine_code(_EngineError("anything", code)) == code
    assert engine_code(_EngineError(f"Code: {code}. DB::Exception: words that say nothing")) == code
    error = limit_error(code, limits)
    assert error is not None and key in error.limit and key in str(error)
    assert limit_error(62, limits) is None  # a syntax error is not a limit
