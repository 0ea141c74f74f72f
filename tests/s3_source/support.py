"""What the aws.s3 source tests share: a config of one S3-to-KubeMQ binding, a queue reader, object uploads."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pybase64
from kubemq import AsyncQueuesClient

from devbroker import EmbeddedBroker
from tests.fixtures.configs import scalar
from tests.fixtures.waiting import eventually


def source_binding(name: str, seaweed: Any, bucket: str, target_kind: str, channel: str, source: dict[str, Any] | None = None, target: dict[str, Any] | None = None) -> str:
    """One binding from an aws.s3 source (every value quoted, as kubemq-sources configs are) to a KubeMQ target."""
    source_properties = {
        "aws_key": seaweed and seaweed.access_key,
        "aws_secret_key": seaweed and seaweed.secret_key,
        "region": "us-east-1",
        "endpoint": seaweed and seaweed.endpoint,
        "bucket_name": bucket,
        "folders": "/",
        "target_type": "aws",
        "scan_interval": 1,
        **(source or {}),
    }
    target_properties = {"address": "{broker}", "channel": channel, **(target or {})}
    lines = [f"  - name: {name}", "    source:", "      kind: aws.s3", "      properties:"]
    lines += [f"        {key}: {scalar(value)}" for key, value in source_properties.items() if value is not None]
    lines += ["    target:", f"      kind: {target_kind}", "      properties:"]
    lines += [f"        {key}: {scalar(value)}" for key, value in target_properties.items()]
    lines += ["    properties:", '      log_level: "error"']
    return "\n".join(lines)


async def take_queue(broker: EmbeddedBroker, channel: str, count: int, *, timeout: float = 60) -> list[Any]:
    """Receive (and ack) ``count`` messages from ``channel``; fails when fewer come within ``timeout``."""
    taken: list[Any] = []
    async with AsyncQueuesClient(address=broker.address, client_id="test-reader") as client:
        async with asyncio.timeout(timeout):
            while len(taken) < count:
                polled = await client.receive_queue_messages(channel, max_messages=min(1000, count - len(taken)), wait_timeout_seconds=1, auto_ack=True)
                assert not polled.is_error, polled.error
                taken.extend(polled.messages)
    return taken


async def sends_nothing_more(runtime: Any, binding: str, broker: EmbeddedBroker, channel: str) -> bool:
    """After two more whole scans of the binding's source (the first may have begun before the call), its channel holds no new message."""
    source = runtime.engine.bindings[binding].source
    scans = source.completed_scans
    await eventually(lambda: source.completed_scans >= scans + 2, 30)
    return await broker.queue_depth(channel) == 0


def carried(body: bytes) -> tuple[dict[str, str], bytes]:
    """The kubemq-targets request a message body carries: its metadata and decoded data."""
    request = json.loads(body)
    return request["metadata"], pybase64.b64decode(request.get("data", ""))


async def put_objects(s3: Any, bucket: str, objects: dict[str, bytes]) -> None:
    async def put(key: str, data: bytes) -> None:
        await s3.put_object(Bucket=bucket, Key=key, Body=data)

    for start in range(0, len(objects), 64):
        await asyncio.gather(*(put(key, data) for key, data in list(objects.items())[start : start + 64]))


STATE_PREFIX = ".kubemq-s3/"


async def keys_in(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    """The bucket's keys under ``prefix``, but for the source's own state (its lease, its ledger)."""
    keys: list[str] = []
    async for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", ()) if not item["Key"].startswith(STATE_PREFIX))
    return keys
