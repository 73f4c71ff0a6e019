"""The collector's exception hierarchy.

Every error a caller can cause or the collector can meet derives from
``SpanledgerError``; where the error comes from the ClickHouse engine it
carries the engine's error code, so callers classify by code, never by
searching message text.
"""

from __future__ import annotations

import re


class SpanledgerError(Exception):
    """Base of every error the collector raises on purpose."""


class Overloaded(SpanledgerError):
    """The collector cannot take this request now; the client should retry after ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class QueryRefused(SpanledgerError):
    """A query the gateway will not run (HTTP 400).  ``construct`` names what was refused."""

    def __init__(self, message: str, construct: str = "") -> None:
        super().__init__(message)
        self.construct = construct


class QueryLimitExceeded(SpanledgerError):
    """A query hit one of its limits (time, memory, rows read, result size).

    ``limit`` is the configuration key that sets it, so the message can say how to change it."""

    def __init__(self, message: str, limit: str = "") -> None:
        super().__init__(message)
        self.limit = limit


class QueryBusy(SpanledgerError):
    """The caller already has as many queries running as it may; retry after ``retry_after_s`` (HTTP 429)."""

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StoreError(SpanledgerError):
    """The store refused or failed an operation.  ``code`` is the ClickHouse error code when the
    engine gave one (``Code: NNN`` in its message), None for a connection-level failure."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code

    @property
    def permanent(self) -> bool:
        """True when these bytes will be refused on every retry (bad data), so retrying cannot help."""
        return self.code in PERMANENT_DATA_ERRORS

    @property
    def transient(self) -> bool:
        """True when the store's state, not the data, is at fault (no code: it was not reached)."""
        return self.code is None or self.code in TRANSIENT_STORE_ERRORS


class StoreUnavailable(StoreError):
    """The store could not be reached or refused for a reason of its own; it may succeed later."""


# ClickHouse error codes (src/Common/ErrorCodes.cpp) that a given INSERT's data causes and that
# repeat on every retry of the same bytes.  Anything else (no code, network, memory, too many
# parts, a table being replaced...) is transient: retried with backoff.
PERMANENT_DATA_ERRORS = frozenset({
    6,    # CANNOT_PARSE_TEXT
    26,   # CANNOT_PARSE_QUOTED_STRING
    27,   # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    32,   # ATTEMPT_TO_READ_AFTER_EOF
    33,   # CANNOT_READ_ALL_DATA
    38,   # CANNOT_PARSE_DATE
    41,   # CANNOT_PARSE_DATETIME
    53,   # TYPE_MISMATCH
    69,   # ARGUMENT_OUT_OF_BOUND
    70,   # CANNOT_CONVERT_TYPE
    72,   # CANNOT_PARSE_NUMBER
    117,  # INCORRECT_DATA
    128,  # TOO_LARGE_ARRAY_SIZE
    131,  # TOO_LARGE_STRING_SIZE
    153,  # ILLEGAL_DIVISION
    190,  # SIZES_OF_ARRAYS_DONT_MATCH
    321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
    349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
    407,  # DECIMAL_OVERFLOW
    444,  # UNKNOWN_PROTOBUF_FORMAT
    446,  # CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING
    472,  # CANNOT_PARSE_UUID
})

# Codes about the store's state (reachability, load, schema being replaced, permissions): the same
# bytes will go in once it recovers, so they are retried with backoff for as long as it takes.
# A code in neither set is retried a few times, then treated as the data's fault.
TRANSIENT_STORE_ERRORS = frozenset({
    60,   # UNKNOWN_TABLE (the pipeline is being created)
    81,   # UNKNOWN_DATABASE
    159,  # TIMEOUT_EXCEEDED
    164,  # READONLY
    202,  # TOO_MANY_SIMULTANEOUS_QUERIES
    203,  # NO_FREE_CONNECTION
    209,  # SOCKET_TIMEOUT
    210,  # NETWORK_ERROR
    241,  # MEMORY_LIMIT_EXCEEDED
    242,  # TABLE_IS_READ_ONLY
    243,  # NOT_ENOUGH_SPACE
    252,  # TOO_MANY_PARTS
    285,  # TOO_FEW_LIVE_REPLICAS
    319,  # UNKNOWN_STATUS_OF_INSERT
    394,  # QUERY_WAS_CANCELLED
    425,  # SYSTEM_ERROR
    497,  # ACCESS_DENIED
    516,  # AUTHENTICATION_FAILED
    999,  # KEEPER_EXCEPTION
    1000,  # POCO_EXCEPTION
})

_CODE = re.compile(r"\bCode: (\d{1,4})\b")


def engine_error_code(exc: BaseException) -> int | None:
    """The ClickHouse error code an engine exception carries (clickhouse-connect and chDB quote it
    as ``Code: NNN``), or None.  The first one is the engine's; later ones may be quoted text."""
    code = getattr(exc, "code", None)
    if isinstance(code, int) and code > 0:
        return code
    match = _CODE.search(str(exc))
    return int(match.group(1)) if match else None
