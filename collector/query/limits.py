"""What bounds one query, and how the engine says a bound was hit.

The limits are per-query settings sent with every query (the caller cannot
send SETTINGS: the gateway refuses them), so they hold on the embedded engine
and on a server alike, whatever a session remembers or forgets.  The engine's
errors are classified by their ClickHouse error code, never by message words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import QueryLimitExceeded

KEY = "extensions.spanledger_api.query_limits"
# Default per-query memory: all the queries that may run at once share half of
# processors.memory_limiter.limit_mib, so queries cannot push ingest into the limiter.
MEMORY_SHARE_OF_CEILING = 0.5

_CODE = re.compile(r"Code:\s*(\d+)")

# engine error code -> (what was hit, the config key that raises it)
LIMIT_CODES: dict[int, tuple[str, str]] = {
    159: ("the time limit", f"{KEY}.timeout"),                          # TIMEOUT_EXCEEDED
    241: ("the memory limit", f"{KEY}.max_memory_mib"),                 # MEMORY_LIMIT_EXCEEDED
    158: ("the limit on rows read", f"{KEY}.max_rows_to_read"),         # TOO_MANY_ROWS
    396: ("the result size limit", f"{KEY}.max_result_rows / max_result_bytes"),  # TOO_MANY_ROWS_OR_BYTES
    307: ("the limit on bytes read", f"{KEY}.max_rows_to_read"),        # TOO_MANY_BYTES
    160: ("the time limit (estimated)", f"{KEY}.timeout"),              # TOO_SLOW
}
CANCELLED_CODES = frozenset({394})  # QUERY_WAS_CANCELLED
UNAVAILABLE_CODES = frozenset({202, 203, 209, 210, 425})  # too many simultaneous queries, no free connection, network


@dataclass(frozen=True)
class QueryLimits:
    """The bounds every gateway query runs under (0 means no bound for the row/size limits)."""

    timeout_s: float = 30.0
    max_memory_bytes: int = 256 << 20
    max_rows_to_read: int = 2_000_000_000
    max_result_rows: int = 1_000_000
    max_result_bytes: int = 256 << 20
    per_tenant_concurrency: int = 2
    max_concurrency: int = 4

    @classmethod
    def from_config(cls, config) -> QueryLimits:
        """Read ``extensions.spanledger_api.query_limits``; max_memory_mib 0 means a share of the memory ceiling."""
        section = config.get(KEY)
        concurrency = max(1, section["max_concurrency"])
        memory_mib = section["max_memory_mib"] or int(config.get("processors.memory_limiter.limit_mib")
                                                      * MEMORY_SHARE_OF_CEILING / concurrency)
        return cls(timeout_s=float(section["timeout"]), max_memory_bytes=max(1, memory_mib) << 20,
                   max_rows_to_read=section["max_rows_to_read"], max_result_rows=section["max_result_rows"],
                   max_result_bytes=section["max_result_bytes"],
                   per_tenant_concurrency=max(1, section["per_tenant_concurrency"]),
                   max_concurrency=concurrency)

    def settings(self, *, marker: str, stream: bool = False) -> dict[str, Any]:
        """Per-query settings; ``marker`` tags the query so cancel() can find it (log_comment)."""
        settings: dict[str, Any] = {
            "max_execution_time": max(0.001, self.timeout_s),
            "timeout_overflow_mode": "throw",
            "max_memory_usage": self.max_memory_bytes,
            "max_rows_to_read": self.max_rows_to_read,
            "read_overflow_mode": "throw",
            "log_comment": marker,
        }
        if not stream:  # an export streams its rows; time and rows read still bound it
            settings.update(max_result_rows=self.max_result_rows, max_result_bytes=self.max_result_bytes,
                            result_overflow_mode="throw")
        settings["readonly"] = 1  # last: nothing after it may change a setting, and nothing may write
        return settings


def engine_code(exc: BaseException) -> int | None:
    """The ClickHouse error code an exception carries (clickhouse-connect's ``code``, or ``Code: NNN``)."""
    code = getattr(exc, "code", None)
    if isinstance(code, int) and code > 0:
        return code
    match = _CODE.search(str(exc))
    return int(match.group(1)) if match else None


def limit_error(code: int | None, limits: QueryLimits) -> QueryLimitExceeded | None:
    """A QueryLimitExceeded naming the limit and its key, if ``code`` is a limit code."""
    if code not in LIMIT_CODES:
        return None
    what, key = LIMIT_CODES[code]
    values = {159: f"{limits.timeout_s:g} s", 160: f"{limits.timeout_s:g} s",
              241: f"{limits.max_memory_bytes >> 20} MiB", 158: f"{limits.max_rows_to_read} rows",
              307: f"{limits.max_rows_to_read} rows",
              396: f"{limits.max_result_rows} rows / {limits.max_result_bytes} bytes"}
    advice = ("narrow the query (a shorter time range, fewer columns, a LIMIT, a rollup table), "
              f"or ask the operator to raise {key}")
    if code == 396:
        advice = "add a LIMIT or aggregate, use the streaming export for large results, or ask the operator to raise " + key
    return QueryLimitExceeded(f"the query stopped at {what} ({values[code]}): {advice}", limit=key)
