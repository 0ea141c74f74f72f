"""list_bucket_items options end to end, on a bucket of more than 1000 keys (more than one S3 page)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from tests.e2e.support import Send, drop_bucket, keys_in, ok, put_many
from tests.fixtures.s3 import unique_bucket_name

KEYS = sorted(
    [f"logs/{day:02d}/{n:03d}.log" for day in range(1, 13) for n in range(90)]
    + [f"invoices/2024/inv-{n:03d}.pdf" for n in range(40)]
    + ["logs/03/invoice-mixup.log", "readme.txt", "zeta/invoice-final.pdf"]
)
MATCHES = [key for key in KEYS if "invoice" in key]


@pytest_asyncio.fixture(scope="module")
async def listed(s3_client: Any) -> AsyncIterator[str]:
    """A bucket of 1,123 keys, created with the raw client and read-only for this module's tests."""
    name = unique_bucket_name("e2e-list")
    await s3_client.create_bucket(Bucket=name)
    await put_many(s3_client, name, KEYS, concurrency=48)
    yield name
    await drop_bucket(s3_client, name)


def keys_of(output: dict[str, Any]) -> list[str]:
    return [item["Key"] for item in output["Contents"] or []]


async def pages(connector_send: Send, metadata: dict[str, str]) -> list[dict[str, Any]]:
    """Every page of a paged listing, following ``NextContinuationToken`` until ``IsTruncated`` is false."""
    found: list[dict[str, Any]] = []
    token: dict[str, str] = {}
    while True:
        page = ok(await connector_send({"method": "list_bucket_items", **metadata, **token}))
        found.append(page)
        if not page["IsTruncated"]:
            assert page["NextContinuationToken"] is None
            return found
        token = {"continuation_token": page["NextContinuationToken"]}


async def test_every_page_is_listed_with_and_without_search(connector_send: Send, s3_client: Any, listed: str) -> None:
    assert await keys_in(s3_client, listed) == KEYS and len(KEYS) == 1123
    everything = await connector_send({"method": "list_bucket_items", "bucket_name": listed})
    output = ok(everything)
    assert keys_of(output) == KEYS and (output["KeyCount"], output["IsTruncated"]) == (1123, False)
    assert everything.metadata == {"result": "ok", "bucket": listed, "count": "1123"}
    # Matches sit on both S3 pages (one among the first 1000 keys, others after): search runs over every page.
    assert KEYS.index("logs/03/invoice-mixup.log") < 1000 < KEYS.index("zeta/invoice-final.pdf")
    searched = ok(await connector_send({"method": "list_bucket_items", "bucket_name": listed, "search": "invoice"}))
    assert keys_of(searched) == MATCHES and len(MATCHES) == 42 and searched["KeyCount"] == 42


async def test_prefix_and_delimiter_give_folders(connector_send: Send, listed: str) -> None:
    top = ok(await connector_send({"method": "list_bucket_items", "bucket_name": listed, "delimiter": "/"}))
    assert top["CommonPrefixes"] == [{"Prefix": "invoices/"}, {"Prefix": "logs/"}, {"Prefix": "zeta/"}]
    assert keys_of(top) == ["readme.txt"] and top["Delimiter"] == "/"
    days = ok(await connector_send({"method": "list_bucket_items", "bucket_name": listed, "prefix": "logs/", "delimiter": "/"}))
    assert days["CommonPrefixes"] == [{"Prefix": f"logs/{day:02d}/"} for day in range(1, 13)] and days["Contents"] is None
    one_day = ok(await connector_send({"method": "list_bucket_items", "bucket_name": listed, "prefix": "logs/03/"}))
    assert keys_of(one_day) == [key for key in KEYS if key.startswith("logs/03/")] and one_day["Prefix"] == "logs/03/"


async def test_max_keys_pages_with_continuation_tokens(connector_send: Send, listed: str) -> None:
    found = await pages(connector_send, {"bucket_name": listed, "max_keys": "400"})
    assert [len(keys_of(page)) for page in found] == [400, 400, 323]
    assert [key for page in found for key in keys_of(page)] == KEYS
    assert all(page["MaxKeys"] == 400 for page in found) and found[1]["ContinuationToken"] == found[0]["NextContinuationToken"]


async def test_search_pages_with_continuation_tokens(connector_send: Send, listed: str) -> None:
    found = await pages(connector_send, {"bucket_name": listed, "search": "invoice", "max_keys": "10"})
    assert [len(keys_of(page)) for page in found] == [10, 10, 10, 10, 2]
    assert [key for page in found for key in keys_of(page)] == MATCHES


async def test_start_after_and_all(connector_send: Send, listed: str) -> None:
    after_few = ok(await connector_send({"method": "list_bucket_items", "bucket_name": listed, "start_after": "logs/11/000.log"}))
    assert keys_of(after_few) == [key for key in KEYS if key > "logs/11/000.log"] and after_few["StartAfter"] == "logs/11/000.log"
    # With a paging key and no max_keys, one S3 page (1000 keys); all=true follows every page from the same point.
    start = "invoices/2024/inv-010.pdf"
    rest = [key for key in KEYS if key > start]
    one_page = ok(await connector_send({"method": "list_bucket_items", "bucket_name": listed, "start_after": start}))
    assert keys_of(one_page) == rest[:1000] and one_page["IsTruncated"] is True and len(rest) > 1000
    every_page = ok(await connector_send({"method": "list_bucket_items", "bucket_name": listed, "start_after": start, "all": "true"}))
    assert keys_of(every_page) == rest and every_page["IsTruncated"] is False


async def test_all_continues_from_a_token_to_the_end(connector_send: Send, listed: str) -> None:
    first = ok(await connector_send({"method": "list_bucket_items", "bucket_name": listed, "max_keys": "100"}))
    token = first["NextContinuationToken"]
    rest = ok(await connector_send({"method": "list_bucket_items", "bucket_name": listed, "continuation_token": token, "all": "true"}))
    assert keys_of(first) + keys_of(rest) == KEYS and rest["ContinuationToken"] == token
    conflict = await connector_send({"method": "list_bucket_items", "bucket_name": listed, "max_keys": "5", "all": "true"})
    assert conflict.is_error and "max_keys and all=true cannot be combined" in conflict.error
