"""The aws.s3 source against SeaweedFS and the development broker: each object delivered, confirmed before deleted."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from devbroker import EmbeddedBroker
from tests.fixtures.configs import config
from tests.fixtures.kubemq import StartConnector
from tests.fixtures.waiting import eventually
from tests.s3_source.support import carried, keys_in, put_objects, sends_nothing_more, source_binding, take_queue


async def test_every_object_is_sent_as_kubemq_sources_shapes_it_then_deleted(start_connector: StartConnector, broker: EmbeddedBroker, seaweed: Any, s3_client: Any, bucket: str) -> None:
    objects = {"a.txt": b"first", "folder/b c+d.bin": bytes(range(256)), "deep/er/ünï code.json": b'{"x": 1}', "empty": b""}
    await put_objects(s3_client, bucket, objects)
    running = await start_connector(config(source_binding("watch", seaweed, bucket, "kubemq.queue", "s3.delivery")))
    messages = await take_queue(broker, "s3.delivery", len(objects))
    received = {}
    for message in messages:
        metadata, data = carried(message.body)
        assert metadata["method"] == "upload_item" and metadata["bucket_name"] == bucket
        received[metadata["item_name"]] = data
    assert received == objects
    await eventually(lambda: keys_in(s3_client, bucket), expect=[], timeout=30)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{running.api_url}/bindings") as response:
            [status] = await response.json()
        async with http.get(f"{running.api_url}/metrics") as response:
            metrics = await response.text()
    assert seaweed.secret_key not in json.dumps(status)
    assert (status["source_type"], status["target_type"], status["ready"]) == ("aws.s3", "kubemq.queue", True)
    assert f'kubemq_s3_source_items_total{{binding="watch",outcome="delivered"}} {float(len(objects))}' in metrics
    assert 'kubemq_s3_source_pending_items{binding="watch"} 0.0' in metrics


async def test_every_page_is_scanned_and_1500_objects_are_each_delivered_once(start_connector: StartConnector, broker: EmbeddedBroker, seaweed: Any, s3_client: Any, bucket: str) -> None:
    objects = {f"batch/{n:05d}": f"object {n}".encode() for n in range(1500)}
    await put_objects(s3_client, bucket, objects)
    running = await start_connector(config(source_binding("many", seaweed, bucket, "kubemq.queue", "s3.many", {"concurrency": 16})))
    messages = await take_queue(broker, "s3.many", len(objects), timeout=120)
    delivered = [carried(message.body) for message in messages]
    assert sorted(metadata["item_name"] for metadata, _ in delivered) == sorted(objects)
    assert all(objects[metadata["item_name"]] == data for metadata, data in delivered)
    await eventually(lambda: keys_in(s3_client, bucket), expect=[], timeout=30)
    assert await sends_nothing_more(running.runtime, "many", broker, "s3.many")


async def test_a_new_object_is_sent_within_two_seconds_with_a_one_second_scan(start_connector: StartConnector, broker: EmbeddedBroker, seaweed: Any, s3_client: Any, bucket: str) -> None:
    running = await start_connector(config(source_binding("quick", seaweed, bucket, "kubemq.queue", "s3.quick")))
    await eventually(lambda: running.runtime.engine.readiness()[0], expect=True, timeout=30)
    await s3_client.put_object(Bucket=bucket, Key="late.txt", Body=b"late")
    landed = asyncio.get_running_loop().time()
    [message] = await take_queue(broker, "s3.quick", 1, timeout=10)
    assert asyncio.get_running_loop().time() - landed < 2
    assert carried(message.body) == ({"bucket_name": bucket, "item_name": "late.txt", "method": "upload_item"}, b"late")
