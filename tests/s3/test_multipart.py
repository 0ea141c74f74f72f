"""Multipart uploads over the bus on a real SeaweedFS: create, parts, complete (with or without a part list), abort, listings, presigned parts."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import ClientError

from bindings.errors import InvalidRequestError, TargetError
from connector.s3 import S3Target
from tests.s3.support import body, call

MIB = 1024 * 1024
KEY = "videos/a b ü.mp4"
# S3's minimum part size is 5 MiB for every part but the last.
PARTS = [os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(1000)]


async def create(target: S3Target, bucket: str, **metadata: str) -> str:
    reply = await call(target, method="create_multipart_upload", bucket_name=bucket, item_name=KEY, **metadata)
    assert reply.metadata["bucket"] == bucket and reply.metadata["key"] == KEY
    output = body(reply)
    assert (output["Bucket"], output["Key"], output["UploadId"]) == (bucket, KEY, reply.metadata["upload_id"])
    return reply.metadata["upload_id"]


async def put_part(target: S3Target, bucket: str, upload_id: str, number: int, data: bytes, **metadata: str) -> str:
    reply = await call(target, data, method="upload_part", bucket_name=bucket, item_name=KEY, upload_id=upload_id, part_number=str(number), **metadata)
    assert reply.metadata["part_number"] == str(number) and reply.metadata["upload_id"] == upload_id
    assert body(reply)["ETag"] == reply.metadata["etag"]
    return reply.metadata["etag"]


async def complete(target: S3Target, bucket: str, upload_id: str, parts: list[dict[str, Any]] | None = None) -> Any:
    data = json.dumps(parts).encode() if parts is not None else b""
    return await call(target, data, method="complete_multipart_upload", bucket_name=bucket, item_name=KEY, upload_id=upload_id)


async def stored(s3_client: Any, bucket: str, key: str = KEY) -> bytes:
    return await (await s3_client.get_object(Bucket=bucket, Key=key))["Body"].read()  # type: ignore[no-any-return]


async def in_progress(s3_client: Any, bucket: str) -> list[str]:
    return [upload["UploadId"] for upload in (await s3_client.list_multipart_uploads(Bucket=bucket)).get("Uploads", [])]


async def test_three_parts_completed_with_every_uploaded_part_keep_the_upload_attributes(target: S3Target, s3_client: Any, seaweed: Any, bucket: str) -> None:
    upload_id = await create(target, bucket, content_type="video/mp4", meta_owner="media", tags="team=media,note=a%2Cb", server_side_encryption="AES256", cache_control="no-cache")
    for number, data in enumerate(PARTS, start=1):
        await put_part(target, bucket, upload_id, number, data)
    reply = await complete(target, bucket, upload_id)
    link = f"{seaweed.endpoint}/{bucket}/videos/a%20b%20%C3%BC.mp4"
    output = body(reply)
    assert list(output) == ["Location", "VersionID", "UploadID", "ETag"]  # upload_item's reply: a finished upload
    assert (output["Location"], output["UploadID"]) == (link, upload_id) and output["ETag"].endswith('-3"')
    assert (reply.metadata["link"], reply.metadata["etag"]) == (link, output["ETag"])
    assert await stored(s3_client, bucket) == b"".join(PARTS)
    head = await s3_client.head_object(Bucket=bucket, Key=KEY)
    assert (head["ContentType"], head["Metadata"], head["CacheControl"], head["ServerSideEncryption"]) == ("video/mp4", {"owner": "media"}, "no-cache", "AES256")
    tags = (await s3_client.get_object_tagging(Bucket=bucket, Key=KEY))["TagSet"]
    assert sorted((tag["Key"], tag["Value"]) for tag in tags) == [("note", "a,b"), ("team", "media")]
    assert await in_progress(s3_client, bucket) == []


async def test_an_explicit_part_list_is_taken_in_part_number_order_and_a_part_sent_again_replaces_it(target: S3Target, s3_client: Any, bucket: str) -> None:
    upload_id = await create(target, bucket)
    etags = {number: await put_part(target, bucket, upload_id, number, data) for number, data in reversed(list(enumerate(PARTS, start=1)))}
    replacement = os.urandom(5 * MIB)
    etags[2] = await put_part(target, bucket, upload_id, 2, replacement)  # a retried part, with other bytes
    listed = [{"ETag": etags[number], "PartNumber": number, "Size": 0} for number in (3, 1, 2)]  # any order; extra fields ignored
    reply = await complete(target, bucket, upload_id, listed)
    assert body(reply)["ETag"].endswith('-3"')
    assert await stored(s3_client, bucket) == PARTS[0] + replacement + PARTS[2]


async def test_completing_with_every_uploaded_part_takes_the_newest_upload_of_a_part(target: S3Target, s3_client: Any, bucket: str) -> None:
    """S3 replaces a part sent again; SeaweedFS keeps both and lists both, so the newest is taken."""
    upload_id = await create(target, bucket)
    await put_part(target, bucket, upload_id, 1, PARTS[0])
    await put_part(target, bucket, upload_id, 2, b"first try")
    await asyncio.sleep(1.05)  # listings give part times in whole seconds
    await put_part(target, bucket, upload_id, 2, b"second try")
    await complete(target, bucket, upload_id)
    assert await stored(s3_client, bucket) == PARTS[0] + b"second try"


async def test_two_uploads_of_a_part_within_one_second_are_not_guessed_between(target: S3Target, s3_client: Any, bucket: str) -> None:
    upload_id = await create(target, bucket)
    await asyncio.sleep(1.0 - time.time() % 1.0 + 0.02)  # both uploads below fall within the same second
    first = await put_part(target, bucket, upload_id, 1, b"one")
    second = await put_part(target, bucket, upload_id, 1, b"two")
    with pytest.raises(TargetError) as caught:
        await complete(target, bucket, upload_id)
    assert caught.value.code == "AmbiguousPart" and not caught.value.retryable
    assert str(caught.value).startswith(f"AmbiguousPart: part 1 of upload {upload_id} is listed 2 times") and first in str(caught.value) and second in str(caught.value)
    await complete(target, bucket, upload_id, [{"PartNumber": 1, "ETag": second}])  # the way out: name the part
    assert await stored(s3_client, bucket) == b"two"


async def test_an_aborted_upload_is_gone_with_its_parts(target: S3Target, s3_client: Any, bucket: str) -> None:
    upload_id = await create(target, bucket)
    await put_part(target, bucket, upload_id, 1, b"part")
    reply = await call(target, method="abort_multipart_upload", bucket_name=bucket, item_name=KEY, upload_id=upload_id)
    assert reply.data is None and reply.metadata == {"result": "ok", "bucket": bucket, "key": KEY, "upload_id": upload_id}
    assert await in_progress(s3_client, bucket) == []
    for method in ("list_parts", "complete_multipart_upload"):
        with pytest.raises(TargetError) as caught:
            await call(target, method=method, bucket_name=bucket, item_name=KEY, upload_id=upload_id)
        assert caught.value.code == "NoSuchUpload" and caught.value.status == 404
    # Aborting again: S3 answers NoSuchUpload, SeaweedFS succeeds; either way nothing is left.
    with pytest.raises(ClientError):
        await s3_client.head_object(Bucket=bucket, Key=KEY)


async def test_list_parts_gives_every_part_or_one_page_at_a_time(target: S3Target, bucket: str) -> None:
    upload_id = await create(target, bucket)
    etags = [await put_part(target, bucket, upload_id, number, f"part {number}".encode()) for number in (1, 2, 3)]
    every = await call(target, method="list_parts", bucket_name=bucket, item_name=KEY, upload_id=upload_id)
    output = body(every)
    assert every.metadata == {"result": "ok", "bucket": bucket, "key": KEY, "upload_id": upload_id, "count": "3"}
    assert [(part["PartNumber"], part["ETag"], part["Size"]) for part in output["Parts"]] == [(1, etags[0], 6), (2, etags[1], 6), (3, etags[2], 6)]
    assert list(output["Parts"][0])[:8] == ["ChecksumCRC32", "ChecksumCRC32C", "ChecksumSHA1", "ChecksumSHA256", "ETag", "LastModified", "PartNumber", "Size"]
    assert (output["IsTruncated"], output["UploadId"], output["Key"], output["Bucket"]) == (False, upload_id, KEY, bucket)
    first = body(await call(target, method="list_parts", bucket_name=bucket, item_name=KEY, upload_id=upload_id, max_parts="2"))
    assert [part["PartNumber"] for part in first["Parts"]] == [1, 2] and first["IsTruncated"] is True and first["MaxParts"] == 2
    marker = str(first["NextPartNumberMarker"])
    rest = body(await call(target, method="list_parts", bucket_name=bucket, item_name=KEY, upload_id=upload_id, part_number_marker=marker))
    assert [part["PartNumber"] for part in rest["Parts"]] == [3] and rest["IsTruncated"] is False and rest["PartNumberMarker"] == 2


async def test_list_multipart_uploads_pages_with_the_markers_of_the_previous_reply(target: S3Target, bucket: str) -> None:
    started = {await create(target, bucket) for _ in range(3)}
    other = (await call(target, method="create_multipart_upload", bucket_name=bucket, item_name="elsewhere/x")).metadata["upload_id"]
    every = await call(target, method="list_multipart_uploads", bucket_name=bucket, prefix="videos/")
    output = body(every)
    assert every.metadata == {"result": "ok", "bucket": bucket, "count": "3"}
    assert {upload["UploadId"] for upload in output["Uploads"]} == started and output["IsTruncated"] is False
    assert list(output["Uploads"][0])[:7] == ["ChecksumAlgorithm", "Initiated", "Initiator", "Key", "Owner", "StorageClass", "UploadId"]
    seen: list[str] = []
    markers: dict[str, str] = {}
    for _ in range(3):
        page = body(await call(target, method="list_multipart_uploads", bucket_name=bucket, prefix="videos/", max_uploads="2", **markers))
        seen += [upload["UploadId"] for upload in page["Uploads"] or []]
        if not page["IsTruncated"]:
            break
        # SeaweedFS gives only NextUploadIdMarker; S3 gives NextKeyMarker too.
        markers = {name: page[field] for name, field in (("key_marker", "NextKeyMarker"), ("upload_id_marker", "NextUploadIdMarker")) if page[field]}
    assert sorted(seen) == sorted(started) and len(seen) == 3
    everything = body(await call(target, method="list_multipart_uploads", bucket_name=bucket))
    assert {upload["UploadId"] for upload in everything["Uploads"]} == started | {other}


async def test_a_part_put_to_a_presigned_url_completes_through_the_target(target: S3Target, s3_client: Any, bucket: str) -> None:
    upload_id = await create(target, bucket)
    etags = []
    async with aiohttp.ClientSession() as http:
        for number, data in enumerate(PARTS[1:], start=1):
            signed = body(await call(target, method="presign_url", bucket_name=bucket, item_name=KEY, operation="upload_part", upload_id=upload_id, part_number=str(number)))
            assert signed["method"] == "PUT" and f"uploadId={upload_id}" in signed["url"] and f"partNumber={number}" in signed["url"]
            async with http.put(signed["url"], data=data) as response:
                assert response.status == 200
                etags.append(response.headers["ETag"])
    await complete(target, bucket, upload_id, [{"PartNumber": number, "ETag": etag} for number, etag in enumerate(etags, start=1)])
    assert await stored(s3_client, bucket) == PARTS[1] + PARTS[2]


@pytest.mark.parametrize(
    ("metadata", "data", "message"),
    [
        ({"method": "upload_part", "upload_id": "u", "part_number": "0"}, b"x", "error parsing part_number, Input should be greater than or equal to 1"),
        ({"method": "upload_part", "upload_id": "u", "part_number": "10001"}, b"x", "error parsing part_number, Input should be less than or equal to 10000"),
        ({"method": "upload_part", "part_number": "1"}, b"x", "error parsing upload_id, value of key upload_id cannot be empty"),
        ({"method": "complete_multipart_upload", "upload_id": "u"}, b"{}", 'a JSON array of parts, [{"PartNumber": 1, "ETag": "..."}, ...] is expected'),
        ({"method": "complete_multipart_upload", "upload_id": "u"}, b'[{"PartNumber": 1}]', "0.ETag: Field required"),
        ({"method": "complete_multipart_upload", "upload_id": "u"}, b"[]", "the part list is empty"),
        (
            {"method": "complete_multipart_upload", "upload_id": "u"},
            b'[{"PartNumber": 2, "ETag": "a"}, {"PartNumber": 2, "ETag": "b"}]',
            "part 2 is listed more than once",
        ),
        ({"method": "list_parts", "upload_id": "u", "max_parts": "0"}, b"", "error parsing max_parts"),
        ({"method": "presign_url", "operation": "upload_part", "part_number": "1"}, b"", "operation=upload_part needs upload_id"),
        ({"method": "presign_url", "operation": "upload_part"}, b"", "operation=upload_part needs upload_id and part_number"),
        ({"method": "presign_url", "operation": "put", "upload_id": "u"}, b"", "upload_id and part_number apply only to operation=upload_part"),
    ],
)
async def test_invalid_multipart_requests_are_refused_naming_the_problem(target: S3Target, metadata: dict[str, str], data: bytes, message: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await call(target, data, bucket_name="b", item_name=KEY, **metadata)
    assert message in str(caught.value) and not caught.value.retryable


async def test_completing_an_upload_without_parts_says_so(target: S3Target, bucket: str) -> None:
    upload_id = await create(target, bucket)
    with pytest.raises(InvalidRequestError, match=f"upload {upload_id} has no parts to complete with"):
        await complete(target, bucket, upload_id)


async def test_parts_below_s3s_minimum_size_are_refused_by_the_store_on_completion(target: S3Target, s3_client: Any, bucket: str) -> None:
    upload_id = await create(target, bucket)
    for number in (1, 2):
        await put_part(target, bucket, upload_id, number, b"tiny")
    with pytest.raises(TargetError) as caught:
        await complete(target, bucket, upload_id)
    assert caught.value.code == "EntityTooSmall" and caught.value.status == 400
    assert await in_progress(s3_client, bucket) == [upload_id]  # still there: send bigger parts, or abort
