"""Every failure reaches the sender as a kubemq-targets error reply, through the official SDK and the broker.

Unknown methods, missing keys, malformed bodies and S3's own refusals are
replies (``Executed=true``, ``is_error: true``, empty metadata, null data),
never a crash or a silence; and a connector outlives its broker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bindings.kubemq.client import query
from bindings.wire import Request
from devbroker import EmbeddedBroker
from tests.e2e.support import UNKNOWN_METHOD, Send, ok, raw_query, s3_failure, stored
from tests.fixtures.kubemq import free_port, s3_binding_yaml, start_runtime
from tests.fixtures.s3 import unique_bucket_name
from tests.fixtures.waiting import eventually
from tests.ops.support import get_text

# Required keys of each method, in the order the error names them (list_buckets needs none).
REQUIRED = {
    "list_bucket_items": ("bucket_name",),
    "create_bucket": ("bucket_name",),
    "delete_bucket": ("bucket_name",),
    "upload_item": ("bucket_name", "item_name"),
    "get_item": ("bucket_name", "item_name"),
    "delete_item_from_bucket": ("bucket_name", "item_name"),
    "delete_all_items_from_bucket": ("bucket_name",),
    "copy_item": ("bucket_name", "item_name", "copy_source"),
    "head_item": ("bucket_name", "item_name"),
    "presign_url": ("bucket_name", "item_name"),
}


def names_missing(error: str, keys: tuple[str, ...] | list[str]) -> bool:
    """The error has one part per missing key, in order, each in kubemq-targets' wording for that key.

    Only the wording is pinned (``error parsing <key>, value of key <key> cannot be empty``); what a method
    adds around it (which method needs the key) is left to the method's own tests.
    """
    parts = error.split("; ")
    return len(parts) == len(keys) and all(f"error parsing {key}, value of key {key} cannot be empty" in part for part, key in zip(parts, keys, strict=True))


@pytest.mark.parametrize(("method", "suggestion"), [("rename_item", ""), ("GET_ITEM", "; did you mean 'get_item'?"), ("list-buckets", "; did you mean 'list_buckets'?")])
async def test_an_unknown_method_lists_the_methods_in_a_stable_order(connector_send: Send, method: str, suggestion: str) -> None:
    """kubemq-targets' words come first, unchanged; a close method name is suggested after them."""
    reply = await connector_send({"method": method, "bucket_name": "b"})
    assert (reply.is_error, reply.error, reply.metadata, reply.data) == (True, UNKNOWN_METHOD + suggestion, {}, None)


@pytest.mark.parametrize("method", list(REQUIRED))
async def test_each_missing_required_key_is_named(connector_send: Send, method: str) -> None:
    keys = REQUIRED[method]
    nothing = await connector_send({"method": method})
    assert nothing.is_error and names_missing(nothing.error, keys), nothing.error
    for key in keys:
        others = {other: "never-created-bucket" if other == "bucket_name" else "k" for other in keys if other != key}
        for absent in ({}, {key: ""}):  # left out, or sent empty: the same for kubemq-targets
            reply = await connector_send({"method": method, **others, **absent})
            assert (reply.is_error, reply.metadata, reply.data) == (True, {}, None) and names_missing(reply.error, [key]), reply.error


ERROR_REPLY = {"metadata": {}, "data": None, "is_error": True}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        # Not JSON: kubemq-targets takes the whole body as raw data, so there is no method.
        (b"upload this please", UNKNOWN_METHOD),
        # A metadata value that is not a string makes the JSON unreadable as map[string]string: raw data again.
        (b'{"metadata":{"method":"list_buckets","max_keys":10}}', UNKNOWN_METHOD),
        (b'{"metadata":{"method":"upload_item","bucket_name":"b","item_name":"k"},"data":12}', "invalid request format, invalid data format, float64"),
        (b'{"metadata":{"method":"upload_item","bucket_name":"b","item_name":"k"},"data":[1,2]}', "invalid request format, invalid data format, []interface {}"),
        (b'{"metadata":{"method":"upload_item","bucket_name":"b","item_name":"k"},"data":true}', "invalid request format, invalid data format, bool"),
    ],
)
async def test_a_malformed_body_gets_an_error_reply(s3_connector: Any, broker: EmbeddedBroker, body: bytes, error: str) -> None:
    executed, reply = await raw_query(broker.address, body)
    assert executed is True  # the error travels inside the body, as kubemq-targets sends it
    assert list(reply) == ["metadata", "data", "is_error", "error"]  # kubemq-targets' types.Response, in its order
    assert reply == {**ERROR_REPLY, "error": error}


@pytest.mark.parametrize(
    ("data", "expected"),
    [('{"total": 3, "items": ["a"]}', b'{"items":["a"],"total":3}'), ('"not base64 at all!"', b"not base64 at all!"), ('"aGVsbG8="', b"hello")],
)
async def test_data_forms_kubemq_targets_accepts(s3_connector: Any, broker: EmbeddedBroker, s3_client: Any, bucket: str, data: str, expected: bytes) -> None:
    """A ``data`` object is stored re-encoded as JSON (keys sorted, as Go marshals a map); a string that is not base64 as its text.

    (An empty body cannot be tested here: the broker refuses it, ``Error 115``, before any connector sees it.)
    """
    body = f'{{"metadata":{{"method":"upload_item","bucket_name":"{bucket}","item_name":"k"}},"data":{data}}}'.encode()
    executed, reply = await raw_query(broker.address, body)
    assert executed and reply["is_error"] is False and reply["metadata"]["result"] == "ok"
    assert await stored(s3_client, bucket, "k") == expected


MISSING_BUCKET = "{missing}"


@pytest.mark.parametrize(
    ("metadata", "code", "status"),
    [
        ({"method": "get_item", "item_name": "absent"}, "NoSuchKey", 404),
        ({"method": "head_item", "item_name": "absent"}, "NoSuchKey", 404),
        ({"method": "copy_item", "item_name": "copy", "source_item": "absent"}, "NoSuchKey", 404),
        ({"method": "get_item", "bucket_name": MISSING_BUCKET, "item_name": "k"}, "NoSuchBucket", 404),
        ({"method": "head_item", "bucket_name": MISSING_BUCKET, "item_name": "k"}, "NoSuchBucket", 404),
        ({"method": "list_bucket_items", "bucket_name": MISSING_BUCKET}, "NoSuchBucket", 404),
        ({"method": "upload_item", "bucket_name": MISSING_BUCKET, "item_name": "k"}, "NoSuchBucket", 404),
        ({"method": "delete_all_items_from_bucket", "bucket_name": MISSING_BUCKET}, "NoSuchBucket", 404),
        ({"method": "delete_bucket", "bucket_name": MISSING_BUCKET}, "NoSuchBucket", 404),
        ({"method": "delete_bucket"}, "BucketNotEmpty", 409),
        ({"method": "create_bucket"}, "BucketAlreadyOwnedByYou", 409),
        ({"method": "get_item", "item_name": "k", "range": "bytes=100-"}, "InvalidRange", 416),
    ],
)
async def test_s3_refusals_keep_the_s3_code_and_http_status(connector_send: Send, s3_client: Any, bucket: str, metadata: dict[str, str], code: str, status: int) -> None:
    await s3_client.put_object(Bucket=bucket, Key="k", Body=b"0123456789")
    request = {"bucket_name": bucket, **metadata}
    if request["bucket_name"] == MISSING_BUCKET:
        request["bucket_name"] = unique_bucket_name("missing")
    reply = await connector_send(request)
    assert s3_failure(reply)[:2] == (code, status)
    assert "All attempts fail" not in reply.error
    assert await stored(s3_client, bucket, "k") == b"0123456789"  # nothing was touched


async def test_the_connector_survives_its_broker_restarting(seaweed: Any, s3_client: Any, bucket: str, tmp_path: Path) -> None:
    """Stop the broker under a running connector, start it again on the same port: it re-subscribes and serves S3 again."""
    port = free_port()
    channel = "query.aws.s3.e2e.restart"
    first = EmbeddedBroker(host="127.0.0.1", port=port)
    await first.start()
    running = await start_runtime(s3_binding_yaml(seaweed, channel, extra_source='\n            reconnect_interval_seconds: "0.2"'), tmp_path, first)
    second = EmbeddedBroker(host="127.0.0.1", port=port)
    try:

        async def send(broker: EmbeddedBroker, metadata: dict[str, str], data: bytes = b"") -> Any:
            return await query(broker.address, channel, Request({"bucket_name": bucket, **metadata}, data), timeout=15, client_id="e2e-restart")

        ok(await send(first, {"method": "upload_item", "item_name": "before"}, b"before the restart"))
        await first.stop()

        async def not_ready() -> bool:
            return (await get_text(f"{running.api_url}/ready"))[0] == 503

        await eventually(not_ready)  # /ready tells the truth while the broker is away
        await second.start()
        await second.wait_for_subscribers(channel, 1, timeout=30)

        async def ready() -> bool:
            return (await get_text(f"{running.api_url}/ready")) == (200, "ready")

        await eventually(ready)
        ok(await send(second, {"method": "upload_item", "item_name": "after"}, b"after the restart"))
        assert await stored(s3_client, bucket, "after") == b"after the restart"
        got = await send(second, {"method": "get_item", "item_name": "before"})
        assert (got.is_error, got.data) == (False, b"before the restart")
        listing = ok(await send(second, {"method": "list_bucket_items"}))
        assert [item["Key"] for item in listing["Contents"]] == ["after", "before"]
    finally:
        await running.runtime.stop()
        await second.stop()
        await first.stop()
