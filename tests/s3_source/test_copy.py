"""An S3-to-S3 copy through the bus in one config: an aws.s3 source sends, an aws.s3 target binding stores."""

from __future__ import annotations

import hashlib
import os
from typing import Any

from devbroker import EmbeddedBroker
from tests.fixtures.configs import binding, config, target
from tests.fixtures.kubemq import StartConnector
from tests.fixtures.s3 import empty_bucket, unique_bucket_name
from tests.fixtures.waiting import eventually
from tests.s3_source.support import keys_in, put_objects, source_binding

MIB = 1024 * 1024


def store(seaweed: Any, kind: str, channel: str) -> str:
    """The binding that consumes the channel into SeaweedFS."""
    s3 = {"aws_key": seaweed.access_key, "aws_secret_key": seaweed.secret_key, "region": "us-east-1", "endpoint": seaweed.endpoint}
    return binding("store", kind, channel, target=target("aws.s3", s3))


async def digests(s3: Any, bucket: str) -> dict[str, str]:
    found = {}
    for key in await keys_in(s3, bucket):
        stored = await s3.get_object(Bucket=bucket, Key=key)
        found[key] = hashlib.sha256(await stored["Body"].read()).hexdigest()
    return found


async def test_200_objects_and_one_larger_than_a_message_are_copied_byte_for_byte(start_connector: StartConnector, broker: EmbeddedBroker, seaweed: Any, s3_client: Any, bucket: str) -> None:
    objects = {f"copy/{n:03d} ü+.bin": os.urandom(1 + n * 97) for n in range(199)}
    objects["copy/large.bin"] = os.urandom(12 * MIB + 123)  # over max_object_size_mib: goes as a multipart upload over the bus
    await put_objects(s3_client, bucket, objects)
    destination = unique_bucket_name("copy")
    await s3_client.create_bucket(Bucket=destination)
    try:
        source = {"destination_bucket": destination, "concurrency": 8, "max_object_size_mib": 5, "part_size_mib": 5}
        await start_connector(config(store(seaweed, "kubemq.query", "s3.copy"), source_binding("watch", seaweed, bucket, "kubemq.query", "s3.copy", source)))
        await eventually(lambda: keys_in(s3_client, bucket), expect=[], timeout=120)
        assert await digests(s3_client, destination) == {key: hashlib.sha256(data).hexdigest() for key, data in objects.items()}
    finally:
        await empty_bucket(s3_client, destination)
        await s3_client.delete_bucket(Bucket=destination)


async def test_through_a_queue_an_object_larger_than_a_message_stays_in_the_bucket_and_is_reported(
    start_connector: StartConnector, broker: EmbeddedBroker, seaweed: Any, s3_client: Any, bucket: str
) -> None:
    objects = {f"q/{n}": os.urandom(100 + n) for n in range(20)}
    await put_objects(s3_client, bucket, {**objects, "q/too-large": os.urandom(6 * MIB)})
    destination = unique_bucket_name("copy")
    await s3_client.create_bucket(Bucket=destination)
    try:
        source = {"destination_bucket": destination, "max_object_size_mib": 5, "part_size_mib": 5}
        running = await start_connector(config(store(seaweed, "kubemq.queue", "s3.copyq"), source_binding("watch", seaweed, bucket, "kubemq.queue", "s3.copyq", source)))
        await eventually(lambda: keys_in(s3_client, bucket), expect=["q/too-large"], timeout=60)
        await eventually(lambda: digests(s3_client, destination), expect={key: hashlib.sha256(data).hexdigest() for key, data in objects.items()}, timeout=30)
        failed = running.runtime.metrics.source_items.labels("watch", "failed")
        await eventually(lambda: failed._value.get() >= 1, expect=True, timeout=30)
        # Nothing of it went out: no upload was started at the far side, to be left dangling.
        assert (await s3_client.list_multipart_uploads(Bucket=destination)).get("Uploads", []) == []
    finally:
        await empty_bucket(s3_client, destination)
        await s3_client.delete_bucket(Bucket=destination)
