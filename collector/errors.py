"""The collector's exception hierarchy.

Every error a caller can cause or the collector can meet derives from
``SpanledgerError``; where the error comes from the ClickHouse engine it
carries the engine's error code, so callers classify by code, never by
searching message text.
"""

from __future__ import annotations


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


class Unauthenticated(SpanledgerError):
    """The caller sent no bearer token, or one that is not configured (gRPC UNAUTHENTICATED, HTTP 401)."""
