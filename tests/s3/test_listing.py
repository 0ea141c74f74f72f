"""list_bucket_items on a bucket of more than 1000 keys: every page, the cap, one-page paging, folders, search."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from bindings.errors import InvalidRequestError, TargetError
from connector.s3 import S3Target
from connector.s3.results import LIST_OBJECTS
from tests.fixtures.s3 import empty_bucket, unique_bucket_name
from tests.fixtures.s3_targets import MakeTarget
from tests.s3.support import body, call, put_many

KEYS = sorted([f"a/{i:04d}" for i in range(1100)] + [f"b/x{i:02d}" for i in range(90)] + [f"b/invoice-{i}" for i in range(7)] + ["a/0500-invoice", "invoice.txt", "top.txt", "zz/invoice/q1"])
INVOICES = [key for key in KEYS if "invoice" in key]
# kubemq-targets marshals aws-sdk-go's ListObjectsV2Output: every field, alphabetical, from CommonPrefixes to StartAfter.
GO_FIELDS = list(LIST_OBJECTS.fields)


@pytest_asyncio.fixture(scope="module")
async def big_bucket(s3_client: Any) -> AsyncIterator[str]:
    """A bucket of 1,201 keys, shared read-only by this module's tests."""
    name = unique_bucket_name("list")
    await s3_client.create_bucket(Bucket=name)
    await put_many(s3_client, name, KEYS)
    yield name
    await empty_bucket(s3_client, name)
    await s3_client.delete_bucket(Bucket=name)


def keys_of(output: dict[str, Any]) -> list[str]:
    return [item["Key"] for item in output["Contents"] or []]


async def test_without_paging_keys_every_page_is_followed(target: S3Target, big_bucket: str) -> None:
    reply = await call(target, method="list_bucket_items", bucket_name=big_bucket)
    output = body(reply)
    assert list(output) == GO_FIELDS and sorted(GO_FIELDS) == GO_FIELDS and len(GO_FIELDS) == 12
    assert keys_of(output) == KEYS and len(KEYS) > 1000
    assert (output["KeyCount"], output["IsTruncated"], output["NextContinuationToken"]) == (len(KEYS), False, None)
    assert (output["Name"], output["Prefix"], output["MaxKeys"], output["EncodingType"], output["CommonPrefixes"]) == (big_bucket, "", 100000, None, None)
    assert list(output["Contents"][0]) == ["ETag", "Key", "LastModified", "Owner", "Size", "StorageClass"]
    assert reply.metadata == {"result": "ok", "bucket": big_bucket, "count": str(len(KEYS))}


async def test_a_listing_stopped_by_the_cap_says_so_and_can_be_continued(make_target: MakeTarget, big_bucket: str) -> None:
    target = await make_target(list_max_keys_cap="250")
    first = body(await call(target, method="list_bucket_items", bucket_name=big_bucket))
    assert keys_of(first) == KEYS[:250] and first["IsTruncated"] is True and first["MaxKeys"] == 250
    second = body(await call(target, method="list_bucket_items", bucket_name=big_bucket, continuation_token=first["NextContinuationToken"], all="true"))
    assert keys_of(second) == KEYS[250:500] and second["ContinuationToken"] == first["NextContinuationToken"]
    with pytest.raises(InvalidRequestError, match=r"max_keys 251 is above this target's list_max_keys_cap \(250\)"):
        await call(target, method="list_bucket_items", bucket_name=big_bucket, max_keys="251")


async def test_paging_one_page_at_a_time(target: S3Target, big_bucket: str) -> None:
    first = body(await call(target, method="list_bucket_items", bucket_name=big_bucket, max_keys="100"))
    assert keys_of(first) == KEYS[:100] and first["IsTruncated"] is True and first["MaxKeys"] == 100
    second = body(await call(target, method="list_bucket_items", bucket_name=big_bucket, continuation_token=first["NextContinuationToken"]))
    assert keys_of(second) == KEYS[100:1100] and second["MaxKeys"] == 1000 and second["IsTruncated"] is True
    rest = body(await call(target, method="list_bucket_items", bucket_name=big_bucket, continuation_token=second["NextContinuationToken"], max_keys="1000"))
    assert keys_of(rest) == KEYS[1100:] and rest["IsTruncated"] is False and rest["NextContinuationToken"] is None


async def test_start_after(target: S3Target, big_bucket: str) -> None:
    output = body(await call(target, method="list_bucket_items", bucket_name=big_bucket, start_after="b/x88"))
    assert keys_of(output) == [key for key in KEYS if key > "b/x88"] and output["StartAfter"] == "b/x88"


async def test_prefix_and_delimiter_show_folders(target: S3Target, big_bucket: str) -> None:
    top = body(await call(target, method="list_bucket_items", bucket_name=big_bucket, delimiter="/"))
    assert top["CommonPrefixes"] == [{"Prefix": "a/"}, {"Prefix": "b/"}, {"Prefix": "zz/"}]
    assert keys_of(top) == ["invoice.txt", "top.txt"] and top["KeyCount"] == 5 and top["Delimiter"] == "/"
    inside = body(await call(target, method="list_bucket_items", bucket_name=big_bucket, prefix="b/", delimiter="/"))
    assert keys_of(inside) == [key for key in KEYS if key.startswith("b/")] and inside["CommonPrefixes"] is None


async def test_search_filters_keys_while_paging(target: S3Target, big_bucket: str) -> None:
    output = body(await call(target, method="list_bucket_items", bucket_name=big_bucket, search="invoice"))
    assert keys_of(output) == INVOICES and output["IsTruncated"] is False


async def test_search_pages_resume_exactly_after_the_last_match(target: S3Target, big_bucket: str) -> None:
    seen: list[str] = []
    token: str | None = None
    for _ in range(10):
        extra = {"continuation_token": token} if token else {}
        page = body(await call(target, method="list_bucket_items", bucket_name=big_bucket, search="invoice", max_keys="3", **extra))
        assert len(keys_of(page)) <= 3
        seen += keys_of(page)
        token = page["NextContinuationToken"]
        if not page["IsTruncated"]:
            break
    assert seen == INVOICES


async def test_a_search_stopped_by_the_scan_cap_says_so_and_can_be_continued(make_target: MakeTarget, big_bucket: str) -> None:
    # 250 keys read per request: the first reply has no match yet, but says where to go on from.
    target = await make_target(list_search_scan_cap="250")
    first = body(await call(target, method="list_bucket_items", bucket_name=big_bucket, search="invoice"))
    assert (first["Contents"], first["KeyCount"], first["IsTruncated"]) == (None, 0, True) and first["NextContinuationToken"]
    seen, token, replies = [], first["NextContinuationToken"], 1
    while token:
        page = body(await call(target, method="list_bucket_items", bucket_name=big_bucket, search="invoice", continuation_token=token, all="true"))
        seen += keys_of(page)
        token, replies = page["NextContinuationToken"], replies + 1
        assert page["IsTruncated"] is (token is not None)
    assert seen == INVOICES and replies == 5  # 1,201 keys, 250 at a time


async def test_search_over_folders(target: S3Target, big_bucket: str) -> None:
    output = body(await call(target, method="list_bucket_items", bucket_name=big_bucket, delimiter="/", search="z"))
    assert output["CommonPrefixes"] == [{"Prefix": "zz/"}] and keys_of(output) == []


async def test_max_keys_and_all_conflict(target: S3Target, big_bucket: str) -> None:
    with pytest.raises(InvalidRequestError, match="max_keys and all=true cannot be combined"):
        await call(target, method="list_bucket_items", bucket_name=big_bucket, max_keys="5", all="true")


async def test_an_empty_bucket_lists_null_contents_as_kubemq_targets(target: S3Target, bucket: str) -> None:
    output = body(await call(target, method="list_bucket_items", bucket_name=bucket))
    assert (output["Contents"], output["KeyCount"], output["IsTruncated"]) == (None, 0, False)


async def test_listing_a_missing_bucket(target: S3Target) -> None:
    with pytest.raises(TargetError) as caught:
        await call(target, method="list_bucket_items", bucket_name=unique_bucket_name())
    assert str(caught.value).startswith("NoSuchBucket: The specified bucket does not exist\n\tstatus code: 404")
