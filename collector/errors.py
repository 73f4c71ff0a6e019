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
