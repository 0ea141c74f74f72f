"""upload_item, get_item and head_item options end to end; what the connector stores is read back with the raw client."""

from __future__ import annotations

import base64
import os
import re
import zlib
from typing import Any
from urllib.parse import quote

import pytest

from tests.e2e.support import MIB, RFC3339, Send, bucket_exists, ok, s3_failure, stored, target_properties
from tests.fixtures.kubemq import StartConnector, s3_binding_yaml


def crc32(data: bytes) -> str:
    """S3's ``ChecksumCRC32`` of ``data``: the big-endian CRC32, base64."""
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"


async def test_upload_item_stores_attributes_and_user_metadata(connector_send: Send, s3_client: Any, seaweed: Any, bucket: str) -> None:
    key = "reports/2024/Q1 überblick.json"
    reply = await connector_send(
        {
            "method": "upload_item",
            "bucket_name": bucket,
            "item_name": key,
            "content_type": "application/json",
            "content_disposition": 'attachment; filename="q1.json"',
            "cache_control": "max-age=600",
            "storage_class": "STANDARD_IA",
            "user_metadata": '{"team": "finance", "owner": "overridden"}',
            "meta_owner": "billing",
            "meta_source": "erp",
        },
        b'{"total": 3}',
    )
    output = ok(reply)
    head = await s3_client.head_object(Bucket=bucket, Key=key)
    assert (head["ContentType"], head["ContentDisposition"], head["CacheControl"]) == ("application/json", 'attachment; filename="q1.json"', "max-age=600")
    assert head["StorageClass"] == "STANDARD_IA"
    assert head["Metadata"] == {"team": "finance", "owner": "billing", "source": "erp"}  # meta_<name> wins over user_metadata
    link = f"{seaweed.endpoint}/{bucket}/{quote(key)}"
    expected = {"result": "ok", "bucket": bucket, "key": key, "etag": head["ETag"], "link": link, "checksum_crc32": crc32(b'{"total": 3}')}
    assert reply.metadata == expected  # the CRC32 botocore sends by default, as the store keeps it
    assert output == {"Location": link, "VersionID": None, "UploadID": "", "ETag": head["ETag"]}
    assert await stored(s3_client, bucket, key) == b'{"total": 3}'


async def test_if_none_match_refuses_the_second_write(connector_send: Send, s3_client: Any, bucket: str) -> None:
    once = {"method": "upload_item", "bucket_name": bucket, "item_name": "once.txt", "if_none_match": "*"}
    ok(await connector_send(once, b"first write wins"))
    code, status, _ = s3_failure(await connector_send(once, b"second write"))
    assert (code, status) == ("PreconditionFailed", 412)
    assert await stored(s3_client, bucket, "once.txt") == b"first write wins"


async def test_file_name_is_the_key_when_item_name_is_absent(connector_send: Send, s3_client: Any, seaweed: Any, bucket: str) -> None:
    reply = await connector_send({"method": "upload_item", "bucket_name": bucket, "file_name": "Q1 report.pdf"}, b"%PDF-1.7")
    assert reply.metadata["key"] == "Q1 report.pdf" and reply.metadata["link"] == f"{seaweed.endpoint}/{bucket}/Q1%20report.pdf"
    assert ok(reply)["Location"] == reply.metadata["link"]
    assert await stored(s3_client, bucket, "Q1 report.pdf") == b"%PDF-1.7"
    named = await connector_send({"method": "upload_item", "bucket_name": bucket, "item_name": "chosen.pdf", "file_name": "ignored.pdf"}, b"x")
    assert named.metadata["key"] == "chosen.pdf"


async def test_uploads_above_the_threshold_go_up_as_multipart(start_connector: StartConnector, connector_send: Send, s3_client: Any, seaweed: Any, bucket: str) -> None:
    channel = "query.aws.s3.e2e.multipart"
    small_parts = target_properties(multipart_threshold_mib="5", multipart_part_size_mib="5", multipart_concurrency="2")
    await start_connector(s3_binding_yaml(seaweed, channel, extra_target=small_parts))
    payload = os.urandom(12 * MIB)  # three 5 MiB parts: 5 + 5 + 2
    metadata = {"method": "upload_item", "bucket_name": bucket, "item_name": "big.tar", "content_type": "application/x-tar", "meta_kind": "archive"}
    output = ok(await connector_send(metadata, payload, channel=channel, timeout=60))
    head = await s3_client.head_object(Bucket=bucket, Key="big.tar")
    assert re.fullmatch(r'"[0-9a-f]{32}-3"', head["ETag"]) and output["ETag"] == head["ETag"] and output["UploadID"] != ""
    assert (head["ContentLength"], head["ContentType"], head["Metadata"]) == (len(payload), "application/x-tar", {"kind": "archive"})
    got = await connector_send({"method": "get_item", "bucket_name": bucket, "item_name": "big.tar"}, channel=channel, timeout=60)
    assert (got.is_error, got.data) == (False, payload)
    small = ok(await connector_send({**metadata, "item_name": "small.tar"}, payload[: 4 * MIB], channel=channel))
    assert small["UploadID"] == "" and "-" not in (await s3_client.head_object(Bucket=bucket, Key="small.tar"))["ETag"]


@pytest.mark.parametrize(
    ("content_type", "payload", "expected"),
    [
        ("application/json; charset=utf-8", '{"name": "Zoë", "n": [1, 2]}'.encode(), {"json": {"name": "Zoë", "n": [1, 2]}}),
        ("application/vnd.api+json", b'{"data": {"type": "articles", "id": "1"}}', {"json": {"data": {"type": "articles", "id": "1"}}}),
        ("text/plain", "héllo wörld\n".encode(), {"text": "héllo wörld\n"}),
        ("image/png", PNG, {"base64": base64.b64encode(PNG).decode()}),
    ],
)
async def test_get_item_decode_auto_follows_the_media_type(connector_send: Send, bucket: str, content_type: str, payload: bytes, expected: dict[str, Any]) -> None:
    item = {"bucket_name": bucket, "item_name": "obj"}
    ok(await connector_send({"method": "upload_item", **item, "content_type": content_type}, payload))
    reply = await connector_send({"method": "get_item", **item, "decode": "auto"})
    assert ok(reply) == expected
    assert reply.metadata["content_type"] == content_type and reply.metadata["content_length"] == str(len(payload))
    raw = await connector_send({"method": "get_item", **item})  # without decode: the bytes, as kubemq-targets
    assert raw.data == payload


@pytest.mark.parametrize(
    ("decode", "payload", "expected"),
    [
        ("text", b'{"looks": "like json"}', {"text": '{"looks": "like json"}'}),
        ("json", b"[1, 2, 3]", {"json": [1, 2, 3]}),
        ("base64", b"plain text", {"base64": "cGxhaW4gdGV4dA=="}),
    ],
)
async def test_get_item_explicit_decode_overrides_the_media_type(connector_send: Send, s3_client: Any, bucket: str, decode: str, payload: bytes, expected: Any) -> None:
    await s3_client.put_object(Bucket=bucket, Key="obj", Body=payload, ContentType="application/octet-stream")
    assert ok(await connector_send({"method": "get_item", "bucket_name": bucket, "item_name": "obj", "decode": decode})) == expected


async def test_get_item_explicit_json_on_text_that_is_not_json_fails_clearly(connector_send: Send, s3_client: Any, bucket: str) -> None:
    await s3_client.put_object(Bucket=bucket, Key="notes.txt", Body=b"{not json", ContentType="application/json")
    reply = await connector_send({"method": "get_item", "bucket_name": bucket, "item_name": "notes.txt", "decode": "json"})
    assert reply.is_error and "object 'notes.txt' is not valid JSON (decode=json)" in reply.error


@pytest.mark.parametrize(("range_", "expected"), [("bytes=2-5", b"2345"), ("bytes=7-", b"789"), ("bytes=-3", b"789")])
async def test_get_item_reads_a_byte_range(connector_send: Send, s3_client: Any, bucket: str, range_: str, expected: bytes) -> None:
    await s3_client.put_object(Bucket=bucket, Key="digits", Body=b"0123456789")
    reply = await connector_send({"method": "get_item", "bucket_name": bucket, "item_name": "digits", "range": range_})
    assert (reply.is_error, reply.data, reply.metadata["content_length"]) == (False, expected, str(len(expected)))


async def test_versions_are_read_by_id_and_force_delete_removes_them_all(connector_send: Send, s3_client: Any, bucket: str) -> None:
    """SeaweedFS supports bucket versioning, so this runs rather than being skipped."""
    await s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    item = {"bucket_name": bucket, "item_name": "doc.txt"}
    first = await connector_send({"method": "upload_item", **item}, b"version one")
    second = await connector_send({"method": "upload_item", **item}, b"version two")
    v1, v2 = first.metadata["version_id"], second.metadata["version_id"]
    assert v1 != v2 and ok(first)["VersionID"] == v1
    versions = (await s3_client.list_object_versions(Bucket=bucket))["Versions"]
    assert {v["VersionId"] for v in versions} == {v1, v2}
    old = await connector_send({"method": "get_item", **item, "version_id": v1})
    assert (old.data, old.metadata["version_id"]) == (b"version one", v1)
    latest = await connector_send({"method": "get_item", **item})
    assert (latest.data, latest.metadata["version_id"]) == (b"version two", v2)
    assert ok(await connector_send({"method": "head_item", **item, "version_id": v1}))["VersionId"] == v1
    ok(await connector_send({"method": "delete_item_from_bucket", **item}))  # a delete marker on top of both versions
    assert s3_failure(await connector_send({"method": "get_item", **item}))[:2] == ("NoSuchKey", 404)
    assert (await connector_send({"method": "get_item", **item, "version_id": v1})).data == b"version one"
    forced = await connector_send({"method": "delete_bucket", "bucket_name": bucket, "force": "true"})
    assert ok(forced) is None and forced.metadata["deleted"] == "3"  # two versions and the marker
    assert not await bucket_exists(s3_client, bucket)


async def test_head_item_describes_the_object_as_s3_does(connector_send: Send, s3_client: Any, bucket: str) -> None:
    await s3_client.put_object(Bucket=bucket, Key="h.csv", Body=b"a,b\n1,2\n", ContentType="text/csv", Metadata={"owner": "ops", "run": "42"})
    truth = await s3_client.head_object(Bucket=bucket, Key="h.csv")
    reply = await connector_send({"method": "head_item", "bucket_name": bucket, "item_name": "h.csv"})
    output = ok(reply)
    assert list(output)[:7] == ["ContentLength", "ContentType", "ETag", "LastModified", "Metadata", "StorageClass", "VersionId"]
    assert (output["ContentLength"], output["ContentType"], output["ETag"]) == (8, "text/csv", truth["ETag"])
    assert (output["Metadata"], output["StorageClass"], output["VersionId"]) == ({"owner": "ops", "run": "42"}, "STANDARD", None)
    assert RFC3339.match(output["LastModified"]) and output["LastModified"] == truth["LastModified"].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert reply.data is not None and b"a,b" not in reply.data  # described, not downloaded
    assert reply.metadata == {
        "result": "ok",
        "bucket": bucket,
        "key": "h.csv",
        "content_type": "text/csv",
        "content_length": "8",
        "etag": truth["ETag"],
        "last_modified": output["LastModified"],
        "checksum_crc32": crc32(b"a,b\n1,2\n"),  # stored checksums come along (ChecksumMode=ENABLED)
    }
