"""Where kubemq-targets itself is wrong, kubemq-s3 keeps its fix: each deliberate difference, shown against kubemq-targets.

Every test sends the same request to both and states what each answers,
so the README's list of deliberate differences is checked, not only claimed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aioboto3
import pytest
import pytest_asyncio
from botocore.config import Config

from connector.s3 import EmbeddedS3
from devbroker import EmbeddedBroker
from tests.fixtures.anchor import Reply, Twins, assert_identical, twins

BUCKET = "deliberate"
OTHER = "deliberate-other"
MIB = 1024 * 1024


@pytest_asyncio.fixture(scope="module")
async def pair(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Twins]:
    # The proxies in front of the stores show what each side asked the store (no fault is ever armed).
    async with twins(broker, tmp_path_factory.mktemp("deliberate"), faulty=True) as running:
        for bucket in (BUCKET, OTHER):
            assert_identical(*await running.send({"method": "create_bucket", "bucket_name": bucket}))
        yield running


def data_of(reply: Reply) -> Any:
    """The decoded ``data`` of a normalized reply, parsed as JSON."""
    assert reply.envelope["is_error"] is False, reply
    return json.loads(reply.body.split(b'"data":"<data:', 1)[1].rsplit(b'>","is_error"', 1)[0])


def keys_listed(reply: Reply) -> list[str]:
    return [entry["Key"] for entry in data_of(reply)["Contents"] or []]


async def put_objects(store: EmbeddedS3, keys: list[str]) -> None:
    """Objects put behind both connectors' backs, 32 at a time."""
    session = aioboto3.Session(aws_access_key_id=store.access_key, aws_secret_access_key=store.secret_key, region_name="us-east-1")
    config = Config(s3={"addressing_style": "path"}, max_pool_connections=32)
    async with session.client("s3", endpoint_url=store.endpoint, config=config) as client:
        slots = asyncio.Semaphore(32)

        async def put(key: str) -> None:
            async with slots:
                await client.put_object(Bucket=BUCKET, Key=key, Body=b"")

        await asyncio.gather(*(put(key) for key in keys))


@pytest.mark.parametrize(("key", "go_sent"), [("a//b", "a/b"), ("/lead", "lead"), ("x/./y", "x/y"), ("x/../y", "y"), ("end/.", "end")])
async def test_a_key_is_sent_as_given_where_kubemq_targets_cleans_its_path(pair: Twins, key: str, go_sent: str) -> None:
    """aws-sdk-go runs ``path.Clean`` over the request path: kubemq-targets writes (and reads) another key than the one asked for.

    What each side asked the store is read at the proxy in front of it, so
    this holds whatever a store then makes of such a key (SeaweedFS folds
    ``//`` itself and refuses ``.`` segments; Amazon S3 keeps them as they are).
    """
    assert pair.faults is not None
    go_proxy, python_proxy = pair.faults
    go_proxy.requests.clear()
    python_proxy.requests.clear()
    await pair.send({"method": "upload_item", "bucket_name": BUCKET, "item_name": f"clean/{key}"}, b"x")
    assert ("PUT", f"/{BUCKET}/clean/{go_sent}") in go_proxy.requests
    assert ("PUT", f"/{BUCKET}/clean/{quote(key, safe='/~')}") in python_proxy.requests


@pytest.mark.parametrize("bucket", [".", "..", f"{OTHER}/.."])
async def test_a_bucket_name_that_cleans_into_another_path_is_refused(pair: Twins, bucket: str) -> None:
    """kubemq-targets cleans ``/<bucket>/joined-name`` to ``/joined-name``: it writes to a bucket named as the key; here nothing reaches the store."""
    assert pair.faults is not None
    go_proxy, python_proxy = pair.faults
    python_proxy.requests.clear()
    _, python = await pair.send({"method": "upload_item", "bucket_name": bucket, "item_name": "joined-name"}, b"x")
    assert go_proxy.requests[-1] == ("PUT", "/joined-name")
    assert python.envelope["error"] == f"All attempts fail:\n#1: error parsing bucket_name, {bucket!r} is not a bucket name: it holds '/' or is only dots"
    assert python_proxy.requests == []


async def test_get_item_of_a_dot_key_is_not_the_bucket_listing(pair: Twins) -> None:
    """kubemq-targets asks for ``/bucket/.``, cleaned to ``/bucket``: the listing's XML comes back as the object."""
    go, python = await pair.send({"method": "get_item", "bucket_name": BUCKET, "item_name": "."})
    assert b"<ListBucketResult" in go.body
    assert python.envelope["is_error"] is True and b"ListBucketResult" not in python.body


async def test_a_control_character_in_a_key_is_listed_as_it_is(pair: Twins) -> None:
    """Go's XML reader turns a control character of a listed key into U+FFFD; the key is listed as stored here."""
    key = "ctl-\x01-key"
    assert_identical(*await pair.send({"method": "upload_item", "bucket_name": BUCKET, "item_name": key}, b"x"))
    go, python = await pair.send({"method": "list_bucket_items", "bucket_name": BUCKET})
    assert "ctl-\ufffd-key" in keys_listed(go) and key not in keys_listed(go)
    assert key in keys_listed(python)
    await pair.send({"method": "delete_item_from_bucket", "bucket_name": BUCKET, "item_name": key})


async def test_copy_source_naming_only_a_bucket_copies_the_item_of_that_bucket(pair: Twins) -> None:
    """kubemq-targets' README calls copy_source the source bucket; it passes it to S3 as is, which cannot copy from it."""
    assert_identical(*await pair.send({"method": "upload_item", "bucket_name": BUCKET, "item_name": "same-name"}, b"source"))
    go, python = await pair.send({"method": "copy_item", "bucket_name": OTHER, "item_name": "same-name", "copy_source": BUCKET})
    assert go.envelope["is_error"] is True
    assert data_of(python)["CopyObjectResult"]["ETag"]


async def test_an_upload_above_five_mib_is_one_object_not_a_multipart_upload(pair: Twins) -> None:
    """kubemq-targets' uploader splits at 5 MiB; here one PutObject carries up to ``multipart_threshold_mib`` (16)."""
    go, python = await pair.send({"method": "upload_item", "bucket_name": BUCKET, "item_name": "six-mib"}, b"6" * (6 * MIB))
    assert data_of(go)["UploadID"] != "" and data_of(go)["ETag"].endswith('-2"')
    assert data_of(python)["UploadID"] == "" and "-" not in data_of(python)["ETag"]
    go, python = await pair.send({"method": "get_item", "bucket_name": BUCKET, "item_name": "six-mib"})
    assert_identical(go, python)


async def test_a_listing_of_more_than_1000_keys_is_complete(pair: Twins) -> None:
    """kubemq-targets lists one page and stops at 1,000 keys; here every page is followed (up to ``list_max_keys_cap``)."""
    keys = [f"many/{number:05d}" for number in range(1001)]
    await asyncio.gather(*(put_objects(store, keys) for store in pair.stores))
    go, python = await pair.send({"method": "list_bucket_items", "bucket_name": BUCKET})
    assert (len(keys_listed(go)), data_of(go)["IsTruncated"], data_of(go)["MaxKeys"]) == (1000, True, 1000)
    assert set(keys) <= set(keys_listed(python)) and data_of(python)["IsTruncated"] is False
    assert data_of(python)["MaxKeys"] == 100_000 and data_of(python)["KeyCount"] == len(keys_listed(python))
