"""Object tags and server-side encryption on a real SeaweedFS: set on upload, read back with head_item and the tag methods."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from bindings.errors import InvalidRequestError, TargetError
from connector.s3 import S3Properties, S3Target
from tests.fixtures.s3_targets import MakeTarget
from tests.s3.support import body, call, keys_in

KEY = "docs/q1.pdf"
# Every character S3 allows in tags (letters, digits, spaces, + - = . _ : / @); the `=` escaped, as the pair syntax needs.
TAGS = "team=billing,formula=a%3Db,path=x/y:z@w.v_1,note=two words+more"
TAG_SET = [("formula", "a=b"), ("note", "two words+more"), ("path", "x/y:z@w.v_1"), ("team", "billing")]


async def tag_set(s3_client: Any, bucket: str, key: str = KEY) -> list[tuple[str, str]]:
    return sorted((tag["Key"], tag["Value"]) for tag in (await s3_client.get_object_tagging(Bucket=bucket, Key=key))["TagSet"])


async def test_tags_given_on_upload_read_back_the_same_way(target: S3Target, s3_client: Any, bucket: str) -> None:
    await call(target, b"pdf", method="upload_item", bucket_name=bucket, item_name=KEY, tags=TAGS)
    assert await tag_set(s3_client, bucket) == TAG_SET
    reply = await call(target, method="get_item_tags", bucket_name=bucket, item_name=KEY)
    output = body(reply)
    assert list(output) == ["TagSet", "VersionId"] and sorted((tag["Key"], tag["Value"]) for tag in output["TagSet"]) == TAG_SET
    assert sorted(reply.metadata["tags"].split(",")) == sorted(TAGS.split(","))  # the reply's form can be sent back as is
    head = await call(target, method="head_item", bucket_name=bucket, item_name=KEY)
    assert body(head)["TagCount"] == 4


async def test_put_item_tags_replaces_the_tag_set_from_metadata_or_data_and_delete_removes_it(target: S3Target, s3_client: Any, bucket: str) -> None:
    await s3_client.put_object(Bucket=bucket, Key=KEY, Body=b"pdf", Tagging="old=1")
    reply = await call(target, method="put_item_tags", bucket_name=bucket, item_name=KEY, tags="stage=draft,owner=ann")
    assert reply.metadata == {"result": "ok", "bucket": bucket, "key": KEY, "tags": "stage=draft,owner=ann"} and body(reply) == {"VersionId": None}
    assert await tag_set(s3_client, bucket) == [("owner", "ann"), ("stage", "draft")]
    await call(target, b'{"stage": "final", "note": "a=b c"}', method="put_item_tags", bucket_name=bucket, item_name=KEY)
    assert await tag_set(s3_client, bucket) == [("note", "a=b c"), ("stage", "final")]
    deleted = await call(target, method="delete_item_tags", bucket_name=bucket, item_name=KEY)
    assert deleted.metadata == {"result": "ok", "bucket": bucket, "key": KEY} and body(deleted) == {"VersionId": None}
    assert await tag_set(s3_client, bucket) == []
    assert (await call(target, method="get_item_tags", bucket_name=bucket, item_name=KEY)).metadata["tags"] == ""


async def test_tags_of_a_missing_object_are_a_no_such_key_error(target: S3Target, bucket: str) -> None:
    for method in ("get_item_tags", "put_item_tags", "delete_item_tags"):
        with pytest.raises(TargetError) as caught:
            await call(target, method=method, bucket_name=bucket, item_name="missing.pdf", tags="a=1")
        assert caught.value.code == "NoSuchKey" and caught.value.status == 404


@pytest.mark.parametrize(
    ("metadata", "data", "message"),
    [
        ({"tags": "team"}, b"", "error parsing tags, 'team' is not key=value (tags are written key=value,key2=value2)"),
        ({"tags": "a=1,a=2"}, b"", "error parsing tags, tag 'a' is given twice"),
        ({"tags": ",".join(f"k{i}=v" for i in range(11))}, b"", "error parsing tags, 11 tags given, S3 allows at most 10 per object"),
        ({"tags": "=v"}, b"", "error parsing tags, tag key '' must be 1 to 128 characters long"),
        ({"tags": "k=" + "v" * 257}, b"", "error parsing tags, the value of tag 'k' is longer than 256 characters"),
        ({"tags": "k=%ff"}, b"", "error parsing tags, '%ff' holds %XX escapes that do not decode to UTF-8 text"),
        ({"method": "put_item_tags"}, b"", "put_item_tags needs the tags"),
        ({"method": "put_item_tags", "tags": "a=1"}, b'{"a": "1"}', "give the tags either in metadata tags or as data, not both"),
        ({"method": "put_item_tags"}, b'["a"]', "error parsing data, tags must be a JSON object of strings"),
        ({"method": "put_item_tags"}, b'{"a": 1}', "error parsing data, tags must be a JSON object of strings"),
    ],
)
async def test_invalid_tags_are_refused_before_any_s3_call(target: S3Target, metadata: dict[str, str], data: bytes, message: str) -> None:
    request = {"method": "upload_item", "bucket_name": "b", "item_name": KEY, **metadata}
    with pytest.raises(InvalidRequestError) as caught:
        await call(target, data, **request)
    assert str(caught.value).startswith(message)


async def test_encryption_per_request_and_by_target_default_shows_in_head_item(make_target: MakeTarget, target: S3Target, bucket: str) -> None:
    reply = await call(target, b"secret", method="upload_item", bucket_name=bucket, item_name="asked.txt", server_side_encryption="AES256")
    assert reply.metadata["server_side_encryption"] == "AES256"
    head = await call(target, method="head_item", bucket_name=bucket, item_name="asked.txt")
    assert head.metadata["server_side_encryption"] == "AES256" and body(head)["ServerSideEncryption"] == "AES256"
    plain = await call(target, method="head_item", bucket_name=bucket, item_name="asked.txt", checksums="false")
    assert plain.metadata["server_side_encryption"] == "AES256"
    encrypting = await make_target(server_side_encryption="AES256")
    await call(encrypting, b"secret", method="upload_item", bucket_name=bucket, item_name="default.txt")
    await call(encrypting, method="copy_item", bucket_name=bucket, item_name="copy.txt", copy_source=f"{bucket}/default.txt")
    for key in ("default.txt", "copy.txt"):
        assert (await call(target, method="head_item", bucket_name=bucket, item_name=key)).metadata["server_side_encryption"] == "AES256"
    await call(target, b"x", method="upload_item", bucket_name=bucket, item_name="none.txt")
    assert "server_side_encryption" not in (await call(target, method="head_item", bucket_name=bucket, item_name="none.txt")).metadata


async def test_a_request_naming_an_algorithm_replaces_the_default_key_too(make_target: MakeTarget, target: S3Target, bucket: str) -> None:
    kms_default = await make_target(server_side_encryption="aws:kms", sse_kms_key_id="alias/reports")
    await call(kms_default, b"x", method="upload_item", bucket_name=bucket, item_name="a.txt", server_side_encryption="AES256")
    head = await call(target, method="head_item", bucket_name=bucket, item_name="a.txt")
    assert head.metadata["server_side_encryption"] == "AES256" and "sse_kms_key_id" not in head.metadata


async def test_sse_kms_gets_seaweedfs_documented_refusal_without_a_kms(make_target: MakeTarget, s3_client: Any, bucket: str) -> None:
    """weed mini has no KMS configured: SeaweedFS refuses aws:kms data with a 500 InternalError ("KMS is not configured" in its log).

    It accepts CreateMultipartUpload with aws:kms and refuses each part.
    """
    target = await make_target(max_attempts="1")
    kms = {"bucket_name": bucket, "item_name": "k.txt", "sse_kms_key_id": "alias/reports"}
    with pytest.raises(TargetError) as refused:
        await call(target, b"x", method="upload_item", **kms)
    upload_id = (await call(target, method="create_multipart_upload", **kms)).metadata["upload_id"]
    with pytest.raises(TargetError) as part_refused:
        await call(target, b"x", method="upload_part", bucket_name=bucket, item_name="k.txt", upload_id=upload_id, part_number="1")
    for caught in (refused, part_refused):
        assert (caught.value.code, caught.value.status) == ("InternalError", 500)
    assert await keys_in(s3_client, bucket) == []


def test_a_kms_key_goes_only_with_aws_kms(s3_properties: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="sse_kms_key_id applies only to server_side_encryption=aws:kms, not AES256"):
        S3Properties(**s3_properties, server_side_encryption="AES256", sse_kms_key_id="alias/x")
    assert S3Properties(**s3_properties, sse_kms_key_id="alias/x").sse_kms_key_id == "alias/x"


async def test_a_request_pairing_aes256_with_a_kms_key_is_refused(target: S3Target) -> None:
    with pytest.raises(InvalidRequestError, match="sse_kms_key_id applies only to server_side_encryption=aws:kms, not AES256"):
        await call(target, b"x", method="upload_item", bucket_name="b", item_name="k", server_side_encryption="AES256", sse_kms_key_id="alias/x")
    with pytest.raises(InvalidRequestError, match="error parsing server_side_encryption"):
        await call(target, b"x", method="upload_item", bucket_name="b", item_name="k", server_side_encryption="aes256")
