"""presign_url: SigV4 URLs that an independent HTTP client can use, and that stop working when they expire."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiobotocore.credentials import AioDeferredRefreshableCredentials

from bindings.errors import InvalidRequestError
from connector.s3 import S3Target
from tests.fixtures.s3_targets import MakeTarget
from tests.s3.support import body, call

KEY = "shared/a b ü.txt"


async def presign(target: S3Target, bucket: str, **metadata: str) -> dict[str, Any]:
    return body(await call(target, method="presign_url", bucket_name=bucket, item_name=KEY, **metadata))  # type: ignore[no-any-return]


async def test_get_url_downloads_with_a_plain_http_client(target: S3Target, s3_client: Any, bucket: str) -> None:
    await s3_client.put_object(Bucket=bucket, Key=KEY, Body=b"for anyone with the link")
    before = datetime.now(UTC)
    reply = await call(target, method="presign_url", bucket_name=bucket, item_name=KEY)
    output = body(reply)
    assert list(output) == ["url", "method", "expires_at"] and output["method"] == "GET"
    assert reply.metadata == {"result": "ok", "bucket": bucket, "key": KEY}
    query = parse_qs(urlsplit(output["url"]).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"] and query["X-Amz-Expires"] == ["86400"]
    expires_at = datetime.strptime(output["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before + timedelta(seconds=86400 - 2) <= expires_at <= before + timedelta(seconds=86400 + 2)
    async with aiohttp.ClientSession() as http, http.get(output["url"]) as response:
        assert response.status == 200 and await response.read() == b"for anyone with the link"


async def test_put_url_uploads_with_the_signed_content_type(target: S3Target, s3_client: Any, bucket: str) -> None:
    output = await presign(target, bucket, operation="put", content_type="text/plain", expires_seconds="600")
    assert output["method"] == "PUT" and output["headers"] == {"Content-Type": "text/plain"}
    async with aiohttp.ClientSession() as http, http.put(output["url"], data=b"uploaded", headers=output["headers"]) as response:
        assert response.status == 200
    stored = await s3_client.get_object(Bucket=bucket, Key=KEY)
    assert stored["ContentType"] == "text/plain" and await stored["Body"].read() == b"uploaded"


async def test_delete_url_deletes(target: S3Target, s3_client: Any, bucket: str) -> None:
    await s3_client.put_object(Bucket=bucket, Key=KEY, Body=b"x")
    output = await presign(target, bucket, operation="delete")
    async with aiohttp.ClientSession() as http, http.delete(output["url"]) as response:
        assert response.status == 204
    assert (await s3_client.list_objects_v2(Bucket=bucket)).get("KeyCount") == 0


async def test_urls_stop_working_when_they_expire(target: S3Target, s3_client: Any, bucket: str) -> None:
    await s3_client.put_object(Bucket=bucket, Key=KEY, Body=b"x")
    get = await presign(target, bucket, expires_seconds="1")
    put = await presign(target, bucket, operation="put", expires_seconds="1")
    await asyncio.sleep(2.2)
    async with aiohttp.ClientSession() as http:
        async with http.get(get["url"]) as response:
            assert response.status == 403 and b"expired" in (await response.read()).lower()
        async with http.put(put["url"], data=b"late") as response:
            assert response.status == 403
    assert await (await s3_client.get_object(Bucket=bucket, Key=KEY))["Body"].read() == b"x"


async def test_a_tampered_url_is_refused(target: S3Target, bucket: str) -> None:
    url = (await presign(target, bucket))["url"]
    tampered = re.sub(r"(X-Amz-Signature=)(.)", lambda m: m.group(1) + ("0" if m.group(2) != "0" else "1"), url)
    async with aiohttp.ClientSession() as http, http.get(tampered) as response:
        assert response.status == 403


def role_credentials(seaweed: Any, lifetime: timedelta) -> AioDeferredRefreshableCredentials:
    """Credentials as a role or web identity (IRSA) hands them out: fetched on first use, valid for ``lifetime``."""

    async def fetch() -> dict[str, Any]:
        expiry = datetime.now(UTC) + lifetime
        return {"access_key": seaweed.access_key, "secret_key": seaweed.secret_key, "token": None, "expiry_time": expiry.isoformat()}

    return AioDeferredRefreshableCredentials(refresh_using=fetch, method="assume-role-with-web-identity")


@pytest.mark.parametrize(("asked", "valid"), [(86400, 3600), (600, 600)])
async def test_a_url_never_outlives_temporary_credentials(make_target: MakeTarget, seaweed: Any, s3_client: Any, bucket: str, asked: int, valid: int) -> None:
    target = await make_target()
    target._client.api._request_signer._credentials = role_credentials(seaweed, timedelta(hours=1))  # type: ignore[union-attr]
    await s3_client.put_object(Bucket=bucket, Key=KEY, Body=b"signed by a role")
    before = datetime.now(UTC)
    output = await presign(target, bucket, expires_seconds=str(asked))
    expires_at = datetime.strptime(output["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before + timedelta(seconds=valid - 3) <= expires_at <= before + timedelta(seconds=valid + 1)
    assert valid - 3 <= int(parse_qs(urlsplit(output["url"]).query)["X-Amz-Expires"][0]) <= valid
    async with aiohttp.ClientSession() as http, http.get(output["url"]) as response:
        assert response.status == 200 and await response.read() == b"signed by a role"


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"expires_seconds": "0"}, "error parsing expires_seconds"),
        ({"expires_seconds": "604801"}, "error parsing expires_seconds"),
        ({"operation": "post"}, "error parsing operation"),
        ({"operation": "get", "content_type": "text/plain"}, "content_type applies only to operation=put"),
    ],
)
async def test_invalid_presign_requests(target: S3Target, bucket: str, metadata: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        await presign(target, bucket, **metadata)
