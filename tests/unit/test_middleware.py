"""Middleware rules that need no broker: back-off cap, deadline after waits, unwrapped errors."""

import asyncio
import time

import pytest

from bindings.context import RequestContext
from bindings.errors import RequestTimeoutError, TargetError
from bindings.middleware import MiddlewareProperties, chain, deadline_middleware, rate_limit_middleware, retry_delay, retry_middleware
from bindings.target import Call
from bindings.wire import Request, Response
from tests.fixtures.echo_target import METHODS


def context(deadline_in: float | None = None) -> RequestContext:
    deadline = None if deadline_in is None else time.monotonic() + deadline_in
    return RequestContext(binding="b", request_id="r", deadline=deadline)


def echo(data: bytes = b"", method: str = "echo") -> Call:
    """A resolved call of the echo target's ``method`` (``sleep`` is read-only, ``echo`` writes)."""
    return METHODS.resolve(Request({"method": method}, data))


async def ok(call: Call, _: RequestContext) -> Response:
    return Response.ok(call.request.data)


def test_back_off_doubles_up_to_the_cap() -> None:
    props = MiddlewareProperties(retry_delay_milliseconds=1000, retry_max_jitter_milliseconds=0, retry_max_delay_milliseconds=5000)
    assert [retry_delay(props, attempt) for attempt in range(1, 7)] == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_fixed_and_random_delays() -> None:
    fixed = MiddlewareProperties(retry_delay_milliseconds=300, retry_max_jitter_milliseconds=0, retry_delay_type="fixed")
    assert {retry_delay(fixed, attempt) for attempt in range(1, 5)} == {0.3}
    randomised = MiddlewareProperties(retry_delay_milliseconds=300, retry_max_jitter_milliseconds=0, retry_delay_type="random")
    assert all(0 <= retry_delay(randomised, attempt) <= 0.3 for attempt in range(1, 50))


async def test_work_delayed_by_the_rate_limit_past_the_deadline_is_not_started() -> None:
    started: list[bytes] = []

    async def record(call: Call, context: RequestContext) -> Response:
        started.append(call.request.data)
        return await ok(call, context)

    handler = chain(record, deadline_middleware(), rate_limit_middleware(2))  # one start every 0.5 s
    results = await asyncio.gather(*(handler(echo(str(i).encode()), context(0.3)) for i in range(3)), return_exceptions=True)
    assert started == [b"0"]
    assert [type(r) for r in results[1:]] == [RequestTimeoutError, RequestTimeoutError]
    assert "while waiting for the rate limit" in str(results[1])


async def test_no_retry_after_the_deadline() -> None:
    calls = 0

    async def flaky(_: Call, __: RequestContext) -> Response:
        nonlocal calls
        calls += 1
        raise TargetError("SlowDown: please reduce your request rate", code="SlowDown", retryable=True)

    props = MiddlewareProperties(retry_attempts=5, retry_delay_milliseconds=300, retry_max_jitter_milliseconds=0, retry_delay_type="fixed")
    handler = chain(flaky, deadline_middleware(), retry_middleware(props))
    with pytest.raises(RequestTimeoutError, match="while waiting for a retry"):
        await handler(echo(), context(0.5))
    assert calls == 2


async def test_cancelling_the_request_cancels_its_work_too() -> None:
    cancelled = asyncio.Event()

    async def slow_write(call: Call, context: RequestContext) -> Response:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return await ok(call, context)

    handler = chain(slow_write, deadline_middleware())
    task = asyncio.create_task(handler(echo(), context(10)))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled.is_set()  # the write did not outlive its request
