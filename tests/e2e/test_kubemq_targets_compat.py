"""Requests written as kubemq-targets' aws.s3 README writes them get replies shaped as kubemq-targets returns them.

The bodies below are those of ``targets/aws/s3/README.md`` (kubemq-io/kubemq-targets), sent verbatim with the
official SDK: string metadata, ``"data": null`` or base64 data, two-space indentation. Two changes only:

* ``my_bucket_name`` is not a valid S3 bucket name (underscore), so every run uses fresh names in its place;
* that README's upload example says ``"method": "create_bucket"`` and its delete-all example says
  ``"delete_item_from_bucket"`` (copy-paste slips); the method each section documents is used.

The expected reply shapes are kubemq-targets' own (reference notes, section 6): aws-sdk-go v1 output structs
marshalled by Go, PascalCase keys in struct order, ``null`` for unset fields, RFC 3339 times.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from string import Template
from typing import Any

import pytest
import pytest_asyncio

from bindings.wire import Response
from devbroker import EmbeddedBroker
from tests.e2e.support import RFC3339, Send, drop_bucket, keys_in, raw_query, s3_failure, stored
from tests.fixtures.kubemq import RunningConnector, s3_binding_yaml, start_runtime
from tests.fixtures.s3 import unique_bucket_name

README = {
    "list_buckets": """{
  "metadata": {
    "method": "list_buckets"
  },
  "data": null
}""",
    "list_bucket_items": """{
  "metadata": {
    "method": "list_bucket_items",
    "bucket_name": "$bucket"
  },
  "data": null
}""",
    "create_bucket": """{
  "metadata": {
    "method": "create_bucket",
    "bucket_name": "$bucket"
  },
  "data": null
}""",
    "upload_item": """{
  "metadata": {
    "method": "upload_item",
    "bucket_name": "$bucket",
    "item_name": "my_item_name"
  },
  "data": "bXkgaXRlbSBoZXJl"
}""",
    "get_item": """{
  "metadata": {
    "method": "get_item",
    "bucket_name": "$bucket",
    "item_name": "my_item_name"
  },
  "data": null
}""",
    "delete_item_from_bucket": """{
  "metadata": {
    "method": "delete_item_from_bucket",
    "bucket_name": "$bucket",
    "item_name": "my_item_name"
  },
  "data": null
}""",
    "delete_all_items_from_bucket": """{
  "metadata": {
    "method": "delete_all_items_from_bucket",
    "bucket_name": "$bucket"
  },
  "data": null
}""",
    "copy_item": """{
  "metadata": {
    "method": "copy_item",
    "bucket_name": "$bucket",
    "copy_source": "$source",
    "item_name": "my_item_name"
  },
  "data": null
}""",
    "delete_bucket": """{
  "metadata": {
    "method": "delete_bucket",
    "bucket_name": "$bucket"
  },
  "data": null
}""",
}

# aws-sdk-go v1.37 output structs, fields in Go declaration (alphabetical) order.
LIST_OBJECTS_V2 = ["CommonPrefixes", "Contents", "ContinuationToken", "Delimiter", "EncodingType", "IsTruncated", "KeyCount", "MaxKeys", "Name", "NextContinuationToken", "Prefix", "StartAfter"]
S3_OBJECT = ["ETag", "Key", "LastModified", "Owner", "Size", "StorageClass"]
COPY_OBJECT = [
    "BucketKeyEnabled", "CopyObjectResult", "CopySourceVersionId", "Expiration", "RequestCharged", "SSECustomerAlgorithm",
    "SSECustomerKeyMD5", "SSEKMSEncryptionContext", "SSEKMSKeyId", "ServerSideEncryption", "VersionId",
]  # fmt: skip
# s3manager.UploadOutput: Location, VersionID, UploadID, then ETag (added to aws-sdk-go by PR #3733).
UPLOAD_OUTPUT = ["Location", "VersionID", "UploadID", "ETag"]


CHANNEL = "query.aws.s3.compat"


@pytest_asyncio.fixture(scope="module")
async def compat_connector(broker: EmbeddedBroker, seaweed: Any, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningConnector]:
    """A connector in the default reply style, the one kubemq-targets senders get."""
    running = await start_runtime(s3_binding_yaml(seaweed, CHANNEL, reply_style="kubemq-targets"), tmp_path_factory.mktemp("compat"), broker)
    yield running
    await running.runtime.stop()


async def send(broker: EmbeddedBroker, method: str, **values: str) -> tuple[dict[str, str], bytes | None]:
    """One README request, verbatim; checks kubemq-targets' success envelope and returns (metadata, data bytes)."""
    body = Template(README[method]).substitute(values).encode()
    executed, reply = await raw_query(broker.address, body, channel=CHANNEL)
    assert executed is True  # kubemq-targets' query source always answers Executed=true
    assert list(reply) == ["metadata", "data", "is_error", "error"]
    assert (reply["is_error"], reply["error"], reply["metadata"]["result"]) == (False, "", "ok"), reply
    expected = {"result", "bucket", "key"} if method == "get_item" else {"result"}
    assert set(reply["metadata"]) == expected, reply["metadata"]  # kubemq-targets' keys, no others
    return reply["metadata"], None if reply["data"] is None else base64.b64decode(reply["data"], validate=True)


def as_json(data: bytes | None) -> Any:
    assert data is not None
    return json.loads(data)


async def test_the_nine_readme_requests_get_kubemq_targets_replies(compat_connector: RunningConnector, broker: EmbeddedBroker, s3_client: Any) -> None:
    source, copy = unique_bucket_name("compat"), unique_bucket_name("compat")
    try:
        for name in (source, copy):
            _, created = await send(broker, "create_bucket", bucket=name)
            assert as_json(created) == {"Location": f"/{name}"}

        _, buckets = await send(broker, "list_buckets")
        listed = as_json(buckets)
        assert list(listed) == ["Buckets", "Owner"] and list(listed["Owner"]) == ["DisplayName", "ID"]
        mine = [entry for entry in listed["Buckets"] if entry["Name"] in (source, copy)]
        assert len(mine) == 2 and all(list(entry) == ["CreationDate", "Name"] and RFC3339.match(entry["CreationDate"]) for entry in mine)

        _, uploaded = await send(broker, "upload_item", bucket=source)
        output = as_json(uploaded)
        assert list(output) == UPLOAD_OUTPUT and (output["VersionID"], output["UploadID"]) == (None, "")
        assert output["Location"].endswith(f"/{source}/my_item_name")
        assert await stored(s3_client, source, "my_item_name") == b"my item here"

        _, items = await send(broker, "list_bucket_items", bucket=source)
        listing = as_json(items)
        assert list(listing) == LIST_OBJECTS_V2 and (listing["Name"], listing["KeyCount"], listing["IsTruncated"], listing["Prefix"]) == (source, 1, False, "")
        assert (listing["CommonPrefixes"], listing["ContinuationToken"], listing["NextContinuationToken"]) == (None, None, None)
        (item,) = listing["Contents"]
        assert list(item) == S3_OBJECT and (item["Key"], item["Size"], item["Owner"], item["StorageClass"]) == ("my_item_name", 12, None, "STANDARD")
        assert RFC3339.match(item["LastModified"]) and item["ETag"] == output["ETag"]

        metadata, got = await send(broker, "get_item", bucket=source)
        assert got == b"my item here" and (metadata["bucket"], metadata["key"]) == (source, "my_item_name")

        # copy_source as that README describes it, a bare "bucket source name": the same key from that bucket.
        _, copied = await send(broker, "copy_item", bucket=copy, source=source)
        result = as_json(copied)
        assert list(result) == COPY_OBJECT and list(result["CopyObjectResult"]) == ["ETag", "LastModified"]
        assert all(result[name] is None for name in COPY_OBJECT if name != "CopyObjectResult")
        assert await stored(s3_client, copy, "my_item_name") == b"my item here"

        _, deleted = await send(broker, "delete_item_from_bucket", bucket=source)
        assert as_json(deleted) == {"DeleteMarker": None, "RequestCharged": None, "VersionId": None}

        # kubemq-targets sends no data here (the extended reply style adds the count).
        _, emptied = await send(broker, "delete_all_items_from_bucket", bucket=copy)
        assert emptied is None

        for name in (source, copy):
            _, gone = await send(broker, "delete_bucket", bucket=name)
            assert gone is None
        assert not {source, copy} & {entry["Name"] for entry in (await s3_client.list_buckets())["Buckets"]}
    finally:
        for name in (source, copy):
            await drop_bucket(s3_client, name)


async def test_a_readme_request_that_fails_gets_kubemq_targets_error_reply(compat_connector: RunningConnector, broker: EmbeddedBroker, bucket: str) -> None:
    body = Template(README["get_item"]).substitute(bucket=bucket).encode()
    executed, reply = await raw_query(broker.address, body, channel=CHANNEL)
    assert executed is True and list(reply) == ["metadata", "data", "is_error", "error"]
    prefix = "All attempts fail:\n#1: "  # kubemq-targets' retry middleware lists every attempt, even a single one
    assert reply["error"].startswith(prefix)
    code, status, message = s3_failure(Response(reply["metadata"], reply["data"], reply["is_error"], reply["error"].removeprefix(prefix)))
    assert (code, status, message) == ("NoSuchKey", 404, "The specified key does not exist.")


async def test_every_boolean_go_parses_is_accepted(connector_send: Send, s3_client: Any, bucket: str) -> None:
    """kubemq-targets reads ``wait_for_completion`` with Go's strconv.ParseBool; every spelling it accepts works here."""
    spellings = ["1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"]
    for number, spelling in enumerate(spellings):
        reply = await connector_send({"method": "upload_item", "bucket_name": bucket, "item_name": f"k{number}", "wait_for_completion": spelling}, b"x")
        assert not reply.is_error, (spelling, reply.error)
    assert len(await keys_in(s3_client, bucket)) == len(spellings)
