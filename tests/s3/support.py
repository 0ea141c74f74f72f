"""Helpers for target-level S3 tests: build a target on SeaweedFS, send it one request."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bindings.context import RequestContext, TargetContext
from bindings.wire import EXTENDED, Request, Response
from connector.s3 import S3Properties, S3Target

# The richer reply style these tests read; tests/s3/test_reply_styles.py covers the default one.
CONTEXT = TargetContext(binding="t", max_concurrency=8, reply_style=EXTENDED)


async def open_target(properties: dict[str, Any], context: TargetContext = CONTEXT) -> S3Target:
    target = S3Target()
    await target.init(S3Properties(**properties), context)
    return target


async def call(target: S3Target, data: bytes = b"", deadline: float | None = None, **metadata: str) -> Response:
    """One request with these metadata keys (and payload), resolved and handled as the engine does."""
    return await handle(target, Request(metadata=metadata, data=data), deadline)


async def handle(target: S3Target, request: Request, deadline: float | None = None) -> Response:
    """``request`` resolved and handled as the engine does."""
    resolved = target.resolve(request)
    target.authorize(resolved)
    return await target.handle(resolved, RequestContext(binding="t", request_id="r1", deadline=deadline))


def body(response: Response) -> Any:
    """The reply's ``data`` parsed as JSON."""
    assert response.data is not None
    return json.loads(response.data)


async def put_many(client: Any, bucket: str, keys: list[str], concurrency: int = 32) -> None:
    """Create tiny objects fast (through the raw client), ``concurrency`` at a time."""
    slots = asyncio.Semaphore(concurrency)

    async def put(key: str) -> None:
        async with slots:
            await client.put_object(Bucket=bucket, Key=key, Body=key.encode())

    await asyncio.gather(*(put(key) for key in keys))


async def keys_in(client: Any, bucket: str) -> list[str]:
    """Every key in ``bucket`` (raw client, all pages)."""
    found: list[str] = []
    async for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        found += [item["Key"] for item in page.get("Contents", [])]
    return found
