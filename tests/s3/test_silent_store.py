"""A store that goes silent instead of failing: answered within the timeouts, retried on a fresh connection.

A relay in front of SeaweedFS cuts a response mid-way and then forwards
nothing more, without closing anything; a full accept queue stands for a
store whose address no longer answers a connection attempt.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from bindings.errors import TargetError
from connector.s3 import EmbeddedS3
from tests.fixtures.relay import BlackHole, Relay
from tests.fixtures.s3 import seaweed_properties
from tests.fixtures.s3_targets import MakeTarget
from tests.s3.support import call

READ_TIMEOUT = 1.0
CONNECT_TIMEOUT = 1.0
# What scheduling on a busy 2-core machine may add to a timeout.
SLACK = 1.5


@pytest_asyncio.fixture
async def relay(seaweed: EmbeddedS3) -> AsyncIterator[Relay]:
    host, _, port = seaweed.endpoint.removeprefix("http://").rpartition(":")
    async with Relay(host, int(port)) as running:
        yield running


# Within the status line and headers (botocore's own retry), or within the body (the target's).
@pytest.mark.parametrize("after_bytes", [10, 50_000], ids=["in the headers", "in the body"])
async def test_a_response_that_stops_mid_way_is_retried_on_a_fresh_connection_and_the_dead_one_is_dropped(
    after_bytes: int, relay: Relay, seaweed: EmbeddedS3, make_target: MakeTarget, s3_client: Any, bucket: str
) -> None:
    content = b"x" * 200_000
    await s3_client.put_object(Bucket=bucket, Key="big", Body=content)
    target = await make_target(**{**seaweed_properties(seaweed), "endpoint": f"http://{relay.address}", "read_timeout_seconds": str(READ_TIMEOUT), "max_attempts": "3"})
    warm = await call(target, method="get_item", bucket_name=bucket, item_name="big")
    assert not warm.is_error, warm.error
    pooled = relay.accepted

    relay.cut_next_response(after_bytes)
    started = time.monotonic()
    reply = await call(target, method="get_item", bucket_name=bucket, item_name="big")
    took = time.monotonic() - started

    assert not reply.is_error, reply.error
    assert reply.data == content
    assert READ_TIMEOUT <= took < READ_TIMEOUT + SLACK, f"answered after {took:.2f} s"
    [dead] = relay.dead_links()
    # The pool let go of the silent connection: its client side was closed.
    assert dead.client_closed.is_set()
    assert relay.accepted == pooled + 1, "the retry went on a new connection"

    # The connections left in the pool work: another request opens none.
    again = await call(target, method="get_item", bucket_name=bucket, item_name="big")
    assert again.data == content
    assert relay.accepted == pooled + 1


async def test_a_store_that_stays_silent_fails_with_a_retryable_timeout_after_every_attempt(relay: Relay, seaweed: EmbeddedS3, make_target: MakeTarget, s3_client: Any, bucket: str) -> None:
    await s3_client.put_object(Bucket=bucket, Key="k", Body=b"v")
    target = await make_target(**{**seaweed_properties(seaweed), "endpoint": f"http://{relay.address}", "read_timeout_seconds": str(READ_TIMEOUT), "max_attempts": "2"})
    relay.partition()  # every connection, pooled or new, stops answering
    started = time.monotonic()
    with pytest.raises(TargetError) as failed:
        await call(target, method="get_item", bucket_name=bucket, item_name="k")
    took = time.monotonic() - started

    assert "Read timeout on endpoint URL" in str(failed.value)
    assert failed.value.retryable
    assert 2 * READ_TIMEOUT <= took < 2 * READ_TIMEOUT + SLACK, f"answered after {took:.2f} s"


async def test_a_store_that_never_accepts_the_connection_fails_at_the_connect_timeout(seaweed: EmbeddedS3, make_target: MakeTarget) -> None:
    with BlackHole() as hole:
        target = await make_target(**{**seaweed_properties(seaweed), "endpoint": f"http://127.0.0.1:{hole.port}", "connect_timeout_seconds": str(CONNECT_TIMEOUT), "max_attempts": "2"})
        started = time.monotonic()
        with pytest.raises(TargetError) as failed:
            await call(target, method="get_item", bucket_name="b", item_name="k")
        took = time.monotonic() - started

    assert "Connect timeout on endpoint URL" in str(failed.value)
    assert failed.value.retryable
    assert 2 * CONNECT_TIMEOUT <= took < 2 * CONNECT_TIMEOUT + SLACK, f"answered after {took:.2f} s"
