"""presign_url end to end: the URL the connector hands out is used by aiohttp alone (no AWS code, no credentials)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.e2e.support import RFC3339, Send, http, keys_in, ok, stored

KEY = "shared/report ü.txt"


async def presign(connector_send: Send, bucket: str, **metadata: str) -> dict[str, Any]:
    reply = await connector_send({"method": "presign_url", "bucket_name": bucket, "item_name": KEY, **metadata})
    assert reply.metadata == {"result": "ok", "bucket": bucket, "key": KEY}
    return ok(reply)  # type: ignore[no-any-return]


async def test_a_get_url_downloads_the_object(connector_send: Send, s3_client: Any, bucket: str) -> None:
    await s3_client.put_object(Bucket=bucket, Key=KEY, Body=b"for anyone holding the link")
    signed = await presign(connector_send, bucket, expires_seconds="600")
    assert signed["method"] == "GET" and list(signed) == ["url", "method", "expires_at"] and RFC3339.match(signed["expires_at"])
    expires_at = datetime.strptime(signed["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(expires_at - (datetime.now(UTC) + timedelta(seconds=600))) < timedelta(seconds=5)
    assert await http("GET", signed["url"]) == (200, b"for anyone holding the link")


async def test_a_put_url_uploads_with_the_signed_content_type(connector_send: Send, s3_client: Any, bucket: str) -> None:
    signed = await presign(connector_send, bucket, operation="put", content_type="image/png")
    assert signed["method"] == "PUT" and signed["headers"] == {"Content-Type": "image/png"}
    status, _ = await http("PUT", signed["url"], b"\x89PNG fake", {"Content-Type": "text/plain"})
    assert status == 403 and await keys_in(s3_client, bucket) == []  # the content type is part of the signature
    status, _ = await http("PUT", signed["url"], b"\x89PNG fake", signed["headers"])
    assert status == 200
    assert (await s3_client.head_object(Bucket=bucket, Key=KEY))["ContentType"] == "image/png"
    assert await stored(s3_client, bucket, KEY) == b"\x89PNG fake"


async def test_a_delete_url_deletes_the_object(connector_send: Send, s3_client: Any, bucket: str) -> None:
    await s3_client.put_object(Bucket=bucket, Key=KEY, Body=b"short-lived")
    signed = await presign(connector_send, bucket, operation="delete")
    assert signed["method"] == "DELETE"
    assert (await http("DELETE", signed["url"]))[0] == 204
    assert await keys_in(s3_client, bucket) == []


async def test_a_url_stops_working_when_it_expires(connector_send: Send, s3_client: Any, bucket: str) -> None:
    await s3_client.put_object(Bucket=bucket, Key=KEY, Body=b"x")
    short = await presign(connector_send, bucket, expires_seconds="1")
    longer = await presign(connector_send, bucket, expires_seconds="60")  # signed alongside: the 403 below is the expiry, nothing else
    await asyncio.sleep(2.2)
    status, body = await http("GET", short["url"])
    assert status == 403 and b"expired" in body.lower()
    assert await http("GET", longer["url"]) == (200, b"x")
