"""Object methods on a real SeaweedFS: upload, get, head, delete, and every error a sender can meet."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bindings.errors import InvalidRequestError, TargetError
from bindings.wire import Request
from connector.s3 import METHODS, S3Target
from connector.s3.transfer import multipart_upload
from tests.fixtures.s3 import unique_bucket_name
from tests.fixtures.s3_targets import MakeTarget
from tests.s3.support import body, call

MIB = 1024 * 1024
KEY = "reports/2024/a b ü.txt"


async def test_upload_item_replies_with_kubemq_targets_upload_output(target: S3Target, s3_client: Any, seaweed: Any, bucket: str) -> None:
    reply = await call(target, b"hello", method="upload_item", bucket_name=bucket, item_name=KEY)
    link = f"{seaweed.endpoint}/{bucket}/reports/2024/a%20b%20%C3%BC.txt"
    output = body(reply)
    assert list(output) == ["Location", "VersionID", "UploadID", "ETag"]
    assert output["Location"] == link and output["VersionID"] is None and output["UploadID"] == ""
    assert output["ETag"] == '"5d41402abc4b2a76b9719d911017c592"'
    # botocore sends a CRC32 of the body by default; the store keeps it and says so.
    assert reply.metadata == {"result": "ok", "bucket": bucket, "key": KEY, "link": link, "etag": output["ETag"], "checksum_crc32": "NhCmhg=="}
    stored = await s3_client.get_object(Bucket=bucket, Key=KEY)
    assert await stored["Body"].read() == b"hello"


async def test_upload_item_with_empty_data_creates_an_empty_object(target: S3Target, s3_client: Any, bucket: str) -> None:
    await call(target, method="upload_item", bucket_name=bucket, item_name="empty", wait_for_completion="true")
    assert (await s3_client.head_object(Bucket=bucket, Key="empty"))["ContentLength"] == 0


async def test_upload_item_stores_attributes_and_user_metadata(target: S3Target, s3_client: Any, bucket: str) -> None:
    await call(
        target,
        b"{}",
        method="upload_item",
        bucket_name=bucket,
        item_name="doc.json",
        content_type="application/json",
        content_disposition='attachment; filename="doc.json"',
        cache_control="max-age=60",
        storage_class="STANDARD_IA",
        user_metadata='{"owner": "billing", "team": "a"}',
        meta_team="b",
        meta_source="erp",
    )
    head = await s3_client.head_object(Bucket=bucket, Key="doc.json")
    assert head["ContentType"] == "application/json"
    assert head["ContentDisposition"] == 'attachment; filename="doc.json"'
    assert head["CacheControl"] == "max-age=60"
    assert head["StorageClass"] == "STANDARD_IA"
    assert head["Metadata"] == {"owner": "billing", "team": "b", "source": "erp"}


@pytest.mark.parametrize("value", ["not json", '["a"]', '{"n": 1}'])
async def test_upload_item_refuses_user_metadata_that_is_not_an_object_of_strings(target: S3Target, bucket: str, value: str) -> None:
    with pytest.raises(InvalidRequestError, match=r"^error parsing user_metadata"):
        await call(target, b"x", method="upload_item", bucket_name=bucket, item_name="k", user_metadata=value)


async def test_if_none_match_creates_only_once(target: S3Target, s3_client: Any, bucket: str) -> None:
    await call(target, b"first", method="upload_item", bucket_name=bucket, item_name="once", if_none_match="*")
    with pytest.raises(TargetError) as caught:
        await call(target, b"second", method="upload_item", bucket_name=bucket, item_name="once", if_none_match="*")
    assert (caught.value.code, caught.value.status, caught.value.retryable) == ("PreconditionFailed", 412, False)
    assert await (await s3_client.get_object(Bucket=bucket, Key="once"))["Body"].read() == b"first"


async def test_file_name_is_the_key_when_item_name_is_absent(target: S3Target, s3_client: Any, seaweed: Any, bucket: str) -> None:
    reply = await call(target, b"%PDF", method="upload_item", bucket_name=bucket, file_name="q1 report.pdf")
    assert reply.metadata["key"] == "q1 report.pdf"
    assert reply.metadata["link"] == f"{seaweed.endpoint}/{bucket}/q1%20report.pdf"
    assert (await s3_client.head_object(Bucket=bucket, Key="q1 report.pdf"))["ContentLength"] == 4


async def test_item_name_wins_over_file_name(target: S3Target, bucket: str) -> None:
    reply = await call(target, b"x", method="upload_item", bucket_name=bucket, item_name="key", file_name="file.txt")
    assert reply.metadata["key"] == "key"


def missing(key: str) -> str:
    return f"error parsing {key}, value of key {key} cannot be empty"


def missing_item_name(method: str) -> str:
    return f"item_name is required when using {method} , {missing('item_name')}"


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"method": "upload_item", "item_name": "k"}, missing("bucket_name")),
        ({"method": "upload_item", "bucket_name": "b"}, missing_item_name("upload_item") + " (or give file_name, which then names the object)"),
        ({"method": "get_item", "bucket_name": "b"}, missing_item_name("get_item")),
        ({"method": "delete_item_from_bucket", "bucket_name": "b", "item_name": ""}, missing_item_name("delete_item_from_bucket")),
        ({"method": "copy_item", "bucket_name": "b", "item_name": "k"}, missing("copy_source")),
        ({"method": "copy_item", "bucket_name": "b", "copy_source": "b/k"}, missing_item_name("copy_item")),
        ({"method": "head_item", "bucket_name": "b"}, missing_item_name("head_item")),
        ({"method": "presign_url", "bucket_name": "b"}, missing_item_name("presign_url")),
        ({"method": "list_bucket_items"}, missing("bucket_name")),
        ({"method": "create_bucket"}, missing("bucket_name")),
        ({"method": "delete_bucket"}, missing("bucket_name")),
        ({"method": "delete_all_items_from_bucket"}, missing("bucket_name")),
        ({"method": "get_item"}, f"{missing('bucket_name')}; {missing_item_name('get_item')}"),
    ],
)
async def test_a_missing_key_reads_exactly_as_kubemq_targets_words_it(target: S3Target, metadata: dict[str, str], expected: str) -> None:
    # kubemq-targets' own text for item_name (space before the comma included), its generic text for every other key.
    with pytest.raises(InvalidRequestError) as caught:
        await call(target, **metadata)
    assert str(caught.value) == expected
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"method": "delete_bucket", "bucket_name": "b", "force": "maybe"}, "error parsing force"),
        ({"method": "get_item", "bucket_name": "b", "item_name": "k", "decode": "hex"}, "error parsing decode"),
        ({"method": "get_item", "bucket_name": "b", "item_name": "k", "range": "0-10"}, "error parsing range"),
        ({"method": "upload_item", "bucket_name": "b", "item_name": "k", "if_none_match": "etag"}, "error parsing if_none_match"),
    ],
)
async def test_every_invalid_key_is_named(target: S3Target, metadata: dict[str, str], expected: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await call(target, **metadata)
    assert expected in str(caught.value)
    assert caught.value.retryable is False


@pytest.mark.parametrize(("spelling", "waits"), [("1", True), ("t", True), ("TRUE", True), ("True", True), ("yes", False), ("maybe", False), (" true", False), ("0", False)])
def test_wait_for_completion_is_read_as_kubemq_targets_reads_it(target: S3Target, spelling: str, waits: bool) -> None:
    """Go's strconv.ParseBool, and the default false for anything it cannot read: never refused."""
    call = target.resolve(Request(metadata={"method": "delete_item_from_bucket", "bucket_name": "b", "item_name": "k", "wait_for_completion": spelling}))
    assert call.metadata.wait_for_completion is waits


async def test_unknown_method_lists_every_method_in_order(target: S3Target) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await call(target, method="put_item")
    assert str(caught.value) == "invalid method type, method type should be one of the following: " + ", ".join(method.name for method in METHODS)


async def test_get_item_returns_the_raw_bytes_and_describes_the_object(target: S3Target, s3_client: Any, bucket: str) -> None:
    payload = bytes(range(256)) * 3
    await s3_client.put_object(Bucket=bucket, Key=KEY, Body=payload, ContentType="application/pdf")
    reply = await call(target, method="get_item", bucket_name=bucket, item_name=KEY)
    assert bytes(reply.data or b"") == payload
    assert reply.metadata["result"] == "ok" and reply.metadata["bucket"] == bucket and reply.metadata["key"] == KEY
    assert reply.metadata["content_type"] == "application/pdf"
    assert reply.metadata["content_length"] == str(len(payload))
    assert re.match(r'^"[0-9a-f]{32}"$', reply.metadata["etag"])
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", reply.metadata["last_modified"])


async def test_get_item_reads_a_range(target: S3Target, s3_client: Any, bucket: str) -> None:
    await s3_client.put_object(Bucket=bucket, Key="r", Body=b"0123456789")
    reply = await call(target, method="get_item", bucket_name=bucket, item_name="r", range="bytes=2-5")
    assert bytes(reply.data or b"") == b"2345" and reply.metadata["content_length"] == "4"
    with pytest.raises(TargetError) as caught:
        await call(target, method="get_item", bucket_name=bucket, item_name="r", range="bytes=100-")
    assert (caught.value.code, caught.value.status) == ("InvalidRange", 416)


async def test_get_item_of_a_missing_key_or_bucket(target: S3Target, bucket: str) -> None:
    with pytest.raises(TargetError) as caught:
        await call(target, method="get_item", bucket_name=bucket, item_name="missing")
    assert re.match(r"^NoSuchKey: The specified key does not exist\.\n\tstatus code: 404, request id: \S+, host id: \S*$", str(caught.value))
    assert (caught.value.code, caught.value.status, caught.value.retryable) == ("NoSuchKey", 404, False)
    with pytest.raises(TargetError) as caught:
        await call(target, method="get_item", bucket_name=unique_bucket_name(), item_name="missing")
    assert str(caught.value).startswith("NoSuchBucket: The specified bucket does not exist\n\tstatus code: 404")


@pytest.mark.parametrize(
    ("content_type", "payload", "expected"),
    [
        ("application/json", b'{"a": [1, 2]}', {"json": {"a": [1, 2]}}),
        ("application/json; charset=utf-8", b'{"a": 1}', {"json": {"a": 1}}),
        ("application/problem+json", b'{"title": "x"}', {"json": {"title": "x"}}),
        ("application/json", b"not json", {"text": "not json"}),
        ("text/csv", "a,b\nü,2".encode(), {"text": "a,b\nü,2"}),
        ("text/plain; charset=iso-8859-1", "café".encode("latin-1"), {"text": "café"}),
        ("application/xml", b"<a/>", {"text": "<a/>"}),
        ("application/atom+xml", b"<feed/>", {"text": "<feed/>"}),
        ("image/png", b"\x89PNG", {"base64": base64.b64encode(b"\x89PNG").decode()}),
        ("text/plain", b"\xff\xfe\x00bad", {"base64": base64.b64encode(b"\xff\xfe\x00bad").decode()}),
    ],
)
async def test_get_item_decode_auto_decides_on_the_media_type(target: S3Target, s3_client: Any, bucket: str, content_type: str, payload: bytes, expected: dict[str, Any]) -> None:
    await s3_client.put_object(Bucket=bucket, Key="obj", Body=payload, ContentType=content_type)
    reply = await call(target, method="get_item", bucket_name=bucket, item_name="obj", decode="auto")
    assert json.loads(reply.data or b"") == expected
    assert reply.metadata["content_type"] == content_type


@pytest.mark.parametrize(
    ("decode", "payload", "expected"),
    [("json", b"[1, 2]", {"json": [1, 2]}), ("text", b"plain", {"text": "plain"}), ("base64", b"\x00\x01", {"base64": "AAE="})],
)
async def test_get_item_explicit_decode(target: S3Target, s3_client: Any, bucket: str, decode: str, payload: bytes, expected: dict[str, Any]) -> None:
    await s3_client.put_object(Bucket=bucket, Key="obj", Body=payload, ContentType="application/octet-stream")
    reply = await call(target, method="get_item", bucket_name=bucket, item_name="obj", decode=decode)
    assert json.loads(reply.data or b"") == expected


@pytest.mark.parametrize(("decode", "payload", "message"), [("json", b"{oops", "is not valid JSON (decode=json)"), ("text", b"\xff\xfe", "is not valid utf-8 text")])
async def test_get_item_explicit_decode_that_does_not_fit_is_a_clear_error(target: S3Target, s3_client: Any, bucket: str, decode: str, payload: bytes, message: str) -> None:
    await s3_client.put_object(Bucket=bucket, Key="obj", Body=payload)
    with pytest.raises(InvalidRequestError, match=re.escape(f"object 'obj' {message}")):
        await call(target, method="get_item", bucket_name=bucket, item_name="obj", decode=decode)


async def test_versions_can_be_read_by_id(target: S3Target, s3_client: Any, bucket: str) -> None:
    await s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = await call(target, b"v1", method="upload_item", bucket_name=bucket, item_name="doc")
    await call(target, b"v2", method="upload_item", bucket_name=bucket, item_name="doc")
    version = first.metadata["version_id"]
    assert body(first)["VersionID"] == version
    old = await call(target, method="get_item", bucket_name=bucket, item_name="doc", version_id=version)
    assert bytes(old.data or b"") == b"v1" and old.metadata["version_id"] == version
    head = await call(target, method="head_item", bucket_name=bucket, item_name="doc", version_id=version)
    assert body(head)["VersionId"] == version


async def test_head_item_describes_without_the_body(target: S3Target, s3_client: Any, bucket: str) -> None:
    await s3_client.put_object(Bucket=bucket, Key="h", Body=b"12345", ContentType="text/csv", Metadata={"owner": "me"})
    reply = await call(target, method="head_item", bucket_name=bucket, item_name="h")
    output = body(reply)
    assert list(output)[:7] == ["ContentLength", "ContentType", "ETag", "LastModified", "Metadata", "StorageClass", "VersionId"]
    assert (output["ContentLength"], output["ContentType"], output["Metadata"], output["StorageClass"]) == (5, "text/csv", {"owner": "me"}, "STANDARD")
    assert reply.metadata["content_length"] == "5" and reply.metadata["content_type"] == "text/csv"
    assert reply.metadata["etag"] == output["ETag"]


async def test_head_item_tells_a_missing_key_from_a_missing_bucket(target: S3Target, bucket: str) -> None:
    # HEAD replies have no body; the 404 alone cannot say which is missing.
    with pytest.raises(TargetError) as caught:
        await call(target, method="head_item", bucket_name=bucket, item_name="missing")
    assert str(caught.value).startswith("NoSuchKey: The specified key does not exist.\n\tstatus code: 404, request id: ")
    with pytest.raises(TargetError) as caught:
        await call(target, method="head_item", bucket_name=unique_bucket_name(), item_name="missing")
    assert str(caught.value).startswith("NoSuchBucket: The specified bucket does not exist\n\tstatus code: 404")
    assert caught.value.code == "NoSuchBucket"


async def test_delete_item_waits_until_the_key_is_gone(target: S3Target, s3_client: Any, bucket: str) -> None:
    await s3_client.put_object(Bucket=bucket, Key=KEY, Body=b"x")
    reply = await call(target, method="delete_item_from_bucket", bucket_name=bucket, item_name=KEY, wait_for_completion="true")
    assert reply.metadata == {"result": "ok", "bucket": bucket, "key": KEY}
    assert body(reply) == {"DeleteMarker": None, "RequestCharged": None, "VersionId": None}
    with pytest.raises(ClientError):
        await s3_client.head_object(Bucket=bucket, Key=KEY)


async def test_deleting_a_missing_key_succeeds_as_on_s3(target: S3Target, bucket: str) -> None:
    reply = await call(target, method="delete_item_from_bucket", bucket_name=bucket, item_name="never-there")
    assert reply.metadata["result"] == "ok"


async def test_large_upload_goes_up_in_parts(make_target: MakeTarget, s3_client: Any, bucket: str) -> None:
    target = await make_target(multipart_threshold_mib="5", multipart_part_size_mib="5", multipart_concurrency="2")
    payload = bytes(range(256)) * (12 * MIB // 256)
    reply = await call(target, payload, method="upload_item", bucket_name=bucket, item_name="big", content_type="application/x-tar", meta_kind="archive")
    output = body(reply)
    assert output["UploadID"] != "" and output["ETag"].endswith('-3"')
    head = await s3_client.head_object(Bucket=bucket, Key="big")
    assert (head["ContentLength"], head["ContentType"], head["Metadata"]) == (len(payload), "application/x-tar", {"kind": "archive"})
    got = await call(target, method="get_item", bucket_name=bucket, item_name="big")
    assert got.data == payload
    # Conditional create holds for multipart uploads too, and the refused upload is aborted, not left behind.
    with pytest.raises(TargetError) as caught:
        await call(target, payload, method="upload_item", bucket_name=bucket, item_name="big", if_none_match="*")
    assert (caught.value.code, caught.value.status) == ("PreconditionFailed", 412)
    assert (await s3_client.list_multipart_uploads(Bucket=bucket)).get("Uploads", []) == []


class PartFails:
    """Multipart calls of a client whose second part upload fails."""

    def __init__(self) -> None:
        self.aborted: list[str] = []
        self.parts: list[int] = []

    async def create_multipart_upload(self, **_: Any) -> dict[str, str]:
        return {"UploadId": "u1"}

    async def upload_part(self, PartNumber: int, **_: Any) -> dict[str, str]:
        self.parts.append(PartNumber)
        if PartNumber == 2:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "boom"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "UploadPart")
        return {"ETag": f'"{PartNumber}"'}

    async def complete_multipart_upload(self, **_: Any) -> dict[str, str]:
        raise AssertionError("must not complete after a failed part")

    async def abort_multipart_upload(self, UploadId: str, **_: Any) -> None:
        self.aborted.append(UploadId)


async def test_a_failed_part_aborts_the_multipart_upload() -> None:
    client = PartFails()
    with pytest.raises(ClientError, match="boom"):
        await multipart_upload(client, "b", "k", Request(data=bytes(11 * MIB)), {}, 5 * MIB, 1)
    assert client.aborted == ["u1"] and 2 in client.parts
