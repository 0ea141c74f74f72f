"""SIGKILL in the middle of a run loses nothing: a real ``kubemq-s3 run`` child, killed and started again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from pathlib import Path
from typing import Any

from kubemq import AsyncQueuesClient

from devbroker import EmbeddedBroker
from tests.fixtures.configs import config
from tests.fixtures.kubemq import free_port
from tests.fixtures.waiting import eventually
from tests.ops.support import connector_process, write_config
from tests.s3_source.support import keys_in, put_objects, source_binding

COUNT = 400


async def test_sigkill_mid_run_loses_nothing_every_object_is_delivered_after_the_restart(broker: EmbeddedBroker, seaweed: Any, s3_client: Any, bucket: str, tmp_path: Path) -> None:
    objects = {f"crash/{n:04d}": f"payload {n}".encode() for n in range(COUNT)}
    await put_objects(s3_client, bucket, objects)
    path, port = tmp_path / "config.yaml", free_port()
    # A short lease: the restarted process takes over the one the killed process left behind.
    write_config(path, config(source_binding("crash", seaweed, bucket, "kubemq.queue", "s3.crash", {"concurrency": 2, "lease_seconds": 5})), broker, port)
    delivered: list[str] = []
    reader = asyncio.create_task(_read_all(broker, "s3.crash", delivered))
    try:
        async with connector_process(path) as first:
            await eventually(lambda: len(delivered) >= 50, timeout=60)
            first.send_signal(signal.SIGKILL)
            assert await first.wait(timeout=10) == -signal.SIGKILL
        left = await keys_in(s3_client, bucket)
        assert left, "the kill came after the last object: nothing tested"
        # Nothing deleted unconfirmed: every object is either still in the bucket or on the queue (read soon).
        await eventually(lambda: set(objects) <= set(left) | set(delivered), timeout=10)
        async with connector_process(path) as second:
            await second.wait_ready(f"http://127.0.0.1:{port}")
            await eventually(lambda: _emptied(s3_client, bucket), timeout=90)
            second.send_signal(signal.SIGTERM)
            assert await second.wait(timeout=20) == 0
        await eventually(lambda: set(delivered) == set(objects), timeout=10)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    # At least once: only what was in flight at the kill can come twice.
    assert len(delivered) - len(set(delivered)) <= 2


async def _emptied(s3: Any, bucket: str) -> bool:
    return await keys_in(s3, bucket) == []


async def _read_all(broker: EmbeddedBroker, channel: str, delivered: list[str]) -> None:
    async with AsyncQueuesClient(address=broker.address, client_id="crash-reader") as client:
        while True:
            polled = await client.receive_queue_messages(channel, max_messages=100, wait_timeout_seconds=1, auto_ack=True)
            delivered.extend(json.loads(message.body)["metadata"]["item_name"] for message in polled.messages)
