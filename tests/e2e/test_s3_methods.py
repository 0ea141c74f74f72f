"""Every aws.s3 method end to end: the official KubeMQ SDK sends kubemq-targets requests to a running connector."""

from __future__ import annotations

import json
from typing import Any

from bindings.kubemq.client import query
from bindings.wire import Request
from devbroker import EmbeddedBroker
from tests.fixtures.kubemq import StartConnector
from tests.fixtures.s3 import unique_bucket_name

Send = Any


def data_json(reply: Any) -> Any:
    assert not reply.is_error, reply.error
    return json.loads(reply.data)


async def test_bucket_lifecycle_through_the_broker(connector_send: Send, s3_client: Any) -> None:
    name = unique_bucket_name("e2e")
    created = await connector_send({"method": "create_bucket", "bucket_name": name, "wait_for_completion": "true"})
    assert created.metadata == {"result": "ok", "bucket": name} and data_json(created) == {"Location": f"/{name}"}
    listed = data_json(await connector_send({"method": "list_buckets"}))
    assert name in [bucket["Name"] for bucket in listed["Buckets"]]
    deleted = await connector_send({"method": "delete_bucket", "bucket_name": name, "wait_for_completion": "true"})
    assert not deleted.is_error and deleted.data is None and deleted.metadata == {"result": "ok", "bucket": name}


async def test_object_methods_through_the_broker(connector_send: Send, bucket: str) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB of every byte value: binary-safe through base64 and the broker
    uploaded = await connector_send({"method": "upload_item", "bucket_name": bucket, "item_name": "dir/a b.bin"}, payload)
    assert list(data_json(uploaded)) == ["Location", "VersionID", "UploadID", "ETag"]
    assert uploaded.metadata["key"] == "dir/a b.bin" and uploaded.metadata["etag"].startswith('"')

    got = await connector_send({"method": "get_item", "bucket_name": bucket, "item_name": "dir/a b.bin"})
    assert not got.is_error and got.data == payload
    assert got.metadata["content_length"] == str(len(payload)) and got.metadata["bucket"] == bucket

    head = data_json(await connector_send({"method": "head_item", "bucket_name": bucket, "item_name": "dir/a b.bin"}))
    assert head["ContentLength"] == len(payload)

    copied = await connector_send({"method": "copy_item", "bucket_name": bucket, "item_name": "copy.bin", "copy_source": f"{bucket}/dir/a b.bin"})
    assert "ETag" in data_json(copied)["CopyObjectResult"]

    listing = data_json(await connector_send({"method": "list_bucket_items", "bucket_name": bucket}))
    assert [item["Key"] for item in listing["Contents"]] == ["copy.bin", "dir/a b.bin"]

    url = data_json(await connector_send({"method": "presign_url", "bucket_name": bucket, "item_name": "copy.bin", "expires_seconds": "60"}))
    assert url["method"] == "GET" and "X-Amz-Signature=" in url["url"]

    removed = await connector_send({"method": "delete_item_from_bucket", "bucket_name": bucket, "item_name": "copy.bin", "wait_for_completion": "true"})
    assert data_json(removed) == {"DeleteMarker": None, "RequestCharged": None, "VersionId": None}

    emptied = await connector_send({"method": "delete_all_items_from_bucket", "bucket_name": bucket})
    assert data_json(emptied) == {"Deleted": 1} and emptied.metadata["deleted"] == "1"


async def test_decoded_json_content(connector_send: Send, bucket: str) -> None:
    await connector_send({"method": "upload_item", "bucket_name": bucket, "item_name": "doc.json", "content_type": "application/json"}, b'{"total": 42}')
    reply = await connector_send({"method": "get_item", "bucket_name": bucket, "item_name": "doc.json", "decode": "auto"})
    assert data_json(reply) == {"json": {"total": 42}} and reply.metadata["content_type"] == "application/json"


async def test_errors_reach_the_sender_as_kubemq_targets_error_replies(connector_send: Send, bucket: str) -> None:
    missing = await connector_send({"method": "get_item", "bucket_name": bucket, "item_name": "missing"})
    assert missing.is_error and missing.data is None and missing.metadata == {}
    assert "NoSuchKey: The specified key does not exist.\n\tstatus code: 404, request id: " in missing.error
    unknown = await connector_send({"method": "rename_item", "bucket_name": bucket})
    assert unknown.is_error and "list_buckets, list_bucket_items, create_bucket, delete_bucket, upload_item, get_item" in unknown.error
    incomplete = await connector_send({"method": "upload_item", "bucket_name": bucket})
    assert incomplete.is_error and "error parsing item_name, value of key item_name cannot be empty" in incomplete.error


EMBEDDED_CONFIG = """
apiPort: {api_port}
apiHost: 127.0.0.1
bindings:
  - name: s3-embedded
    source:
      kind: kubemq.query
      properties:
        address: "{broker}"
        channel: "query.aws.s3.embedded"
    target:
      kind: aws.s3
      properties:
        endpoint: "embedded"
        bucket: "demo"
"""


async def test_a_connector_with_the_embedded_store(start_connector: StartConnector, broker: EmbeddedBroker) -> None:
    await start_connector(EMBEDDED_CONFIG)

    async def send(metadata: dict[str, str], data: bytes = b"") -> Any:
        return await query(broker.address, "query.aws.s3.embedded", Request(metadata=metadata, data=data), timeout=30, client_id="e2e-embedded")

    assert not (await send({"method": "create_bucket", "bucket_name": "demo"})).is_error
    assert not (await send({"method": "upload_item", "item_name": "hello.txt"}, b"hello")).is_error
    got = await send({"method": "get_item", "item_name": "hello.txt"})
    assert got.data == b"hello" and got.metadata["bucket"] == "demo"
    assert not (await send({"method": "delete_bucket", "force": "true"})).is_error
