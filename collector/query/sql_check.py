"""Parse, check and rewrite one caller query: what the gateway lets reach the engine.

The engine's own read-only mode does not stop a scalar ``file()`` or
``INTO OUTFILE`` (see ../shared/MEASURED.md), and a check that reads only part
of the engine's syntax tree misses subqueries in clauses it does not walk.  So
the query is parsed into a complete tree with sqlglot's ClickHouse dialect and
EVERY node is checked against allow-lists: node kinds (clauses, operators),
functions (functions.py) and tables.  Nothing is formatted into SQL text: the
SQL that runs is generated from the checked tree, re-parsed and checked again
(so a difference between sqlglot's generator and our reading of the tree cannot
smuggle anything through).

Tenancy is a rewrite, never session state: every allowed table reference
becomes ``(SELECT * FROM db.t WHERE TenantId = {__tenant:String}) AS alias``,
with the tenant bound by the engine as a parameter the caller cannot set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from ..errors import QueryRefused
from .functions import ALLOWED_FUNCTIONS, function_allowed

DIALECT = "clickhouse"
TENANT_PARAMETER = "__tenant"
TENANT_COLUMN = "TenantId"
MAX_QUERY_CHARS = 100_000
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FIRST_WORD = re.compile(r"^(?:\s|--[^\n]*(?:\n|$)|#[^\n]*(?:\n|$)|/\*.*?\*/|\()*([A-Za-z_]+)", re.S)
_STATEMENTS = frozenset("""INSERT ALTER DROP CREATE KILL USE SET SYSTEM OPTIMIZE TRUNCATE RENAME GRANT REVOKE SHOW
DESCRIBE DESC EXPLAIN CHECK ATTACH DETACH EXCHANGE WATCH DELETE UPDATE UNDROP BACKUP RESTORE MOVE REPLACE BEGIN COMMIT
ROLLBACK PREPARE EXECUTE EXISTS""".split())
_TABLE_SYNTAX_HELP = "allowed tables: {tables} (GET /v1/schema lists them with their columns)"

# Clauses and operators a SELECT may use.  Function nodes are checked apart (functions.py).
_STRUCTURE = tuple(getattr(exp, name) for name in """
Select Union Intersect Except Subquery With CTE TableAlias From Join Where PreWhere Group Having Order Ordered
Limit Offset Qualify Window WindowSpec Column Identifier Literal Alias Aliases Star Table Final TableSample
Tuple Array Paren Bracket Dot Placeholder DataType DataTypeParam Var Interval Null Boolean Case If Cast TryCast
Lambda Exists In Between Not And Or Xor Neg Add Sub Mul Div Mod IntDiv EQ NEQ NullSafeEQ NullSafeNEQ
GT GTE LT LTE Like ILike Is Distinct Filter Escape DPipe BitwiseAnd BitwiseOr BitwiseXor BitwiseNot
BitwiseLeftShift BitwiseRightShift Any All Slice Cube Rollup GroupingSets IgnoreNulls RespectNulls Kwarg
""".split())
# Nodes that carry the function name as written: checked by name against the allow-list.
_NAMED_FUNCTIONS = (exp.Anonymous, exp.AnonymousAggFunc, exp.ParameterizedAgg, exp.CombinedAggFunc,
                    exp.CombinedParameterizedAgg)
_SELECT_CLAUSES = {"with_", "expressions", "distinct", "from_", "joins", "prewhere", "where", "group", "having",
                   "qualify", "windows", "order", "limit", "offset", "sample"}
_SET_CLAUSES = {"with_", "this", "expression", "distinct", "order", "limit", "offset"}
_TABLE_PARTS = {"this", "db", "alias", "sample"}
_CLAUSE_NAMES = {"settings": "SETTINGS", "format": "FORMAT", "into": "INTO", "options": "OPTIONS",
                 "locks": "FOR UPDATE", "for_": "FOR", "connect": "CONNECT BY", "sort": "SORT BY",
                 "cluster": "CLUSTER BY", "distribute": "DISTRIBUTE BY", "laterals": "LATERAL",
                 "pivots": "PIVOT", "match": "MATCH_RECOGNIZE", "kind": "SELECT AS", "hint": "hints"}


def _typed_function_classes() -> frozenset[type]:
    """The sqlglot classes the allowed function names parse into (``toStartOfHour`` -> TimestampTrunc...).

    Derived from the allow-list, so a typed class is admitted only because an
    allowed name produces it."""
    classes: set[type] = set()
    for name in ALLOWED_FUNCTIONS:
        for args in ("", "x", "x, y", "x, y, z", "'HOUR', x"):
            for template in ("SELECT {n}({a})", "SELECT {n}(0.5)({a})"):
                try:
                    tree = sqlglot.parse_one(template.format(n=name, a=args), read=DIALECT)
                except Exception:  # noqa: BLE001 - a template the function does not fit
                    continue
                for node in tree.walk():
                    if isinstance(node, exp.Func) and not isinstance(node, _NAMED_FUNCTIONS):
                        classes.add(type(node))
    return frozenset(classes)


_TYPED_FUNCTIONS: frozenset[type] | None = None


def typed_functions() -> frozenset[type]:
    global _TYPED_FUNCTIONS
    if _TYPED_FUNCTIONS is None:
        _TYPED_FUNCTIONS = _typed_function_classes()
    return _TYPED_FUNCTIONS


@dataclass(frozen=True)
class CheckedQuery:
    """A query the gateway admitted: the SQL to run, and what it reads."""

    sql: str
    tables: frozenset[str]
    placeholders: frozenset[str]
    tenant_scoped: bool


@dataclass(frozen=True)
class ReadableTables:
    """The tables callers may read: ``database`` and the table names in it."""

    database: str
    names: tuple[str, ...]
    operator_only: tuple[str, ...] = ()  # tables without a TenantId column: the operator may read them

    def qualified(self, tenant_scoped: bool = True) -> list[str]:
        names = self.names if tenant_scoped else self.names + self.operator_only
        return [f"{self.database}.{name}" for name in names]


def refuse(message: str, construct: str) -> QueryRefused:
    return QueryRefused(message, construct=construct)


def check_parameter_names(parameters: dict) -> None:
    """Caller parameter names are identifiers; names starting with ``__`` are the gateway's own."""
    for name in parameters:
        if not isinstance(name, str) or not _NAME.match(name):
            raise refuse(f"parameter name {name!r} is not valid: use letters, digits and '_' "
                         "(and write {name:Type} in the query)", "parameter")
        if name.startswith("__"):
            raise refuse(f"parameter name {name!r} is reserved (names starting with '__' are set by the "
                         "collector): rename it", "parameter")


def parse_one(sql: str) -> exp.Expression:
    """The one SELECT in ``sql``, or QueryRefused naming what else is there."""
    text = sql.strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    if not text:
        raise refuse("empty query: give one SELECT statement", "empty")
    if len(text) > MAX_QUERY_CHARS:
        raise refuse(f"the query is {len(text)} characters long; the limit is {MAX_QUERY_CHARS}", "size")
    first = _FIRST_WORD.match(text)
    word = first.group(1).upper() if first else ""
    if word not in ("SELECT", "WITH"):
        if word not in _STATEMENTS:
            raise refuse(f"the query is not valid ClickHouse SQL: it must start with SELECT or WITH "
                         f"(it starts with {text[:20]!r})", "syntax")
        shown = word
        raise refuse(f"{shown} statements are not allowed: the SQL endpoint is read-only and runs one SELECT "
                     "(optionally with WITH and UNION/INTERSECT/EXCEPT)", shown)
    try:
        statements = [s for s in sqlglot.parse(text, read=DIALECT) if s is not None]
    except (ParseError, TokenError) as exc:
        _refuse_known_clause(text)
        detail = str(exc).split("\n", 1)[0][:300]
        raise refuse(f"the query is not valid ClickHouse SQL (or uses syntax the gateway does not admit): {detail}",
                     "syntax") from None
    except RecursionError:
        raise refuse("the query is nested too deeply to check: flatten its subqueries", "depth") from None
    if len(statements) != 1:
        raise refuse("only one statement is allowed: remove the ';' and everything after it", "multiple statements")
    tree = statements[0]
    while isinstance(tree, exp.Subquery) and not tree.args.get("alias"):
        _check_subquery_parts(tree)
        tree = tree.this
    if not isinstance(tree, (exp.Select, exp.SetOperation)):
        name = tree.this if isinstance(tree, exp.Command) else type(tree).__name__.upper()
        raise refuse(f"{name} statements are not allowed: the SQL endpoint is read-only and runs one SELECT", str(name))
    return tree


def _refuse_known_clause(text: str) -> None:
    """Name a refused clause the parser could not place (``INTO OUTFILE``...), rather than 'invalid SQL'."""
    try:
        words = [t.text.upper() for t in sqlglot.Dialect.get_or_raise(DIALECT).tokenize(text)]
    except Exception:  # noqa: BLE001 - the caller reports the parse error instead
        return
    for i, word in enumerate(words):
        if word == "INTO":
            target = " ".join(words[i:i + 2])
            raise refuse(f"{target} is not allowed: the SQL endpoint is read-only and returns results, it never "
                         "writes files or tables", "INTO")


def _check_subquery_parts(node: exp.Subquery) -> None:
    """``(SELECT ...) SETTINGS ...`` hangs the clause on the parentheses: refuse it there too."""
    for key, value in node.args.items():
        if value not in (None, [], False) and key not in ("this", "alias"):
            name = _CLAUSE_NAMES.get(key, key.upper())
            raise refuse(f"{name} is not allowed in a query to the gateway", name)


class _Checker:
    """One walk over every node of a tree; records what the rewrite needs."""

    def __init__(self, readable: ReadableTables, tenant_scoped: bool, verifying: bool = False) -> None:
        self.readable = readable
        self.tenant_scoped = tenant_scoped
        self.verifying = verifying
        self.table_refs: list[exp.Table] = []
        self.unscoped_refs: list[exp.Table] = []  # operator-only tables: qualified, never tenant-filtered
        self.qualified_columns: list[exp.Column] = []
        self.tables: set[str] = set()
        self.placeholders: set[str] = set()

    def _allowed_list(self) -> str:
        return _TABLE_SYNTAX_HELP.format(tables=", ".join(self.readable.qualified(self.tenant_scoped)))

    def visit(self, node: exp.Expression, ctes: frozenset[str]) -> None:
        self._check_node(node, ctes)
        inner = ctes
        if isinstance(node, exp.Query) and node.args.get("with_"):
            inner = self._visit_with(node.args["with_"], ctes)
        for key, value in node.args.items():
            if key == "with_":
                continue
            for child in value if isinstance(value, list) else (value,):
                if isinstance(child, exp.Expression):
                    self.visit(child, inner)

    def _visit_with(self, with_: exp.With, ctes: frozenset[str]) -> frozenset[str]:
        names = set(ctes)
        for key in with_.args:
            if key not in ("expressions", "recursive") and with_.args.get(key):
                raise refuse(f"WITH ... {key.upper()} is not supported by the gateway", "WITH")
        for cte in with_.expressions:
            if not isinstance(cte, exp.CTE):
                raise refuse("WITH must list name AS (SELECT ...) or expression AS name", "WITH")
            name = cte.alias
            if with_.args.get("recursive"):
                names.add(name)
            self.visit(cte.this, frozenset(names))
            alias = cte.args.get("alias")
            if alias is not None and alias.args.get("columns"):
                for column in alias.args["columns"]:
                    self.visit(column, frozenset(names))
            names.add(name)
        return frozenset(names)

    def _check_node(self, node: exp.Expression, ctes: frozenset[str]) -> None:
        if isinstance(node, (exp.Select, exp.SetOperation)):
            self._check_clauses(node)
        elif isinstance(node, exp.Subquery):
            _check_subquery_parts(node)
        if isinstance(node, exp.Table):
            self._check_table(node, ctes)
        elif isinstance(node, _NAMED_FUNCTIONS):
            if not function_allowed(node.name):
                raise refuse(f"function {node.name}() is not allowed: the gateway runs only pure functions "
                             "(nothing that reads files, the network, settings, dictionaries or other tables); "
                             "see docs/sql-gateway.md for the list", node.name)
        elif isinstance(node, exp.Func) and not isinstance(node, _STRUCTURE):
            # admitted if an allowed name parses into this class, or the generator writes it
            # under an allowed name (countIf -> CountIf -> "countIf(...)")
            shown = "" if type(node) in typed_functions() else node.sql(DIALECT).split("(", 1)[0].strip()[:60]
            if shown and not function_allowed(shown):
                raise refuse(f"function {shown}() is not allowed: the gateway runs only pure functions; "
                             "see docs/sql-gateway.md for the list", shown)
        elif not isinstance(node, _STRUCTURE):
            kind = type(node).__name__
            raise refuse(f"{kind} ({node.sql(DIALECT)[:80]!r}) is not allowed in a query to the gateway", kind)
        if isinstance(node, exp.In):
            field = node.args.get("field")
            if isinstance(field, (exp.Column, exp.Table, exp.Identifier, exp.Dot)):
                raise refuse(f"IN {field.sql(DIALECT)} reads a table by name: write IN (SELECT ... FROM ...) "
                             "over an allowed table instead", "IN <table>")
        elif isinstance(node, exp.Placeholder):
            self._check_placeholder(node)
        elif isinstance(node, exp.Var):
            if not _NAME.match(node.name):
                raise refuse(f"{node.name!r} is not allowed here", "keyword")
        elif isinstance(node, exp.Column):
            if node.args.get("catalog"):
                raise refuse(f"column {node.sql(DIALECT)} has too many name parts", "column")
            if node.args.get("db"):
                self.qualified_columns.append(node)
        elif isinstance(node, exp.Final) and not isinstance(node.this, exp.Table):
            raise refuse("FINAL applies to a table only", "FINAL")

    def _check_clauses(self, node: exp.Query) -> None:
        allowed = _SELECT_CLAUSES if isinstance(node, exp.Select) else _SET_CLAUSES
        for key, value in node.args.items():
            if value in (None, [], False) or key in allowed:
                continue
            if isinstance(node, exp.SetOperation) and key in ("by_name", "side", "kind", "on") and not value:
                continue
            name = _CLAUSE_NAMES.get(key, key.upper())
            how = " (limits are set by the collector; ask the operator to raise them)" if key == "settings" else ""
            raise refuse(f"{name} is not allowed in a query to the gateway{how}", name)

    def _check_placeholder(self, node: exp.Placeholder) -> None:
        name = node.name
        kind = node.args.get("kind")
        if not _NAME.match(name or "") or kind is None:
            raise refuse("parameters are written {name:Type}", "parameter")
        if name.startswith("__") and not (self.verifying and name == TENANT_PARAMETER):
            raise refuse(f"parameter {{{name}}} is reserved (names starting with '__' are set by the collector)",
                         "parameter")
        kind_sql = kind.sql(DIALECT) if isinstance(kind, exp.Expression) else str(kind)
        if kind_sql.strip().lower() == "identifier" or "identifier" in kind_sql.lower():
            raise refuse(f"parameter {{{name}:Identifier}} would name a table or column: only values may be "
                         "parameters", "Identifier parameter")
        self.placeholders.add(name)

    def _check_table(self, node: exp.Table, ctes: frozenset[str]) -> None:
        target = node.this
        if not isinstance(target, exp.Identifier):
            fname = target.name if isinstance(target, _NAMED_FUNCTIONS) else target.sql(DIALECT)[:60]
            raise refuse(f"table function or computed table {fname}() is not allowed: read the tables by name; "
                         + self._allowed_list(), "table function")
        for key, value in node.args.items():
            if value and key not in _TABLE_PARTS:
                raise refuse(f"table option {key.upper()} is not allowed in a query to the gateway", key.upper())
        if node.args.get("catalog"):
            raise refuse(f"table {node.sql(DIALECT)} has too many name parts; " + self._allowed_list(), "table")
        db = node.db
        name = node.name
        if not db and name in ctes:
            return  # a CTE defined around this reference
        if (not db or db == self.readable.database) and name in self.readable.names:
            if self.verifying and not db:
                raise refuse(f"internal check: table {name} left unqualified", "table")
            self.tables.add(f"{self.readable.database}.{name}")
            self.table_refs.append(node)
            return
        if (not db or db == self.readable.database) and name in self.readable.operator_only:
            if self.tenant_scoped:
                raise refuse(f"table {self.readable.database}.{name} has no tenant column and is read by the "
                             "operator only: read the span tables instead; " + self._allowed_list(), "table")
            if self.verifying and not db:
                raise refuse(f"internal check: table {name} left unqualified", "table")
            self.tables.add(f"{self.readable.database}.{name}")
            self.unscoped_refs.append(node)
            return
        shown = f"{db}.{name}" if db else name
        if db.lower() in ("system", "information_schema") or name.lower() in ("information_schema",):
            raise refuse(f"{shown}: system tables are not readable through SQL (GET /v1/schema describes what "
                         "you may read); " + self._allowed_list(), "system table")
        raise refuse(f"table {shown} is not readable here (a CTE name can be used only inside the query that "
                     "defines it); " + self._allowed_list(), "table")


def _tenant_filter() -> exp.Expression:
    return exp.EQ(this=exp.column(TENANT_COLUMN),
                  expression=exp.Placeholder(this=exp.Var(this=TENANT_PARAMETER),
                                             kind=exp.DataType.build("String", dialect=DIALECT)))


def _rewrite(tree: exp.Expression, checker: _Checker, tenant_scoped: bool) -> None:
    database = checker.readable.database
    if tenant_scoped and checker.table_refs:
        # PREWHERE cannot name a subquery's columns: it becomes part of WHERE (same rows; the
        # engine moves conditions to PREWHERE itself through the tenant subquery).
        for select in list(tree.find_all(exp.Select)):
            prewhere = select.args.get("prewhere")
            if prewhere is not None:
                select.set("prewhere", None)
                where = select.args.get("where")
                condition = prewhere.this if where is None else exp.and_(exp.paren(prewhere.this), exp.paren(where.this))
                select.set("where", exp.Where(this=condition))
    for column in checker.qualified_columns:
        if column.args.get("db") and column.text("db") == database:
            column.set("db", None)  # db.table.column -> table.column (the alias keeps the table's name)
    for table in checker.unscoped_refs:
        table.set("db", exp.to_identifier(database))
    for table in checker.table_refs:
        table.set("db", exp.to_identifier(database))
        if not tenant_scoped:
            continue
        alias = table.alias or table.name
        inner_table = exp.Table(this=table.this.copy(), db=exp.to_identifier(database))
        if table.args.get("sample"):
            inner_table.set("sample", table.args["sample"].copy())
        holder = table.parent if isinstance(table.parent, exp.Final) else table
        source: exp.Expression = exp.Final(this=inner_table) if holder is not table else inner_table
        inner = exp.Select(expressions=[exp.Star()], from_=exp.From(this=source), where=exp.Where(this=_tenant_filter()))
        holder.replace(exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(alias))))


def _verify(sql: str, readable: ReadableTables, tenant_scoped: bool) -> None:
    """Re-parse the SQL we generated and check it again, with the tenant filter in place around every table."""
    tree = parse_one(sql)
    checker = _Checker(readable, tenant_scoped, verifying=True)
    checker.visit(tree, frozenset())
    if not tenant_scoped:
        return
    expected = _tenant_filter()
    for table in checker.table_refs:
        holder = table.parent if isinstance(table.parent, exp.Final) else table
        source = holder.parent
        select = source.parent if isinstance(source, exp.From) else None
        where = select.args.get("where") if isinstance(select, exp.Select) else None
        if (where is None or where.this != expected or select.args.get("joins") or select.args.get("with_")
                or not isinstance(select.parent, exp.Subquery)):
            raise refuse("internal check: a table was left without its tenant filter; the query was not run", "tenancy")


def check_query(sql: str, readable: ReadableTables, *, tenant_scoped: bool) -> CheckedQuery:
    """Parse, check every node, rewrite for the tenant, generate, and re-check the generated SQL."""
    tree = parse_one(sql)
    checker = _Checker(readable, tenant_scoped)
    try:
        checker.visit(tree, frozenset())
        _rewrite(tree, checker, tenant_scoped)
        emitted = tree.sql(dialect=DIALECT, comments=False)
        _verify(emitted, readable, tenant_scoped)
    except RecursionError:
        raise refuse("the query is nested too deeply to check: flatten its subqueries", "depth") from None
    return CheckedQuery(sql=emitted, tables=frozenset(checker.tables), placeholders=frozenset(checker.placeholders),
                        tenant_scoped=tenant_scoped)
