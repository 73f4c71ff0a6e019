"""What a tenant's query may read: its own rows of the span tables, nothing else.

A tenant's queries run on a read-only handle of its own whose
``additional_table_filters`` add ``TenantId = '<tenant>'`` to every read of a
span table; the handle is made read-only after the filter is set, so no query
can lift it.  Table functions (``merge()``, ``remote()``...) and other tables
would read around the filter, so the query's syntax tree is checked first:
only the tables below, by name, and no table functions.
"""

from __future__ import annotations

TENANT_TABLES = ("otel_traces", "spanledger_usage_hourly", "spanledger_cost_daily")


class TenantQueryRefused(Exception):
    pass


def tenant_tables(database: str, traces_table: str) -> list[str]:
    names = [traces_table if t == "otel_traces" else t for t in TENANT_TABLES]
    return [f"{database}.{name}" for name in names]


def filter_setting(database: str, traces_table: str, tenant: str) -> str:
    """The value of additional_table_filters that confines reads to ``tenant``'s rows."""
    literal = tenant.replace("\\", "\\\\").replace("'", "\\'")
    condition = f"TenantId = '{literal}'".replace("\\", "\\\\").replace("'", "\\'")
    entries = ", ".join(f"'{table}': '{condition}'" for table in tenant_tables(database, traces_table))
    return "{" + entries + "}"


def check_tree(ast_lines: list[str], allowed: list[str]) -> None:
    """Refuse a query whose syntax tree names a table outside ``allowed`` or uses a table function."""
    allowed_set = set(allowed)
    previous = ""
    for raw in ast_lines:
        line = raw.strip()
        if line.startswith("TableIdentifier "):
            name = line.split(" ", 1)[1].strip()
            if name not in allowed_set:
                raise TenantQueryRefused(
                    f"tenant queries may read only {', '.join(allowed)} (fully qualified; no CTE names): "
                    f"{name!r} is not one of them")
        elif previous.startswith("TableExpression") and line.startswith("Function "):
            raise TenantQueryRefused(f"tenant queries may not use table functions ({line.split(' ')[1]})")
        previous = line
