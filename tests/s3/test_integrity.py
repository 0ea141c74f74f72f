"""End-to-end integrity on a real SeaweedFS: the sender's SHA-256 and MD5 are checked, a mismatch stores nothing."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

import aioboto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from bindings.errors import InvalidRequestError, TargetError
from connector.s3 import S3Target
from tests.fixtures.s3 import REGION
from tests.fixtures.s3_targets import MakeTarget
from tests.s3.support import body, call, keys_in

MIB = 1024 * 1024
DATA = b"exactly these bytes"


def sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


async def uploads_in_progress(s3_client: Any, bucket: str) -> list[Any]:
    return (await s3_client.list_multipart_uploads(Bucket=bucket)).get("Uploads", [])  # type: ignore[no-any-return]


async def test_matching_digests_store_the_object_and_the_store_keeps_its_checksum(target: S3Target, s3_client: Any, bucket: str) -> None:
    reply = await call(target, DATA, method="upload_item", bucket_name=bucket, item_name="a.txt", checksum_sha256=sha256(DATA), content_md5=md5(DATA))
    assert reply.metadata["checksum_sha256"] == sha256(DATA)
    assert await (await s3_client.get_object(Bucket=bucket, Key="a.txt"))["Body"].read() == DATA
    head = await call(target, method="head_item", bucket_name=bucket, item_name="a.txt")
    assert head.metadata["checksum_sha256"] == sha256(DATA) and body(head)["ChecksumSHA256"] == sha256(DATA)
    unasked = await call(target, method="head_item", bucket_name=bucket, item_name="a.txt", checksums="false")
    assert "checksum_sha256" not in unasked.metadata and "ChecksumSHA256" not in body(unasked)


@pytest.mark.parametrize(("key", "name", "algorithm"), [("checksum_sha256", "SHA-256", sha256), ("content_md5", "MD5", md5)])
async def test_a_wrong_digest_is_refused_and_nothing_is_stored(target: S3Target, s3_client: Any, bucket: str, key: str, name: str, algorithm: Any) -> None:
    damaged = b"exactly these bytez"
    with pytest.raises(TargetError) as caught:
        await call(target, damaged, method="upload_item", bucket_name=bucket, item_name="a.txt", **{key: algorithm(DATA)})
    assert (caught.value.code, caught.value.status, caught.value.retryable) == ("BadDigest", 400, False)
    assert str(caught.value) == (f"BadDigest: the {key} given ({algorithm(DATA)}) does not match the {name} of the 19 bytes received ({algorithm(damaged)}); nothing was stored")
    assert await keys_in(s3_client, bucket) == []


async def test_the_multipart_path_is_checked_as_a_whole_before_any_part_goes(make_target: MakeTarget, s3_client: Any, bucket: str) -> None:
    """Above the threshold the object goes up in parts, so no whole-object digest can go to S3: the connector checks it."""
    target = await make_target(multipart_threshold_mib="5", multipart_part_size_mib="5")
    payload = os.urandom(6 * MIB)
    with pytest.raises(TargetError, match=r"^BadDigest: the checksum_sha256 given"):
        await call(target, payload, method="upload_item", bucket_name=bucket, item_name="big.bin", checksum_sha256=sha256(payload[1:]))
    assert await keys_in(s3_client, bucket) == [] and await uploads_in_progress(s3_client, bucket) == []
    reply = await call(target, payload, method="upload_item", bucket_name=bucket, item_name="big.bin", checksum_sha256=sha256(payload), content_md5=md5(payload))
    assert body(reply)["UploadID"] != ""
    assert await (await s3_client.get_object(Bucket=bucket, Key="big.bin"))["Body"].read() == payload


async def test_a_damaged_part_is_refused_and_not_stored(target: S3Target, s3_client: Any, bucket: str) -> None:
    upload_id = (await call(target, method="create_multipart_upload", bucket_name=bucket, item_name="p.bin")).metadata["upload_id"]
    part = {"method": "upload_part", "bucket_name": bucket, "item_name": "p.bin", "upload_id": upload_id, "part_number": "1"}
    for digest in ({"checksum_sha256": sha256(DATA)}, {"content_md5": md5(DATA)}):
        with pytest.raises(TargetError, match=r"^BadDigest: "):
            await call(target, b"other bytes", **part, **digest)
    assert (await s3_client.list_parts(Bucket=bucket, Key="p.bin", UploadId=upload_id)).get("Parts", []) == []
    reply = await call(target, DATA, **part, checksum_sha256=sha256(DATA), content_md5=md5(DATA))
    assert reply.metadata["checksum_sha256"] == sha256(DATA)


async def test_parts_with_sha256_checksums_complete_into_an_object_with_a_composite_checksum(target: S3Target, s3_client: Any, bucket: str) -> None:
    """Amazon S3 takes part checksums only in an upload created for them (checksum_algorithm), and then wants them on completion."""
    created = await call(target, method="create_multipart_upload", bucket_name=bucket, item_name="c.bin", checksum_algorithm="SHA256")
    upload_id = created.metadata["upload_id"]
    assert body(created)["ChecksumAlgorithm"] == "SHA256"
    parts = [os.urandom(5 * MIB), b"tail"]
    listed = []
    for number, data in enumerate(parts, start=1):
        reply = await call(target, data, method="upload_part", bucket_name=bucket, item_name="c.bin", upload_id=upload_id, part_number=str(number), checksum_sha256=sha256(data))
        listed.append({"PartNumber": number, "ETag": reply.metadata["etag"], "ChecksumSHA256": reply.metadata["checksum_sha256"]})
    done = await call(target, json.dumps(listed).encode(), method="complete_multipart_upload", bucket_name=bucket, item_name="c.bin", upload_id=upload_id)
    assert done.metadata["checksum_sha256"].endswith("-2") and done.metadata["checksum_type"] == "COMPOSITE"
    assert await (await s3_client.get_object(Bucket=bucket, Key="c.bin"))["Body"].read() == b"".join(parts)


@pytest.mark.parametrize(("key", "value"), [("ContentMD5", md5(b"other")), ("ChecksumSHA256", sha256(b"other"))])
async def test_the_store_checks_the_digests_sent_along_too(seaweed: Any, s3_client: Any, bucket: str, key: str, value: str) -> None:
    """SeaweedFS 4.48 verifies both headers itself: the hop from the connector to the store is covered as well."""
    session = aioboto3.Session(aws_access_key_id=seaweed.access_key, aws_secret_access_key=seaweed.secret_key, region_name=REGION)
    once = Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"total_max_attempts": 1})  # botocore retries BadDigest
    async with session.client("s3", endpoint_url=seaweed.endpoint, config=once) as raw:
        with pytest.raises(ClientError) as caught:
            await raw.put_object(Bucket=bucket, Key="raw", Body=DATA, **{key: value})
    assert caught.value.response["Error"]["Code"] == "BadDigest"
    assert await keys_in(s3_client, bucket) == []


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"checksum_sha256": "not base64!"}, "error parsing checksum_sha256, must be the base64 of a 32-byte SHA-256 digest (44 characters)"),
        ({"checksum_sha256": md5(DATA)}, "error parsing checksum_sha256, must be the base64 of a 32-byte SHA-256 digest (44 characters)"),
        ({"content_md5": sha256(DATA)}, "error parsing content_md5, must be the base64 of a 16-byte MD5 digest (24 characters)"),
    ],
)
async def test_a_malformed_digest_is_refused_before_anything_is_read(target: S3Target, metadata: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await call(target, DATA, method="upload_item", bucket_name="b", item_name="k", **metadata)
    assert str(caught.value) == message
