"""Binding middleware through real sources: retry, rate limit, the request deadline, several bindings in one process."""

from __future__ import annotations

import asyncio
import time

import pytest
from kubemq import KubeMQTimeoutError

from bindings.kubemq.client import query
from bindings.wire import Request
from devbroker import EmbeddedBroker
from tests.fixtures.configs import binding, config
from tests.fixtures.kubemq import StartConnector
from tests.fixtures.waiting import eventually
from tests.sources.support import echo_target, enqueue, send_command, start, take

RETRY = {"retry_attempts": 3, "retry_delay_milliseconds": 10, "retry_max_jitter_milliseconds": 5}
FLAKY = {"method": "fail", "code": "SlowDown", "retryable": "true", "times": "2"}


async def test_retry_repeats_retryable_errors_only_and_reports_once(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    running = await start(start_connector, broker, config(binding("cmd", "kubemq.command", "mw.retry", middleware=RETRY)))
    target = echo_target(running, "cmd")
    assert await send_command(broker, "mw.retry", FLAKY) == (True, "")
    assert target.calls == 3  # two throttled attempts, then success
    assert await send_command(broker, "mw.retry", {"method": "fail", "code": "NoSuchKey"}) == (False, "All attempts fail:\n#1: NoSuchKey: injected failure")
    assert target.calls == 4  # not retried: listed once


@pytest.mark.parametrize("spelling", ["rate_per_second", "rate_per_seconds"])
async def test_rate_limit_spaces_requests(broker: EmbeddedBroker, start_connector: StartConnector, spelling: str) -> None:
    channel = f"mw.rate.{spelling}"
    await start(start_connector, broker, config(binding("q", "kubemq.query", channel, middleware={spelling: 20})))
    started = time.monotonic()
    replies = await asyncio.gather(*(query(broker.address, channel, Request({"method": "echo"}, str(i).encode()), timeout=10) for i in range(10)))
    elapsed = time.monotonic() - started
    assert sorted(r.data or b"" for r in replies) == sorted(f"echo:{i}".encode() for i in range(10))
    assert elapsed >= 0.45  # 10 starts at 20/s are spread over 9 intervals of 50 ms


async def test_a_query_whose_sender_gave_up_is_not_started(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    running = await start(start_connector, broker, config(binding("q", "kubemq.query", "mw.stale", {"max_concurrency": 1})))
    target = echo_target(running, "q")
    busy = asyncio.create_task(query(broker.address, "mw.stale", Request({"method": "sleep", "milliseconds": "1800"}), timeout=10))
    await eventually(lambda: target.calls == 1)
    with pytest.raises(KubeMQTimeoutError):  # waits behind the busy slot longer than its sender does
        await query(broker.address, "mw.stale", Request({"method": "echo"}, b"late"), timeout=1)
    assert not (await busy).is_error
    await eventually(lambda: running.runtime.engine.bindings["q"].source.in_flight == 0)
    assert target.calls == 1  # the late one was refused before reaching the target


@pytest.mark.parametrize("kind", ["kubemq.query", "kubemq.command"])
async def test_work_in_flight_is_cancelled_when_the_sender_gives_up(broker: EmbeddedBroker, start_connector: StartConnector, kind: str) -> None:
    channel = f"mw.cancel.{kind}"
    running = await start(start_connector, broker, config(binding("b", kind, channel)))
    source = running.runtime.engine.bindings["b"].source
    sleeper = Request({"method": "sleep", "milliseconds": "20000"})
    started = time.monotonic()
    with pytest.raises(KubeMQTimeoutError):
        if kind == "kubemq.query":
            await query(broker.address, channel, sleeper, timeout=1)
        else:
            await send_command(broker, channel, sleeper.metadata, timeout=1)
    await eventually(lambda: source.in_flight == 0, timeout=5)
    assert time.monotonic() - started < 3  # cut off at the 1 s deadline, not after 20 s


async def test_a_write_in_flight_finishes_after_the_sender_gives_up(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    running = await start(start_connector, broker, config(binding("w", "kubemq.query", "mw.write")))
    target = echo_target(running, "w")
    with pytest.raises(KubeMQTimeoutError):
        await query(broker.address, "mw.write", Request({"method": "write", "milliseconds": "1600"}), timeout=1)
    assert target.completed_writes == 0
    await eventually(lambda: target.completed_writes == 1, timeout=5)  # not cancelled half-way


async def test_query_and_queue_bindings_in_one_process_each_with_its_own_middleware(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    running = await start(
        start_connector,
        broker,
        config(
            binding("lookups", "kubemq.query", "mw.both.q", middleware={"rate_per_second": 20}),
            binding("jobs", "kubemq.queue", "mw.both.jobs", {"response_channel": "mw.both.resp"}, middleware=RETRY),
        ),
    )
    # The queue binding retries in-process: one delivery, three attempts, success.
    await enqueue(broker, "mw.both.jobs", FLAKY, b"job")
    [reply] = await take(broker, "mw.both.resp")
    assert (reply.response.is_error, reply.response.data) == (False, b"job")
    assert echo_target(running, "jobs").calls == 3
    # The query binding does not retry, but is rate limited.
    failed = await query(broker.address, "mw.both.q", Request(FLAKY), timeout=10)
    assert (failed.is_error, failed.error) == (True, "All attempts fail:\n#1: SlowDown: injected failure")
    started = time.monotonic()
    await asyncio.gather(*(query(broker.address, "mw.both.q", Request({"method": "echo"}), timeout=10) for _ in range(6)))
    assert time.monotonic() - started >= 0.2
    assert echo_target(running, "lookups").calls == 7
