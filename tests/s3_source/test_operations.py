"""The aws.s3 source as operators run it: a live config edit, and ``endpoint: embedded`` for development."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aioboto3

from bindings.runtime import Runtime
from connector.s3 import SHARED_EMBEDDED_S3
from devbroker import EmbeddedBroker
from tests.fixtures.configs import config
from tests.fixtures.kubemq import connector_registry, free_port
from tests.fixtures.waiting import eventually
from tests.ops.support import watched_connector, write_config
from tests.s3_source.support import carried, keys_in, sends_nothing_more, source_binding, take_queue


async def test_a_live_edit_of_the_folders_takes_effect_without_a_restart(broker: EmbeddedBroker, seaweed: Any, s3_client: Any, bucket: str, tmp_path: Path) -> None:
    path, port = tmp_path / "config.yaml", free_port()
    write_config(path, config(source_binding("live", seaweed, bucket, "kubemq.queue", "s3.live", {"folders": "first"})), broker, port)
    async with watched_connector(path, connector_registry(), broker) as running:
        await s3_client.put_object(Bucket=bucket, Key="second/b", Body=b"b")
        await s3_client.put_object(Bucket=bucket, Key="first/a", Body=b"a")
        [first] = await take_queue(broker, "s3.live", 1)
        assert carried(first.body)[0]["item_name"] == "first/a"
        assert await sends_nothing_more(running.runtime, "live", broker, "s3.live")
        write_config(path, config(source_binding("live", seaweed, bucket, "kubemq.queue", "s3.live", {"folders": "second"})), broker, port)
        await eventually(lambda: running.runtime.status.last_reload_trigger, expect="file change", timeout=30)
        [second] = await take_queue(broker, "s3.live", 1)
        assert carried(second.body)[0]["item_name"] == "second/b"
    assert await keys_in(s3_client, bucket) == []


async def test_endpoint_embedded_watches_a_bucket_of_the_built_in_seaweedfs(broker: EmbeddedBroker, tmp_path: Path) -> None:
    binding = source_binding("dev", None, "inbox", "kubemq.queue", "s3.dev", {"aws_key": None, "aws_secret_key": None, "region": None, "endpoint": "embedded"})
    path = tmp_path / "config.yaml"
    path.write_text(config(binding).replace("{broker}", broker.address).replace("{api_port}", str(free_port())))
    runtime = Runtime(path, connector_registry(), configure_logging=False)
    await runtime.start()
    try:
        # The embedded store starts empty: the binding says the bucket is missing until it exists.
        await eventually(lambda: "NoSuchBucket" in runtime.engine.readiness()[1].get("dev", ""), expect=True, timeout=30)
        embedded = SHARED_EMBEDDED_S3.instance
        assert embedded is not None
        session = aioboto3.Session(aws_access_key_id=embedded.access_key, aws_secret_access_key=embedded.secret_key)
        async with session.client("s3", endpoint_url=embedded.endpoint, region_name="us-east-1") as s3:
            await s3.create_bucket(Bucket="inbox")
            await s3.put_object(Bucket="inbox", Key="hello.txt", Body=b"hello")
            [message] = await take_queue(broker, "s3.dev", 1)
            assert carried(message.body) == ({"bucket_name": "inbox", "item_name": "hello.txt", "method": "upload_item"}, b"hello")
    finally:
        await runtime.stop()
    assert SHARED_EMBEDDED_S3.instance is None  # the last binding that named it stopped it


async def test_a_broker_outage_deletes_nothing_and_the_objects_go_once_it_is_back(seaweed: Any, s3_client: Any, bucket: str, tmp_path: Path) -> None:
    port = free_port()
    first = EmbeddedBroker(host="127.0.0.1", port=port)
    await first.start()
    path = tmp_path / "config.yaml"
    path.write_text(config(source_binding("outage", seaweed, bucket, "kubemq.queue", "s3.outage")).replace("{broker}", first.address).replace("{api_port}", str(free_port())))
    runtime = Runtime(path, connector_registry(), configure_logging=False)
    await runtime.start()
    try:
        await s3_client.put_object(Bucket=bucket, Key="before", Body=b"1")
        [message] = await take_queue(first, "s3.outage", 1)
        assert carried(message.body)[1] == b"1"
        await first.stop()
        await s3_client.put_object(Bucket=bucket, Key="during", Body=b"2")
        failed = runtime.metrics.source_items.labels("outage", "failed")
        await eventually(lambda: failed._value.get() >= 2, expect=True, timeout=30)
        assert await keys_in(s3_client, bucket) == ["during"]
        async with EmbeddedBroker(host="127.0.0.1", port=port) as back:
            [message] = await take_queue(back, "s3.outage", 1, timeout=60)
            assert carried(message.body)[1] == b"2"
            await eventually(lambda: keys_in(s3_client, bucket), expect=[], timeout=30)
    finally:
        await runtime.stop()
