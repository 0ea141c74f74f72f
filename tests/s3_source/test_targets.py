"""Each KubeMQ target kind carries the aws.s3 source's messages to a binding that stores them (events, events-store, command)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from devbroker import EmbeddedBroker
from tests.fixtures.configs import binding, config, target
from tests.fixtures.kubemq import StartConnector
from tests.fixtures.s3 import empty_bucket, unique_bucket_name
from tests.fixtures.waiting import eventually
from tests.s3_source.support import keys_in, put_objects, source_binding


@pytest.mark.parametrize(("kind", "subscribers"), [("kubemq.events", "events"), ("kubemq.events-store", "events_store"), ("kubemq.command", "commands")])
async def test_objects_reach_the_storing_binding_through_each_pattern(
    start_connector: StartConnector, broker: EmbeddedBroker, seaweed: Any, s3_client: Any, bucket: str, kind: str, subscribers: str
) -> None:
    channel = f"s3.pattern.{subscribers}"
    destination = unique_bucket_name("pattern")
    await s3_client.create_bucket(Bucket=destination)
    s3 = {"aws_key": seaweed.access_key, "aws_secret_key": seaweed.secret_key, "region": "us-east-1", "endpoint": seaweed.endpoint}
    store = binding("store", kind, channel, target=target("aws.s3", s3))
    source = source_binding("watch", seaweed, bucket, kind, channel, {"destination_bucket": destination}, {"timeout_seconds": 10} if kind == "kubemq.command" else None)
    try:
        running = await start_connector(config(store, source))
        await broker.wait_for_subscribers(channel, kind=subscribers)
        objects = {f"p/{n}": os.urandom(50 + n) for n in range(10)}
        await put_objects(s3_client, bucket, objects)
        await eventually(lambda: keys_in(s3_client, bucket), expect=[], timeout=30)
        await eventually(lambda: keys_in(s3_client, destination), expect=sorted(objects), timeout=30)
        for key, data in objects.items():
            stored = await s3_client.get_object(Bucket=destination, Key=key)
            assert await stored["Body"].read() == data
        assert running.runtime.engine.bindings["watch"].status()["target_type"] == kind
    finally:
        await empty_bucket(s3_client, destination)
        await s3_client.delete_bucket(Bucket=destination)
