"""Every source kind with the real ``aws.s3`` target on SeaweedFS, in one connector."""

from __future__ import annotations

from typing import Any

import pytest

from bindings.kubemq.client import Connection, exchange
from bindings.wire import Request
from connector.s3 import S3Target
from devbroker import EmbeddedBroker
from tests.fixtures.configs import binding, config
from tests.fixtures.kubemq import RunningConnector, StartConnector
from tests.fixtures.registries import with_targets
from tests.sources.support import start, take

REGISTRY = with_targets(S3Target)
PATTERNS = {
    "query": ("kubemq.query", "s3p.query", None),
    "command": ("kubemq.command", "s3p.command", None),
    "queue": ("kubemq.queue", "s3p.queue", "s3p.queue.resp"),
    "events": ("kubemq.events", "s3p.event", "s3p.event.resp"),
    "events-store": ("kubemq.events-store", "s3p.store", "s3p.store.resp"),
}


@pytest.fixture
async def s3_connector(broker: EmbeddedBroker, start_connector: StartConnector, s3_properties: dict[str, str]) -> RunningConnector:
    target = "      kind: aws.s3\n      properties:\n" + "\n".join(f'        {key}: "{value}"' for key, value in s3_properties.items())
    bindings = [binding(pattern.replace("-", "_"), kind, channel, {"response_channel": response} if response else {}, target=target) for pattern, (kind, channel, response) in PATTERNS.items()]
    return await start(start_connector, broker, config(*bindings), REGISTRY)


async def test_each_pattern_uploads_to_s3(s3_connector: RunningConnector, broker: EmbeddedBroker, bucket: str, s3_client: Any) -> None:
    connection = Connection(broker.address, client_id="s3-patterns")
    for pattern, (_, channel, response_channel) in PATTERNS.items():
        request = Request({"method": "upload_item", "bucket_name": bucket, "item_name": f"{pattern}.txt"}, f"via {pattern}".encode())
        _, response = await exchange(connection, pattern, channel, request, timeout=20, response_channel=response_channel)  # type: ignore[arg-type]
        assert response is not None and not response.is_error, (pattern, response)
    for pattern in PATTERNS:
        stored = await s3_client.get_object(Bucket=bucket, Key=f"{pattern}.txt")
        assert await stored["Body"].read() == f"via {pattern}".encode()
    _, read = await exchange(connection, "query", "s3p.query", Request({"method": "get_item", "bucket_name": bucket, "item_name": "queue.txt"}), timeout=20, response_channel=None)
    assert read is not None and read.data == b"via queue"


async def test_a_redelivered_create_with_if_none_match_never_overwrites(s3_connector: RunningConnector, broker: EmbeddedBroker, bucket: str, s3_client: Any) -> None:
    connection = Connection(broker.address, client_id="s3-idempotent")
    create = {"method": "upload_item", "bucket_name": bucket, "item_name": "once.txt", "if_none_match": "*"}
    _, first = await exchange(connection, "queue", "s3p.queue", Request(create, b"first"), timeout=20, response_channel="s3p.queue.resp")
    assert first is not None and not first.is_error
    # The same create again, as a redelivery would repeat it: refused, and dead-lettered at once (412 cannot succeed later).
    _, again = await exchange(connection, "queue", "s3p.queue", Request(create, b"second"), timeout=20, response_channel="s3p.queue.resp")
    assert again is not None and again.is_error and "PreconditionFailed" in again.error
    [dead] = await take(broker, "s3p.queue.dlq")
    assert "PreconditionFailed" in dead.tags["error"]
    stored = await s3_client.get_object(Bucket=bucket, Key="once.txt")
    assert await stored["Body"].read() == b"first"
