"""The aws.s3 source against SeaweedFS and the development broker: each object delivered, confirmed before deleted."""

from __future__ import annotations

from typing import Any

from devbroker import EmbeddedBroker
from tests.fixtures.configs import config
from tests.s3_source.support import carried, keys_in, put_objects, source_binding, take_queue
from tests.fixtures.kubemq import StartConnector


async def test_every_object_is_sent_as_kubemq_sources_shapes_it_then_deleted(start_connector: StartConnector, broker: EmbeddedBroker, seaweed: Any, s3_client: Any, bucket: str) -> None:
    objects = {"a.txt": b"first", "folder/b c+d.bin": bytes(range(256)), "deep/er/ünï code.json": b'{"x": 1}', "empty": b""}
    await put_objects(s3_client, bucket, objects)
    await start_connector(config(source_binding("watch", seaweed, bucket, "kubemq.queue", "s3.delivery")))
    messages = await take_queue(broker, "s3.delivery", len(objects))
    received = {}
    for message in messages:
        metadata, data = carried(message.body)
        assert metadata["method"] == "upload_item" and metadata["bucket_name"] == bucket
        received[metadata["item_name"]] = data
    assert received == objects
    assert await keys_in(s3_client, bucket) == []
