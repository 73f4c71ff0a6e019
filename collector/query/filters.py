"""Filters shared by the activity API, reports, the feed, exports and the console.

A caller narrows what it reads in two ways, which combine with AND:

* **simple parameters**, one per field (``agent=planner&model=gpt-4o``); a
  field given several times matches any of its values;
* **an expression** (``where=``) with AND, OR, NOT and parentheses::

      agent:planner AND (model:gpt-4o OR NOT status:error) AND cost>0.01

  ``field:value`` is equality, ``field!=value`` its negation, ``field~text``
  a case-insensitive substring, and ``> >= < <=`` compare the numeric fields.
  Values are bare words (letters, digits and ``_ . - : / @``) or
  double-quoted strings with ``\\"`` and ``\\\\`` escapes.

Both compile to a SQL condition over a fixed set of column expressions, with
every value bound by the engine (``{fN:Type}``): nothing a caller sends is
ever formatted into SQL text.  A field a table does not have (a rollup has no
span ids) is refused with a message naming the field and the table.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..errors import SpanledgerError

MAX_EXPRESSION_CHARS = 2000
MAX_TERMS = 64
MAX_DEPTH = 16
MAX_VALUES_PER_FIELD = 100
MAX_VALUE_CHARS = 1000


class FilterError(SpanledgerError):
    """A filter the caller sent is not valid (HTTP 400); the message says what and how to fix it."""


@dataclass(frozen=True)
class Field:
    name: str
    column: str  # a column expression of the spans table (or of a rollup with the same column)
    numeric: bool = False
    doc: str = ""


# The fields a caller can filter on, by the name the API uses.
FIELDS: dict[str, Field] = {f.name: f for f in (
    Field("service", "ServiceName", doc="service.name of the resource"),
    Field("agent", "AgentName", doc="agent name (gen_ai.agent.name)"),
    Field("agent_id", "AgentId", doc="agent id (gen_ai.agent.id)"),
    Field("model", "Model", doc="model that answered (or was requested)"),
    Field("provider", "Provider", doc="provider (gen_ai.provider.name), lower case"),
    Field("project", "ProjectId"),
    Field("user", "UserId"),
    Field("session", "SessionId"),
    Field("conversation", "ConversationId"),
    Field("ticket", "TicketId"),
    Field("environment", "Environment"),
    Field("tenant", "TenantId", doc="operator tokens only"),
    Field("type", "ActivityType", doc="activity type (spanledger.activity.type)"),
    Field("severity", "Severity"),
    Field("status", "if(ActivityStatus != '', ActivityStatus, lower(StatusCode))",
          doc="activity status if the span set one, else the span status: unset, ok or error"),
    Field("trace", "TraceId"),
    Field("span", "SpanId"),
    Field("parent", "ParentSpanId"),
    Field("name", "SpanName"),
    Field("operation", "Operation", doc="chat, embeddings, execute_tool, invoke_agent..."),
    Field("tool", "ToolName"),
    Field("cost_source", "CostSource", doc="provided, computed, unknown_model or empty"),
    Field("cost", "TotalCost", numeric=True, doc="USD"),
    Field("duration_ms", "Duration / 1e6", numeric=True),
    Field("input_tokens", "InputTokens", numeric=True),
    Field("output_tokens", "OutputTokens", numeric=True),
    Field("tokens", "InputTokens + OutputTokens", numeric=True),
)}

# Columns every rollup table has, so the same filter narrows a rollup-backed report.
ROLLUP_COLUMNS = frozenset({"ServiceName", "Provider", "Model", "AgentName", "ProjectId", "UserId",
                            "Environment", "TenantId", "CostSource"})


@dataclass
class Condition:
    """A compiled condition: SQL text with placeholders, and the values they bind."""

    sql: str = "1"
    parameters: dict[str, object] = field(default_factory=dict)

    def and_(self, other: Condition) -> Condition:
        if other.sql == "1":
            return self
        if self.sql == "1":
            return other
        return Condition(f"({self.sql}) AND ({other.sql})", {**self.parameters, **other.parameters})


class _Binder:
    """Hands out parameter names; ``prefix`` keeps several conditions in one query apart."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.parameters: dict[str, object] = {}

    def bind(self, value: object, type_: str) -> str:
        name = f"{self.prefix}{len(self.parameters)}"
        self.parameters[name] = value
        return f"{{{name}:{type_}}}"


def _field(name: str, allowed_columns: frozenset[str] | None, operator: bool, where: str) -> Field:
    spec = FIELDS.get(name)
    if spec is None:
        raise FilterError(f"{where}: unknown filter field {name!r}; known fields: {', '.join(sorted(FIELDS))}")
    if spec.name == "tenant" and not operator:
        raise FilterError(f"{where}: filtering by tenant needs an operator token (a tenant token sees only its own rows)")
    if allowed_columns is not None and spec.column not in allowed_columns:
        raise FilterError(f"{where}: field {name!r} is not available here (this report reads a rollup that has only: "
                          f"{', '.join(sorted(n for n, f in FIELDS.items() if f.column in allowed_columns))})")
    return spec


def _check_value(value: str, where: str) -> str:
    if len(value) > MAX_VALUE_CHARS:
        raise FilterError(f"{where}: a filter value is over {MAX_VALUE_CHARS} characters")
    return value


def _numeric(value: str, where: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise FilterError(f"{where}: {value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise FilterError(f"{where}: {value!r} is not a finite number")
    return number


def compare(spec: Field, op: str, value: str, binder: _Binder, where: str) -> str:
    """One comparison of ``spec`` against ``value``, as SQL with ``value`` bound."""
    value = _check_value(value, where)
    if op in (">", ">=", "<", "<="):
        if not spec.numeric:
            raise FilterError(f"{where}: {spec.name!r} is not numeric; use {spec.name}:value or {spec.name}~text")
        return f"{spec.column} {op} {binder.bind(_numeric(value, where), 'Float64')}"
    if spec.numeric:
        placeholder = binder.bind(_numeric(value, where), "Float64")
        return f"{spec.column} {'=' if op == ':' else '!='} {placeholder}"
    if op == "~":
        return f"positionCaseInsensitiveUTF8({spec.column}, {binder.bind(value, 'String')}) > 0"
    return f"{spec.column} {'=' if op == ':' else '!='} {binder.bind(value, 'String')}"


# -- the expression language ------------------------------------------------------------
_TOKEN = re.compile(r"""
    \s*(?:
      (?P<lparen>\() | (?P<rparen>\)) |
      (?P<op>!=|>=|<=|[:~<>]) |
      (?P<quoted>"(?:[^"\\]|\\.)*") |
      (?P<word>[A-Za-z0-9_.\-/@+]+)
    )""", re.VERBOSE)
_KEYWORDS = {"AND", "OR", "NOT"}


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise FilterError(f"where: unexpected character {text[pos:].lstrip()[:1]!r} at position {pos + 1}; "
                              'write e.g. agent:planner AND (model:gpt-4o OR NOT status:error)')
        kind = match.lastgroup
        value = match.group(kind)
        start = match.start(kind) + 1
        if kind == "word" and value.upper() in _KEYWORDS:
            kind = value.upper()
        elif kind == "quoted":
            kind, value = "word", re.sub(r"\\(.)", r"\1", value[1:-1])
        out.append((kind, value, start))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, text: str, binder: _Binder, allowed: frozenset[str] | None, operator: bool) -> None:
        self.tokens = _tokens(text)
        self.i = 0
        self.binder = binder
        self.allowed = allowed
        self.operator = operator
        self.terms = 0

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _expect(self, kind: str, what: str) -> tuple[str, str, int]:
        token = self._peek()
        if token is None or token[0] != kind:
            where = f"at position {token[2]}" if token else "at the end"
            raise FilterError(f"where: expected {what} {where}; "
                              'write e.g. agent:planner AND (model:gpt-4o OR NOT status:error)')
        self.i += 1
        return token

    def parse(self) -> str:
        if not self.tokens:
            raise FilterError("where: the expression is empty; leave the parameter out to match everything")
        sql = self._or(0)
        if self._peek() is not None:
            raise FilterError(f"where: unexpected {self._peek()[1]!r} at position {self._peek()[2]} "
                              "(join conditions with AND or OR)")
        return sql

    def _or(self, depth: int) -> str:
        parts = [self._and(depth)]
        while self._peek() and self._peek()[0] == "OR":
            self.i += 1
            parts.append(self._and(depth))
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def _and(self, depth: int) -> str:
        parts = [self._not(depth)]
        while self._peek() and self._peek()[0] == "AND":
            self.i += 1
            parts.append(self._not(depth))
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def _not(self, depth: int) -> str:
        if depth > MAX_DEPTH:
            raise FilterError(f"where: nested more than {MAX_DEPTH} levels deep")
        token = self._peek()
        if token and token[0] == "NOT":
            self.i += 1
            return f"NOT ({self._not(depth + 1)})"
        if token and token[0] == "lparen":
            self.i += 1
            inner = self._or(depth + 1)
            self._expect("rparen", "')'")
            return inner
        return self._comparison()

    def _comparison(self) -> str:
        name = self._expect("word", "a field name")
        op = self._expect("op", "an operator (: != ~ > >= < <=)")
        value = self._expect("word", "a value")
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise FilterError(f"where: more than {MAX_TERMS} conditions; narrow the query with fewer")
        spec = _field(name[1], self.allowed, self.operator, f"where (position {name[2]})")
        return compare(spec, op[1], value[1], self.binder, f"where (position {value[2]})")


def parse_expression(text: str, *, prefix: str = "f", allowed_columns: frozenset[str] | None = None,
                     operator: bool = False) -> Condition:
    """Compile a ``where=`` expression; raises FilterError with the position of what is wrong."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise FilterError(f"where: the expression is over {MAX_EXPRESSION_CHARS} characters")
    binder = _Binder(prefix)
    sql = _Parser(text, binder, allowed_columns, operator).parse()
    return Condition(sql, binder.parameters)


def parse_time(value: str, name: str) -> dt.datetime:
    """ISO 8601 (a missing zone is UTC) or Unix seconds / milliseconds, to an aware UTC datetime."""
    text = value.strip()
    try:
        if re.fullmatch(r"\d{1,17}(\.\d+)?", text):
            number = float(text)
            seconds = number / 1000 if number > 1e11 else number  # past ~5138 AD in seconds: it is milliseconds
            return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise FilterError(f"{name}: {value!r} is not a time; give ISO 8601 (2026-12-01T09:30:00Z) "
                          "or Unix seconds or milliseconds") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def build_condition(params: Mapping[str, Iterable[str] | str], *, operator: bool, prefix: str = "f",
                    allowed_columns: frozenset[str] | None = None, time_column: str | None = "Timestamp",
                    time_type: str = "DateTime64(9)") -> Condition:
    """The condition for a request's filters: simple fields, ``since``/``until`` and ``where``.

    ``params`` maps parameter names to one value or a list of values (as a query
    string has them).  Names that are not filters are ignored here; routes
    check their own."""
    binder = _Binder(prefix)
    parts: list[str] = []
    for name, spec in FIELDS.items():
        values = _values(params.get(name))
        if not values:
            continue
        if len(values) > MAX_VALUES_PER_FIELD:
            raise FilterError(f"{name}: at most {MAX_VALUES_PER_FIELD} values per field")
        _field(name, allowed_columns, operator, name)
        ors = [compare(spec, ":", v, binder, name) for v in values]
        parts.append(ors[0] if len(ors) == 1 else "(" + " OR ".join(ors) + ")")
    for name, op in (("since", ">="), ("until", "<")):
        values = _values(params.get(name))
        if values:
            if time_column is None:
                raise FilterError(f"{name}: this endpoint takes no time range")
            if len(values) > 1:
                raise FilterError(f"{name}: give it once")
            parts.append(f"{time_column} {op} {binder.bind(parse_time(values[0], name), time_type)}")
    condition = Condition(" AND ".join(parts) if parts else "1", binder.parameters)
    expressions = _values(params.get("where"))
    if len(expressions) > 1:
        raise FilterError("where: give it once (combine conditions with AND / OR inside it)")
    if expressions:
        condition = condition.and_(parse_expression(expressions[0], prefix=prefix + "w",
                                                    allowed_columns=allowed_columns, operator=operator))
    return condition


def _values(raw: Iterable[str] | str | None) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [raw] if raw != "" else []
    return [v for v in raw if v != ""]
