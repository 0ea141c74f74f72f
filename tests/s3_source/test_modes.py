"""after_send, payloads, replicas and failures of the aws.s3 source, against SeaweedFS and the development broker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from bindings.runtime import Runtime
from devbroker import EmbeddedBroker
from tests.fixtures.configs import binding, config, target
from tests.fixtures.kubemq import StartConnector, connector_registry, free_port, start_runtime
from tests.fixtures.s3 import empty_bucket, unique_bucket_name
from tests.fixtures.waiting import eventually
from tests.s3_source.support import carried, keys_in, put_objects, sends_nothing_more, source_binding, take_queue


async def test_keep_sends_nothing_more_after_a_restart_and_a_changed_object_once(broker: EmbeddedBroker, seaweed: Any, s3_client: Any, bucket: str, tmp_path: Path) -> None:
    objects = {f"kept/{n}": f"v1 {n}".encode() for n in range(20)}
    await put_objects(s3_client, bucket, objects)
    yaml = config(source_binding("keep", seaweed, bucket, "kubemq.queue", "s3.keep", {"after_send": "keep", "concurrency": 4}))
    first = await start_runtime(yaml, tmp_path, broker)
    try:
        assert len(await take_queue(broker, "s3.keep", 20)) == 20
    finally:
        await first.runtime.stop()
    second = await start_runtime(yaml, tmp_path, broker)
    try:
        # After the restarted source's first whole scan (its backlog reported), and two more: a restart forgets nothing.
        await eventually(lambda: second.runtime.metrics.registry.get_sample_value("kubemq_s3_source_pending_items", {"binding": "keep"}), expect=0.0, timeout=30)
        assert await sends_nothing_more(second.runtime, "keep", broker, "s3.keep")
        await s3_client.put_object(Bucket=bucket, Key="kept/7", Body=b"v2")
        [changed] = await take_queue(broker, "s3.keep", 1)
        assert carried(changed.body)[1] == b"v2"
        assert await sends_nothing_more(second.runtime, "keep", broker, "s3.keep")
    finally:
        await second.runtime.stop()
    assert sorted(await keys_in(s3_client, bucket)) == sorted(objects)


async def test_move_puts_each_sent_object_under_the_prefix_and_never_sends_it_again(start_connector: StartConnector, broker: EmbeddedBroker, seaweed: Any, s3_client: Any, bucket: str) -> None:
    await put_objects(s3_client, bucket, {"in/a.csv": b"a", "in/b.csv": b"b", "in/skip.txt": b"not a csv", "elsewhere/c.csv": b"c"})
    source = {"after_send": "move", "move_prefix": "done", "folders": "in", "suffixes": ".csv"}
    running = await start_connector(config(source_binding("move", seaweed, bucket, "kubemq.queue", "s3.move", source)))
    messages = await take_queue(broker, "s3.move", 2)
    assert sorted(carried(message.body)[0]["item_name"] for message in messages) == ["in/a.csv", "in/b.csv"]
    await eventually(lambda: keys_in(s3_client, bucket), expect=["done/in/a.csv", "done/in/b.csv", "elsewhere/c.csv", "in/skip.txt"], timeout=30)
    assert await sends_nothing_more(running.runtime, "move", broker, "s3.move")


async def test_a_reference_carries_a_presigned_url_that_fetches_the_object(start_connector: StartConnector, broker: EmbeddedBroker, seaweed: Any, s3_client: Any, bucket: str) -> None:
    await s3_client.put_object(Bucket=bucket, Key="big one+.bin", Body=b"\x00\x01" * 5000)
    await start_connector(config(source_binding("refs", seaweed, bucket, "kubemq.queue", "s3.refs", {"payload": "reference", "target_type": None, "after_send": "keep"})))
    [message] = await take_queue(broker, "s3.refs", 1)
    document = json.loads(message.body)
    assert (document["bucket"], document["key"], document["size"]) == (bucket, "big one+.bin", 10000)
    assert document["etag"].strip('"') and document["last_modified"] and document["url_expires"]
    async with aiohttp.ClientSession() as http, http.get(document["url"]) as response:
        assert response.status == 200
        assert await response.read() == b"\x00\x01" * 5000


async def test_two_replicas_send_each_object_once_between_them_and_a_standby_takes_over(start_connector: StartConnector, broker: EmbeddedBroker, seaweed: Any, s3_client: Any, bucket: str) -> None:
    objects = {f"shared/{n:03d}": bytes([n % 256]) * 10 for n in range(300)}
    yaml = config(source_binding("replicated", seaweed, bucket, "kubemq.queue", "s3.replicas", {"concurrency": 8}))
    first = await start_connector(yaml)
    second = await start_connector(yaml)
    await put_objects(s3_client, bucket, objects)
    messages = await take_queue(broker, "s3.replicas", 300, timeout=90)
    assert sorted(carried(message.body)[0]["item_name"] for message in messages) == sorted(objects)
    await eventually(lambda: keys_in(s3_client, bucket), expect=[], timeout=30)
    holder, standby = (first, second) if "standby" in second.runtime.engine.bindings["replicated"].status()["source_connection"] else (second, first)
    assert await sends_nothing_more(holder.runtime, "replicated", broker, "s3.replicas")
    assert "standby" in standby.runtime.engine.bindings["replicated"].status()["source_connection"]
    await holder.runtime.stop()  # a clean stop gives the lease up at once
    await s3_client.put_object(Bucket=bucket, Key="after.txt", Body=b"after")
    [message] = await take_queue(broker, "s3.replicas", 1, timeout=10)
    assert carried(message.body) == ({"bucket_name": bucket, "item_name": "after.txt", "method": "upload_item"}, b"after")


async def test_a_far_side_error_deletes_nothing_and_the_object_goes_once_the_far_side_works(start_connector: StartConnector, broker: EmbeddedBroker, seaweed: Any, s3_client: Any, bucket: str) -> None:
    destination = unique_bucket_name("dst")
    s3 = {"aws_key": seaweed.access_key, "aws_secret_key": seaweed.secret_key, "region": "us-east-1", "endpoint": seaweed.endpoint}
    consumer = binding("store", "kubemq.query", "s3.far", target=target("aws.s3", s3))
    producer = source_binding("watch", seaweed, bucket, "kubemq.query", "s3.far", {"destination_bucket": destination}, {"timeout_seconds": 10})
    await put_objects(s3_client, bucket, {"x.bin": b"x" * 100, "y.bin": b"y"})
    running = await start_connector(config(consumer, producer))
    failed = running.runtime.metrics.source_items.labels("watch", "failed")
    # The far side answers is_error (NoSuchBucket), executed: kubemq-sources took that for a success and deleted.
    await eventually(lambda: failed._value.get() >= 4, expect=True, timeout=30)
    assert sorted(await keys_in(s3_client, bucket)) == ["x.bin", "y.bin"]
    status = running.runtime.engine.bindings["watch"].status()
    assert status["ready"] is True
    await s3_client.create_bucket(Bucket=destination)
    try:
        await eventually(lambda: keys_in(s3_client, bucket), expect=[], timeout=30)
        assert sorted(await keys_in(s3_client, destination)) == ["x.bin", "y.bin"]
        stored = await s3_client.get_object(Bucket=destination, Key="x.bin")
        assert await stored["Body"].read() == b"x" * 100
    finally:
        await empty_bucket(s3_client, destination)
        await s3_client.delete_bucket(Bucket=destination)


async def test_a_missing_bucket_keeps_the_binding_not_ready_with_the_reason_until_it_exists(broker: EmbeddedBroker, seaweed: Any, s3_client: Any, tmp_path: Path) -> None:
    missing = unique_bucket_name("late")
    path = tmp_path / "config.yaml"
    path.write_text(config(source_binding("waiting", seaweed, missing, "kubemq.queue", "s3.late")).replace("{broker}", broker.address).replace("{api_port}", str(free_port())))
    runtime = Runtime(path, connector_registry(), configure_logging=False)
    await runtime.start()
    try:
        await eventually(lambda: "NoSuchBucket" in runtime.engine.readiness()[1].get("waiting", ""), expect=True, timeout=30)
        assert runtime.engine.readiness()[1]["waiting"].startswith("source not subscribed: not connected for ")
        await s3_client.create_bucket(Bucket=missing)
        await s3_client.put_object(Bucket=missing, Key="first", Body=b"1")
        await eventually(lambda: runtime.engine.readiness()[0], expect=True, timeout=15)
        [message] = await take_queue(broker, "s3.late", 1)
        assert carried(message.body)[1] == b"1"
    finally:
        await runtime.stop()
        await empty_bucket(s3_client, missing)
        await s3_client.delete_bucket(Bucket=missing)
