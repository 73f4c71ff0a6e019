"""How query results become JSON, for the HTTP API and the CLI alike: decimals stay exact (as strings)."""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import uuid
from typing import Any


def json_default(value: Any) -> Any:
    """Decimals stay exact (as strings); times as ISO 8601; bytes as hex."""
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, (uuid.UUID, ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(value)
    return str(value)


def result_to_json(result) -> dict[str, Any]:
    """A clickhouse-connect QueryResult as {columns, types, rows}."""
    return {"columns": list(result.column_names), "types": [t.name for t in result.column_types],
            "rows": [list(r) for r in result.result_rows]}
