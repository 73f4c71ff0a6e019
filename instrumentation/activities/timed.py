"""Generic timed activities: the :func:`activity` context manager and ``@instrument``.

``@instrument`` works bare or with arguments, on sync, async, generator and
async-generator functions.  The span covers the whole call — for generators
from the first ``next()`` to exhaustion or ``close()`` — and is the current span
only while the function's own code runs (never while the consumer holds a
yielded value), so nesting stays correct.  The function's exceptions are
recorded and re-raised unchanged; its return value is never touched.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from typing import Any, ParamSpec, TypeVar, overload

from spanledger import semconv as sc
from spanledger._safe import internal_error, never_fail, safe_str
from spanledger.activities._base import Activity, Attributes, merge_attributes, put

_P = ParamSpec("_P")
_R = TypeVar("_R")


@never_fail(fallback=lambda: Activity("activity", {}))
def activity(
    name: str,
    *,
    activity_type: str = "activity",
    description: str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Activity:
    """``with spanledger.activity("sync_inventory", attributes={...}):`` — a timed span of your own."""
    attrs: Attributes = {sc.ACTIVITY_TYPE: activity_type}
    put(attrs, sc.ACTIVITY_DESCRIPTION, description)
    if attributes:
        merge_attributes(attrs, attributes)
    return Activity(safe_str(name), attrs)


def _wrap_generator(fn: Callable[..., Generator[Any, Any, Any]], make: Callable[[], Activity]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        act = make().start()
        gen = fn(*args, **kwargs)
        to_send: Any = None
        to_throw: BaseException | None = None
        try:
            while True:
                token = act.attach()
                try:
                    if to_throw is not None:
                        exc, to_throw = to_throw, None
                        item = gen.throw(exc)
                    else:
                        item = gen.send(to_send)
                except StopIteration as stop:
                    return stop.value
                finally:
                    act.detach(token)
                try:
                    to_send = yield item
                except GeneratorExit:
                    gen.close()
                    raise
                except BaseException as exc:  # noqa: BLE001 - thrown in by the consumer: forward it
                    to_throw = exc
        except GeneratorExit:
            act.stop()
            raise
        except BaseException as exc:
            act.fail(exc)
            raise
        finally:
            act.stop()

    return wrapper


def _wrap_async_generator(
    fn: Callable[..., AsyncGenerator[Any, Any]], make: Callable[[], Activity]
) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        act = make().start()
        agen = fn(*args, **kwargs)
        to_send: Any = None
        to_throw: BaseException | None = None
        try:
            while True:
                token = act.attach()
                try:
                    if to_throw is not None:
                        exc, to_throw = to_throw, None
                        item = await agen.athrow(exc)
                    else:
                        item = await agen.asend(to_send)
                except StopAsyncIteration:
                    return
                finally:
                    act.detach(token)
                try:
                    to_send = yield item
                except GeneratorExit:
                    await agen.aclose()
                    raise
                except BaseException as exc:  # noqa: BLE001
                    to_throw = exc
        except GeneratorExit:
            act.stop()
            raise
        except BaseException as exc:
            act.fail(exc)
            raise
        finally:
            act.stop()

    return wrapper


def _decorate(
    fn: Callable[_P, _R], name: str | None, activity_type: str, attributes: Mapping[str, Any] | None
) -> Callable[_P, _R]:
    span_name = name or getattr(fn, "__qualname__", None) or repr(fn)
    base: Attributes = {sc.ACTIVITY_TYPE: activity_type, sc.CODE_FUNCTION_NAME: getattr(fn, "__qualname__", span_name)}
    put(base, sc.CODE_NAMESPACE, getattr(fn, "__module__", None))
    if attributes:
        merge_attributes(base, attributes)

    def make() -> Activity:
        return Activity(span_name, dict(base))

    if inspect.isasyncgenfunction(fn):
        return _wrap_async_generator(fn, make)  # type: ignore[arg-type, return-value]
    if inspect.isgeneratorfunction(fn):
        return _wrap_generator(fn, make)  # type: ignore[arg-type, return-value]
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with make():
                return await fn(*args, **kwargs)  # type: ignore[misc]

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with make():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _safe_decorate(
    fn: Callable[_P, _R], name: str | None, activity_type: str, attributes: Mapping[str, Any] | None
) -> Callable[_P, _R]:
    """If instrumenting fails, the function is returned untouched."""
    try:
        return _decorate(fn, name, activity_type, attributes)
    except Exception:  # noqa: BLE001
        internal_error("instrument")
        return fn


@overload
def instrument(fn: Callable[_P, _R], /) -> Callable[_P, _R]: ...


@overload
def instrument(
    *, name: str | None = None, activity_type: str = "activity", attributes: Mapping[str, Any] | None = None
) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]: ...


def instrument(
    fn: Callable[_P, _R] | None = None,
    /,
    *,
    name: str | None = None,
    activity_type: str = "activity",
    attributes: Mapping[str, Any] | None = None,
) -> Any:
    """Time every call of a function as an activity: ``@instrument`` or ``@instrument(name=...)``."""
    if fn is not None:
        return _safe_decorate(fn, name, activity_type, attributes)

    def decorator(inner: Callable[_P, _R]) -> Callable[_P, _R]:
        return _safe_decorate(inner, name, activity_type, attributes)

    return decorator
