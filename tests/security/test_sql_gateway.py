"""Attacks on POST /v1/sql through a real collector: two tenants, an operator, real HTTP and gRPC.

Every class from the security issue: functions that touch files, the network
or the process; statements other than SELECT; subqueries in every clause;
table functions, ``IN <table>``, dictionaries, settings; cross-tenant reads by
value, by blind boolean and through error messages.  Each refused query gets a
clear 4xx naming what was refused, leaves no file behind and changes nothing
another tenant sees.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from collector_support import start_collector
from gateway_support import (ACME, GLOBEX, GLOBEX_SECRET, GLOBEX_TRACE, OPERATOR, load_two_tenants, post_sql,
                             tenants_config)


@pytest.fixture(scope="module")
def collector(tmp_path_factory):
    collector = start_collector(tmp_path_factory.mktemp("gateway-attacks") / "data", tenants_config(timeout="10s"))
    load_two_tenants(collector)
    yield collector
    collector.stop(timeout_s=10)


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> Path:
    """A directory the attacks try to write into; it must stay empty."""
    return tmp_path_factory.mktemp("outside")


def _refused(collector, query: str, parameters: dict | None = None, token: str = ACME) -> dict:
    status, body, _ = post_sql(collector, token, query, parameters)
    assert status == 400, (query, status, body)
    text = json.dumps(body)
    assert body.get("error"), (query, body)
    assert GLOBEX_SECRET not in text and GLOBEX_TRACE.hex() not in text, (query, body)
    return body


FILE_NETWORK_PROCESS = [
    "file", "url", "remote", "remoteSecure", "s3", "s3Cluster", "cluster", "clusterAllReplicas", "input",
    "executable", "executablePool", "hdfs", "mysql", "postgresql", "jdbc", "odbc", "sqlite", "mongodb", "redis",
    "azureBlobStorage", "gcs", "iceberg", "deltaLake", "hudi", "merge", "numbers", "zeros", "generateRandom",
    "values", "view", "loop", "fuzzJSON", "dictionary", "format", "urlCluster", "fileCluster",
]
SCALAR_FORBIDDEN = [
    "file('/etc/passwd')", "file('collector.json')", "currentUser()", "currentDatabase()", "hostName()", "version()",
    "uptime()", "getSetting('readonly')", "getServerSetting('user_files_path')", "getMacro('x')",
    "filesystemAvailable()", "sleep(3)", "sleepEachRow(1)", "throwIf(1, 'x')", "dictGet('d', 'a', 1)",
    "dictGetString('d', 'a', 1)", "dictHas('d', 1)", "joinGet('spanledger.spanledger_price_lookup', 'x', 1)",
    "hasColumnInTable('system', 'tables', 'name')", "arrayReduce('sum', [1])", "serverUUID()", "queryID()",
    "initialQueryID()", "shardNum()", "tcpPort()", "currentProfiles()", "currentRoles()", "transactionID()",
    "addressToLine(1)", "demangle('x')", "globalIn(1, 1)", "in(1, spanledger.spanledger_spans_unpriced)",
    "runningAccumulate(x)", "blockSerializedSize(1)", "getSizeOfEnumType(1)", "isDecimalOverflow(1)",
]


@pytest.mark.parametrize("name", FILE_NETWORK_PROCESS)
def test_table_functions_are_refused_by_name(collector, name):
    body = _refused(collector, f"SELECT * FROM {name}('/etc/passwd', 'LineAsString')")
    assert name.lower() in body["error"].lower() or "not valid" in body["error"], body


@pytest.mark.parametrize("call", SCALAR_FORBIDDEN)
def test_scalar_functions_outside_the_allow_list_are_refused(collector, call):
    body = _refused(collector, f"SELECT {call}")
    assert "not allowed" in body["error"] or "not valid" in body["error"]


@pytest.mark.parametrize("query", [
    "SELECT 1 INTO OUTFILE '{path}/out.txt'",
    "SELECT SpanName FROM spanledger.otel_traces INTO OUTFILE '{path}/spans.csv' FORMAT CSV",
    "SELECT 1 INTO OUTFILE '{path}/x' TRUNCATE",
    "INSERT INTO FUNCTION file('{path}/f.txt', 'CSV') SELECT 1",
    "SELECT * FROM file('{path}/f.txt', 'CSV')",
    "SELECT file('{path}/../../../etc/passwd')",
    "SELECT 1 FORMAT CSV",
])
def test_nothing_is_written_or_read_on_disk(collector, outside, query):
    _refused(collector, query.format(path=outside))
    assert list(outside.iterdir()) == []


STATEMENTS = [
    "INSERT INTO spanledger.otel_traces (SpanName) VALUES ('x')", "INSERT INTO spanledger.otel_traces SELECT * FROM spanledger.otel_traces",
    "ALTER TABLE spanledger.otel_traces DELETE WHERE 1", "ALTER TABLE spanledger.otel_traces UPDATE SpanName = '' WHERE 1",
    "DROP TABLE spanledger.otel_traces", "DROP DATABASE spanledger", "CREATE TABLE x (a UInt8) ENGINE = Memory",
    "CREATE VIEW v AS SELECT * FROM spanledger.otel_traces", "KILL QUERY WHERE 1", "KILL QUERY WHERE user = 'default' SYNC",
    "KILL MUTATION WHERE 1", "USE system", "SET readonly = 0", "SET additional_table_filters = {}",
    "SYSTEM STOP MERGES", "SYSTEM SHUTDOWN", "SYSTEM DROP MARK CACHE", "OPTIMIZE TABLE spanledger.otel_traces FINAL",
    "TRUNCATE TABLE spanledger.otel_traces", "RENAME TABLE spanledger.otel_traces TO spanledger.x",
    "GRANT ALL ON *.* TO default", "REVOKE ALL ON *.* FROM default", "SHOW TABLES", "SHOW DATABASES",
    "SHOW CREATE TABLE spanledger.otel_traces", "SHOW PROCESSLIST", "SHOW TABLES FROM system WHERE name IN (SELECT TraceId FROM spanledger.otel_traces)",
    "DESCRIBE TABLE spanledger.otel_traces", "DESC spanledger.otel_traces", "EXPLAIN SELECT 1", "EXPLAIN AST SELECT 1",
    "CHECK TABLE spanledger.otel_traces", "ATTACH TABLE x", "DETACH TABLE spanledger.otel_traces",
    "EXCHANGE TABLES spanledger.otel_traces AND spanledger.spanledger_spans_unpriced", "WATCH spanledger.otel_traces",
    "DELETE FROM spanledger.otel_traces WHERE 1", "UPDATE spanledger.otel_traces SET SpanName = '' WHERE 1",
    "BACKUP TABLE spanledger.otel_traces TO File('b')", "UNDROP TABLE x", "EXISTS TABLE spanledger.otel_traces",
    "/* hidden */ KILL QUERY WHERE 1", "-- comment\nDROP TABLE spanledger.otel_traces", "(KILL QUERY WHERE 1)",
    "kill query where 1", "SELECT 1; KILL QUERY WHERE 1", "SELECT 1; DROP TABLE spanledger.otel_traces",
    "WITH 1 AS x INSERT INTO spanledger.otel_traces (SpanName) VALUES ('x')",
]


@pytest.mark.parametrize("query", STATEMENTS)
def test_every_statement_other_than_select_is_refused(collector, query):
    body = _refused(collector, query)
    assert any(w in body["error"] for w in ("not allowed", "only one statement", "not valid")), body


FORBIDDEN_TABLES = ["spanledger.spanledger_spans_unpriced", "spanledger_spans_unpriced", "system.processes",
                    "system.tables", "system.one", "information_schema.tables", "INFORMATION_SCHEMA.COLUMNS",
                    "spanledger.spanledger_model_prices", "spanledger.spanledger_price_lookup",
                    "spanledger.spanledger_otlp_raw", "spanledger.otel_traces_trace_id_ts", "default.otel_traces",
                    "spanledger.spanledger_schema_versions", "`spanledger`.`spanledger_spans_unpriced`",
                    "\"system\".\"tables\""]
SUB = "(SELECT count() FROM {t})"
CLAUSES = {
    "WITH": "WITH s AS (SELECT * FROM {t}) SELECT count() FROM s",
    "scalar WITH": "WITH " + SUB + " AS n SELECT n",
    "SELECT list": "SELECT " + SUB,
    "FROM": "SELECT count() FROM {t}",
    "FROM subquery": "SELECT count() FROM (SELECT * FROM {t})",
    "JOIN": "SELECT count() FROM spanledger.otel_traces AS a JOIN {t} AS b ON 1 = 1",
    "JOIN ON": "SELECT count() FROM spanledger.otel_traces AS a JOIN spanledger.otel_traces AS b ON a.SpanId = b.SpanId AND "
               + SUB + " >= 0",
    "WHERE": "SELECT count() FROM spanledger.otel_traces WHERE " + SUB + " > 0",
    "PREWHERE": "SELECT count() FROM spanledger.otel_traces PREWHERE " + SUB + " > 0",
    "GROUP BY": "SELECT count() FROM spanledger.otel_traces GROUP BY " + SUB,
    "HAVING": "SELECT count() FROM spanledger.otel_traces HAVING count() > " + SUB,
    "ORDER BY": "SELECT SpanName FROM spanledger.otel_traces ORDER BY " + SUB,
    "LIMIT BY": "SELECT SpanName FROM spanledger.otel_traces LIMIT 1 BY " + SUB,
    "LIMIT": "SELECT SpanName FROM spanledger.otel_traces LIMIT " + SUB,
    "QUALIFY": "SELECT SpanName, row_number() OVER () AS r FROM spanledger.otel_traces QUALIFY r > " + SUB,
    "WINDOW": "SELECT count() OVER w FROM spanledger.otel_traces WINDOW w AS (PARTITION BY " + SUB + ")",
    "ARRAY JOIN": "SELECT a FROM spanledger.otel_traces ARRAY JOIN [" + SUB + "] AS a",
    "IN": "SELECT count() FROM spanledger.otel_traces WHERE TraceId IN (SELECT toString(count()) FROM {t})",
    "NOT IN": "SELECT count() FROM spanledger.otel_traces WHERE TraceId NOT IN (SELECT toString(count()) FROM {t})",
    "GLOBAL IN": "SELECT count() FROM spanledger.otel_traces WHERE TraceId GLOBAL IN (SELECT toString(count()) FROM {t})",
    "GLOBAL NOT IN": "SELECT count() FROM spanledger.otel_traces WHERE TraceId GLOBAL NOT IN (SELECT toString(count()) FROM {t})",
    "EXISTS": "SELECT EXISTS (SELECT 1 FROM {t})",
    "lambda": "SELECT arrayMap(x -> x + " + SUB + ", [1, 2])",
    "CASE": "SELECT CASE WHEN " + SUB + " > 0 THEN 1 ELSE 0 END",
    "function argument": "SELECT toString(" + SUB + ")",
    "UNION": "SELECT 1 UNION ALL SELECT count() FROM {t}",
    "UNION DISTINCT": "SELECT 1 UNION DISTINCT SELECT count() FROM {t}",
    "INTERSECT": "SELECT 1 INTERSECT SELECT count() FROM {t}",
    "EXCEPT": "SELECT 1 EXCEPT SELECT count() FROM {t}",
    "nested": "SELECT (SELECT (SELECT (SELECT count() FROM {t})))",
    "CTE inside subquery": "SELECT * FROM (WITH s AS (SELECT * FROM {t}) SELECT count() FROM s)",
}


@pytest.mark.parametrize("clause", list(CLAUSES))
def test_no_clause_reaches_a_table_outside_the_allow_list(collector, clause):
    for table in FORBIDDEN_TABLES:
        body = _refused(collector, CLAUSES[clause].format(t=table))
        assert "not readable" in body["error"] or "operator only" in body["error"], (clause, table, body)


@pytest.mark.parametrize("query", [
    "SELECT count() FROM spanledger.otel_traces WHERE TraceId IN spanledger.spanledger_spans_unpriced",
    "SELECT count() FROM spanledger.otel_traces WHERE TraceId IN spanledger_spans_unpriced",
    "SELECT count() FROM spanledger.otel_traces WHERE TraceId NOT IN system.processes",
    "SELECT count() FROM spanledger.otel_traces WHERE TraceId GLOBAL IN spanledger.otel_traces_trace_id_ts",
    "SELECT count() FROM spanledger.otel_traces WHERE TraceId IN otel_traces",
    "WITH s AS (SELECT TraceId FROM spanledger.otel_traces) SELECT count() FROM spanledger.otel_traces WHERE TraceId IN s",
])
def test_in_a_table_by_name_is_refused(collector, query):
    assert "IN" in _refused(collector, query)["error"]


@pytest.mark.parametrize("query, parameters", [
    ("SELECT 1 SETTINGS readonly = 0", None),
    ("SELECT count() FROM spanledger.otel_traces SETTINGS additional_table_filters = {{}}", None),
    ("SELECT count() FROM spanledger.otel_traces SETTINGS max_execution_time = 0", None),
    ("SELECT 1 UNION ALL SELECT 2 SETTINGS max_memory_usage = 0", None),
    ("(SELECT count() FROM spanledger.otel_traces) SETTINGS additional_table_filters = {{}}", None),
    ("SELECT * FROM (SELECT 1) AS s SETTINGS max_execution_time = 0", None),
    ("SELECT * FROM {t:Identifier}", {"t": "system.tables"}),
    ("SELECT {c:Identifier} FROM spanledger.otel_traces", {"c": "TenantId"}),
    ("SELECT count() FROM spanledger.otel_traces WHERE TenantId = {__tenant:String}", {"__tenant": "globex"}),
    ("SELECT 1", {"__tenant": "globex"}),
    ("SELECT {__x:String}", None),
    ("SELECT 1", {"bad name": 1}),
])
def test_settings_identifier_parameters_and_reserved_names_are_refused(collector, query, parameters):
    _refused(collector, query, parameters)


def _acme_sees(collector, query: str, parameters: dict | None = None) -> dict:
    status, body, _ = post_sql(collector, ACME, query, parameters)
    text = json.dumps(body)
    assert GLOBEX_SECRET not in text and GLOBEX_TRACE.hex() not in text, (query, body)
    assert "globex" not in text.replace("globex_", ""), (query, body)
    return {"status": status, **body}


GLOBEX_ROUTES = [  # accepted queries that would show globex's rows if tenancy leaked anywhere
    ("SELECT * FROM spanledger.otel_traces", None),
    ("SELECT TraceId, SpanName, TenantId FROM otel_traces", None),
    ("SELECT count() FROM spanledger.otel_traces WHERE TraceId = {g:String}", {"g": GLOBEX_TRACE.hex()}),
    ("SELECT (SELECT count() FROM spanledger.otel_traces WHERE TraceId = {g:String}) > 0", {"g": GLOBEX_TRACE.hex()}),
    ("SELECT count() FROM spanledger.otel_traces WHERE TenantId = 'globex'", None),
    ("SELECT toUInt64((SELECT any(SpanName) FROM spanledger.otel_traces WHERE TenantId = 'globex'))", None),
    ("SELECT toUInt64((SELECT any(SpanName) FROM spanledger.otel_traces WHERE SpanName LIKE 'globex%'))", None),
    ("SELECT toUInt64((SELECT groupArray(TraceId) FROM spanledger.otel_traces))", None),
    ("SELECT groupUniqArray(TenantId) FROM spanledger.spanledger_usage_hourly", None),
    ("SELECT groupUniqArray(TenantId), sum(Spans) FROM spanledger.spanledger_usage_hourly FINAL", None),
    ("SELECT groupUniqArray(TenantId) FROM spanledger.spanledger_cost_daily", None),
    ("SELECT * FROM spanledger.otel_traces AS a FULL OUTER JOIN spanledger.otel_traces AS b ON a.SpanId = b.SpanId", None),
    ("SELECT * FROM (SELECT * FROM spanledger.otel_traces UNION ALL SELECT * FROM spanledger.otel_traces)", None),
    ("WITH t AS (SELECT * FROM spanledger.otel_traces) SELECT * FROM t AS x, t AS y", None),
    ("SELECT TraceId FROM spanledger.otel_traces ARRAY JOIN [1, 2] AS n WHERE n > 0", None),
    ("SELECT arrayMap(x -> (SELECT count() FROM spanledger.otel_traces WHERE TraceId = {g:String}), [1])",
     {"g": GLOBEX_TRACE.hex()}),
    ("SELECT SpanName FROM spanledger.otel_traces WHERE TraceId = {g:String} OR 1 = 1", {"g": GLOBEX_TRACE.hex()}),
    ("SELECT count() FROM spanledger.otel_traces PREWHERE TenantId != 'acme'", None),
    ("SELECT count() FROM spanledger.otel_traces AS otel_traces WHERE otel_traces.TenantId = 'globex'", None),
    ("SELECT spanledger.otel_traces.SpanName FROM spanledger.otel_traces", None),
    ("SELECT toUInt8(SpanName) FROM spanledger.otel_traces", None),
]


@pytest.mark.parametrize("query, parameters", GLOBEX_ROUTES)
def test_no_route_shows_another_tenants_rows(collector, query, parameters):
    seen = _acme_sees(collector, query, parameters)
    assert seen["status"] in (200, 400), seen
    if seen["status"] == 200 and "count()" in query and "TraceId = {g" in query:
        assert seen["rows"] in ([[0]], [[False]], [[[0]]]), seen


def test_each_tenant_and_the_operator_see_what_they_should(collector):
    status, acme, _ = post_sql(collector, ACME, "SELECT SpanName, TenantId FROM spanledger.otel_traces ORDER BY SpanName")
    assert status == 200 and acme["rows"] == [["acme-0", "acme"], ["acme-1", "acme"]]
    status, globex, _ = post_sql(collector, GLOBEX, "SELECT count(), any(TraceId) FROM spanledger.otel_traces")
    assert status == 200 and globex["rows"] == [[3, GLOBEX_TRACE.hex()]]
    status, op, _ = post_sql(collector, OPERATOR, "SELECT TenantId, count() FROM spanledger.otel_traces "
                                                  "GROUP BY TenantId ORDER BY TenantId")
    assert status == 200 and op["rows"] == [["acme", 2], ["globex", 3]]
    # the operator is still bound by the allow-list
    for query in ("SELECT file('/etc/passwd')", "SELECT * FROM system.tables", "KILL QUERY WHERE 1"):
        _refused(collector, query, token=OPERATOR)
    status, lookup, _ = post_sql(collector, OPERATOR, "SELECT count() FROM spanledger.otel_traces_trace_id_ts "
                                                      "WHERE TraceId = {g:String}", {"g": GLOBEX_TRACE.hex()})
    assert status == 200 and lookup["rows"] == [[1]]


def test_after_every_attack_the_store_and_other_tenants_are_unchanged(collector):
    # runs last in this module (pytest keeps file order)
    status, body, _ = post_sql(collector, OPERATOR, "SELECT TenantId, count() FROM spanledger.otel_traces "
                                                    "GROUP BY TenantId ORDER BY TenantId")
    assert body["rows"] == [["acme", 2], ["globex", 3]]
    status, body, _ = post_sql(collector, GLOBEX, "SELECT count() FROM spanledger.otel_traces WHERE SpanName = {s:String}",
                               {"s": GLOBEX_SECRET})
    assert body["rows"] == [[3]]
    tables = {r[0] for r in collector.store().query(
        "SELECT name FROM system.tables WHERE database NOT IN ('system', 'information_schema', 'INFORMATION_SCHEMA')").result_rows}
    assert "x" not in tables and "v" not in tables and "otel_traces" in tables
    assert list((collector.data_dir / "user_files").iterdir()) == []


def test_the_streaming_form_is_checked_at_once_and_yields_only_the_tenants_rows(collector):
    from spanledger.collector.errors import QueryRefused
    from spanledger.collector.query import run_query_stream

    with pytest.raises(QueryRefused, match="file"):
        run_query_stream(collector, "SELECT file('/etc/passwd')", tenant="acme")
    rows = [row for block in run_query_stream(collector, "SELECT SpanName FROM spanledger.otel_traces ORDER BY SpanName",
                                              tenant="acme") for row in block]
    assert rows == [("acme-0",), ("acme-1",)]


def test_the_engines_file_root_is_an_empty_directory_inside_the_data_dir(collector):
    store = collector.store()
    root = store.query("SELECT getServerSetting('user_files_path')").result_rows[0][0]
    assert Path(root).resolve() == (collector.data_dir / "user_files").resolve()
    assert list(Path(root).iterdir()) == []
