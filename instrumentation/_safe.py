"""The never-fail guard: spanledger must never break the program it observes.

Telemetry is a side concern.  A bug in spanledger, a strange value handed to a
helper or a broken exporter must cost the host a log line, not an exception.
Every public helper therefore runs its own work inside :func:`guarded` (or the
:func:`never_fail` decorator); failures are counted in :data:`COUNTERS` and
logged once per call site so a hot loop cannot flood the log.

The *caller's* exceptions are a different matter: they are recorded on the span
and re-raised unchanged by the activity context managers, never swallowed here.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

logger = logging.getLogger("spanledger")

_F = TypeVar("_F", bound=Callable[..., Any])


class Counters:
    """Thread-safe monotonically increasing counters, read by ``spanledger.stats()``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, int] = {}

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._values[name] = self._values.get(name, 0) + amount

    def get(self, name: str) -> int:
        return self._values.get(name, 0)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)

    def reset(self) -> None:
        with self._lock:
            self._values.clear()


COUNTERS = Counters()
INTERNAL_ERRORS = "internal_errors"
INVALID_INPUTS = "invalid_inputs"

_logged_sites: set[str] = set()
_logged_lock = threading.Lock()


def log_once(site: str, message: str, *args: object, exc_info: bool = False) -> None:
    """Log ``message`` the first time ``site`` reports a problem, then stay quiet."""
    with _logged_lock:
        if site in _logged_sites:
            return
        _logged_sites.add(site)
    logger.warning(message + " (further occurrences are counted, not logged)", *args, exc_info=exc_info)


def internal_error(site: str) -> None:
    """Count an unexpected exception inside spanledger and log it once."""
    COUNTERS.add(INTERNAL_ERRORS)
    log_once(site, "spanledger internal error in %s; the host program is unaffected", site, exc_info=True)


def invalid_input(site: str, message: str, *args: object) -> None:
    """Count a bad value handed to a helper (it was replaced or ignored)."""
    COUNTERS.add(INVALID_INPUTS)
    log_once("invalid:" + site, "spanledger: " + message, *args)


@contextmanager
def guarded(site: str) -> Iterator[None]:
    """Run a block of spanledger's own work; swallow and count anything it raises."""
    try:
        yield
    except Exception:  # noqa: BLE001 - the whole point: never propagate into the host
        internal_error(site)


def never_fail(default: Any = None, *, fallback: Callable[[], Any] | None = None) -> Callable[[_F], _F]:
    """Decorate a helper so that an exception returns ``default`` (or ``fallback()``) instead.

    Factories of activities use ``fallback`` to hand back a harmless object of
    the right type, so ``with helper(garbage):`` still works.
    """

    def decorate(fn: _F) -> _F:
        site = getattr(fn, "__qualname__", repr(fn))

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception:  # noqa: BLE001
                internal_error(site)
                return fallback() if fallback is not None else default

        return wrapper  # type: ignore[return-value]

    return decorate


def as_count(value: object, site: str) -> int:
    """Coerce a token count to a non-negative int; garbage becomes 0 (and is counted)."""
    if type(value) is int and value >= 0:
        return value
    if value is None:
        return 0
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        invalid_input(site, "ignored a non-numeric token count %r", value)
        return 0
    if number < 0:
        invalid_input(site, "clamped a negative token count %r to 0", value)
        return 0
    return number


def as_text(value: object) -> str | None:
    """Turn arbitrary content into text without ever raising (None stays None)."""
    if value is None or isinstance(value, str):
        return value
    try:
        from spanledger._jsonish import to_json

        return to_json(value)
    except Exception:  # noqa: BLE001
        return safe_str(value)


def safe_str(value: object) -> str:
    """``str(value)``, or a placeholder if even that raises."""
    try:
        return str(value)
    except Exception:  # noqa: BLE001
        return f"<unprintable {type(value).__name__}>"
