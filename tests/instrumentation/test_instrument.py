"""@instrument on sync, async, generator and async-generator functions, bare and with arguments."""

from __future__ import annotations

import asyncio

import pytest

import spanledger
from spanledger import semconv as sc


class Boom(Exception):
    pass


@spanledger.instrument
def add(a: int, b: int) -> int:
    return a + b


@spanledger.instrument(name="fetch data", activity_type="api_call", attributes={"source": "db"})
async def fetch(x: int) -> int:
    await asyncio.sleep(0)
    return x * 2


@spanledger.instrument
def numbers(n: int):
    for i in range(n):
        with spanledger.activity(f"inner {i}"):
            pass
        yield i
    return "done"


@spanledger.instrument()
async def async_numbers(n: int):
    for i in range(n):
        await asyncio.sleep(0)
        yield i


def test_sync_function(captured_spans) -> None:
    assert add(2, 3) == 5
    assert add.__name__ == "add"
    assert captured_spans.attributes("add") == {
        sc.ACTIVITY_TYPE: "activity",
        sc.CODE_FUNCTION_NAME: "add",
        sc.CODE_NAMESPACE: __name__,
    }


def test_async_function_with_arguments(captured_spans) -> None:
    assert asyncio.run(fetch(21)) == 42
    assert captured_spans.attributes("fetch data") == {
        sc.ACTIVITY_TYPE: "api_call",
        sc.CODE_FUNCTION_NAME: "fetch",
        sc.CODE_NAMESPACE: __name__,
        "source": "db",
    }


def test_exceptions_are_recorded_and_reraised_unchanged(captured_spans) -> None:
    original = Boom("kaput")

    @spanledger.instrument
    def explode() -> None:
        raise original

    @spanledger.instrument
    async def explode_async() -> None:
        raise original

    with pytest.raises(Boom) as caught:
        explode()
    assert caught.value is original
    with pytest.raises(Boom) as caught_async:
        asyncio.run(explode_async())
    assert caught_async.value is original
    for span in captured_spans.spans():
        assert span.status.status_code.name == "ERROR"
        assert span.attributes[sc.ERROR_TYPE] == f"{__name__}.Boom"


def test_generator_span_covers_iteration_and_is_parent_only_inside(captured_spans) -> None:
    seen = []
    with spanledger.activity("consumer") as consumer:
        for value in numbers(2):
            spanledger.product_event(f"got_{value}")  # runs while the generator is suspended
            seen.append(value)
    assert seen == [0, 1]
    spans = {span.name: span for span in captured_spans.spans()}
    generator_span = spans["numbers"]
    assert spans["inner 0"].parent.span_id == generator_span.context.span_id
    assert spans["got_0"].parent.span_id == consumer.span.get_span_context().span_id
    assert generator_span.parent.span_id == consumer.span.get_span_context().span_id
    assert generator_span.end_time > spans["inner 1"].end_time


def test_generator_return_value_send_throw_and_close(captured_spans) -> None:
    @spanledger.instrument
    def echo():
        received = []
        try:
            while True:
                try:
                    received.append((yield len(received)))
                except KeyError:
                    received.append("caught")
        finally:
            received.append("closed")

    gen = echo()
    assert next(gen) == 0
    assert gen.send("a") == 1
    assert gen.throw(KeyError("k")) == 2
    gen.close()
    span = captured_spans.by_name("test_generator_return_value_send_throw_and_close.<locals>.echo")
    assert span.status.status_code.name == "UNSET" and span.end_time is not None

    def run_numbers():
        return (yield from numbers(1))

    gen2 = run_numbers()
    next(gen2)
    with pytest.raises(StopIteration) as stop:
        next(gen2)
    assert stop.value.value == "done"


def test_generator_failure(captured_spans) -> None:
    @spanledger.instrument
    def failing():
        yield 1
        raise Boom("late")

    gen = failing()
    assert next(gen) == 1
    with pytest.raises(Boom):
        next(gen)
    span = captured_spans.by_name("test_generator_failure.<locals>.failing")
    assert span.status.status_code.name == "ERROR"


def test_async_generator(captured_spans) -> None:
    async def consume() -> list[int]:
        return [value async for value in async_numbers(3)]

    assert asyncio.run(consume()) == [0, 1, 2]
    assert captured_spans.by_name("async_numbers").end_time is not None

    @spanledger.instrument
    async def failing():
        yield 1
        raise Boom("async late")

    async def consume_failing() -> None:
        async for _ in failing():
            pass

    with pytest.raises(Boom):
        asyncio.run(consume_failing())
    assert captured_spans.by_name("test_async_generator.<locals>.failing").status.status_code.name == "ERROR"


def test_methods_and_bound_instances(captured_spans) -> None:
    class Agent:
        @spanledger.instrument
        def act(self, x: int) -> int:
            return x + 1

    assert Agent().act(1) == 2
    assert captured_spans.names() == ["test_methods_and_bound_instances.<locals>.Agent.act"]
