"""Render the plain .sql files in schema/ for one deployment.

Everything that differs between the embedded store, a single ClickHouse
server and a cluster is decided here, from ``SchemaOptions``: table engines,
``ON CLUSTER``, the ``_local`` + ``Distributed`` pair, the TTL.  The .sql files
stay readable SQL with ``${name}`` placeholders.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

_PLACEHOLDER = re.compile(r"\$\{([a-z_]+)\}")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
REPEATABLE_MARKER = "-- spanledger: repeatable"

# The decoded shape of an OTLP AnyValue (see schema/otlp_wal.proto): Nullable
# members keep the oneof's presence, so an int 0 stays "0", not "".
_SCALAR = (
    "string_value Nullable(String), bool_value Nullable(Bool), int_value Nullable(Int64), "
    "double_value Nullable(Float64), bytes_value Nullable(String)"
)
_NESTED = (f"Tuple({_SCALAR}, array_value Tuple(values Array(Tuple({_SCALAR}))), "
           f"kvlist_value Tuple(values Array(Tuple(key String, value Tuple({_SCALAR})))))")
ANY_VALUE_TYPE = (f"Tuple({_SCALAR}, array_value Tuple(values Array({_NESTED})), "
                  f"kvlist_value Tuple(values Array(Tuple(key String, value {_NESTED}))))")

# Tables that hold data; on a cluster each gets a Distributed twin for reads.
DISTRIBUTED_TABLES = ("{traces}", "{traces}_trace_id_ts", "{traces}_trace_rows", "spanledger_usage_hourly",
                      "spanledger_cost_daily")


@dataclass(frozen=True)
class SchemaOptions:
    """What a deployment chooses about its schema (from the clickhouse exporter config)."""

    database: str = "spanledger"
    traces_table: str = "otel_traces"
    cluster: str = ""
    ttl_days: int = 0
    max_attributes: int = 128
    max_attribute_length: int = 65536
    max_events: int = 128
    max_links: int = 128
    provided_cost_wins: bool = True
    # attribute keys (RE2 regular expressions) whose content must never be stored
    drop_attribute_patterns: tuple[str, ...] = ()
    redact_attribute_patterns: tuple[str, ...] = ()
    # retention by tier, in days (0 = forever): schema/030_retention.sql
    retention_spans_days: int = 0
    retention_rollups_days: int = 0

    def __post_init__(self) -> None:
        for name in ("database", "traces_table"):
            value = getattr(self, name)
            if not _IDENTIFIER.match(value):
                raise ValueError(f"{name}={value!r} is not a valid ClickHouse identifier: use letters, digits and _")
        if self.cluster and not _IDENTIFIER.match(self.cluster):
            raise ValueError(f"cluster_name={self.cluster!r} is not a valid ClickHouse cluster name")
        for pattern in (*self.drop_attribute_patterns, *self.redact_attribute_patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"redaction pattern {pattern!r} is not a valid regular expression: {exc}") from exc
        for name in ("ttl_days", "retention_spans_days", "retention_rollups_days", "max_attributes", "max_attribute_length", "max_events", "max_links"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @property
    def storage_table(self) -> str:
        """The MergeTree that holds spans: on a cluster the shard-local table."""
        return f"{self.traces_table}_local" if self.cluster else self.traces_table

    def placeholders(self) -> dict[str, str]:
        on_cluster = f"ON CLUSTER {self.cluster}" if self.cluster else ""

        def engine(kind: str) -> str:
            if not self.cluster:
                return f"{kind}()" if kind != "ReplacingMergeTree" else kind
            path = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"
            return f"Replicated{kind}({path})" if kind != "ReplacingMergeTree" else f"Replicated{kind}"

        def ttl(column: str) -> str:
            return f"TTL toDateTime({column}) + toIntervalDay({self.ttl_days})" if self.ttl_days else ""

        return {
            "database": self.database,
            "traces_table": self.storage_table,
            "on_cluster": on_cluster,
            "local_suffix": "_local" if self.cluster else "",
            "merge_tree": engine("MergeTree"),
            "summing_merge_tree": engine("SummingMergeTree"),
            # ReplacingMergeTree takes its version column as an argument, so
            # the replicated form needs the path first: see _replacing_engine.
            "replacing_merge_tree": engine("ReplacingMergeTree"),
            "ttl": ttl("Timestamp"),
            "ttl_start": ttl("Start"),
            "ttl_hour": ttl("Hour"),
            "retention_spans_days": str(self.retention_spans_days),
            "retention_spans_where": "" if self.retention_spans_days else "DELETE WHERE 0",
            "retention_rollups_days": str(self.retention_rollups_days),
            "retention_rollups_where": "" if self.retention_rollups_days else "DELETE WHERE 0",
            "any_value_type": ANY_VALUE_TYPE,
            "max_attributes": str(self.max_attributes),
            "max_attribute_length": str(self.max_attribute_length),
            "max_events": str(self.max_events),
            "max_links": str(self.max_links),
            "provided_cost_wins": "1" if self.provided_cost_wins else "0",
            "stored_span_attributes": self._stored_attributes_expr("sa"),
            "stored_event_attributes": self._stored_attributes_expr(
                f"spanledger_attributes_to_map(e.attributes, {self.max_attributes}, {self.max_attribute_length})"),
        }

    def _stored_attributes_expr(self, map_expr: str) -> str:
        """The attribute map as stored: content keys dropped or redacted (the promoted columns read it first)."""
        expr = map_expr
        if self.drop_attribute_patterns:
            expr = f"mapFilter((k, v) -> NOT arrayExists(p -> match(k, p), {_sql_array(self.drop_attribute_patterns)}), {expr})"
        if self.redact_attribute_patterns:
            expr = (f"mapApply((k, v) -> (k, if(arrayExists(p -> match(k, p), {_sql_array(self.redact_attribute_patterns)}), "
                    f"'[REDACTED]', v)), {expr})")
        return expr


def _sql_array(values: tuple[str, ...]) -> str:
    quoted = ("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values)
    return "[" + ", ".join(quoted) + "]"


@dataclass(frozen=True)
class SchemaFile:
    """One rendered schema file: its version (the number in its name) and statements."""

    version: int
    name: str
    repeatable: bool
    statements: tuple[str, ...]

    @property
    def checksum(self) -> str:
        return hashlib.sha256("\n;\n".join(self.statements).encode()).hexdigest()[:16]


def schema_files(options: SchemaOptions) -> list[SchemaFile]:
    """All schema files rendered for ``options``, in the order they apply."""
    files = []
    package = resources.files("spanledger.schema")
    for entry in sorted(package.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        text = entry.read_text(encoding="utf-8")
        version = int(entry.name.split("_", 1)[0])
        statements = tuple(render(s, options) for s in split_statements(text))
        if options.cluster:
            statements = tuple(_replicated_replacing(s) for s in statements)
        files.append(SchemaFile(version, entry.name, text.lstrip().startswith(REPEATABLE_MARKER), statements))
    if options.cluster:
        files.append(SchemaFile(999, "distributed_tables", True, tuple(distributed_ddl(options))))
    return files


def render(sql: str, options: SchemaOptions) -> str:
    values = options.placeholders()

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"schema placeholder ${{{name}}} has no value; known: {', '.join(sorted(values))}")
        return values[name]

    return _PLACEHOLDER.sub(substitute, sql)


def split_statements(text: str) -> list[str]:
    """Split a .sql file on the ';' that ends a line (our files keep one statement per such ';')."""
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return [part.strip() for part in re.split(r";\s*(?:\n|$)", body) if part.strip()]


def distributed_ddl(options: SchemaOptions) -> list[str]:
    """Distributed tables with the canonical names over the shard-local tables."""
    out = []
    for template in DISTRIBUTED_TABLES:
        name = template.format(traces=options.traces_table)
        local = template.format(traces=options.storage_table) if "{traces}" in template else f"{name}_local"
        out.append(
            f"CREATE TABLE IF NOT EXISTS {options.database}.{name} ON CLUSTER {options.cluster} "
            f"AS {options.database}.{local} "
            f"ENGINE = Distributed({options.cluster}, {options.database}, {local}, rand())"
        )
    return out


def _replicated_replacing(statement: str) -> str:
    # ReplacingMergeTree(ver) -> ReplicatedReplacingMergeTree(path, replica, ver)
    return re.sub(
        r"ReplicatedReplacingMergeTree\((\w+)\)",
        r"ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', \1)",
        statement,
    )
