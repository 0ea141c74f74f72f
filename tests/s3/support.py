"""Helpers for target-level S3 tests: build a target on SeaweedFS, send it one request."""

from __future__ import annotations

import json
from typing import Any

from bindings.context import RequestContext, TargetContext
from bindings.wire import Request, Response
from connector.s3 import S3Properties, S3Target

CONTEXT = TargetContext(binding="t", max_concurrency=8)


async def open_target(properties: dict[str, Any]) -> S3Target:
    target = S3Target()
    await target.init(S3Properties(**properties), CONTEXT)
    return target


async def call(target: S3Target, data: bytes = b"", deadline: float | None = None, **metadata: str) -> Response:
    """``target.handle`` for one request with these metadata keys (and payload)."""
    return await target.handle(Request(metadata=metadata, data=data), RequestContext(binding="t", request_id="r1", deadline=deadline))


def body(response: Response) -> Any:
    """The reply's ``data`` parsed as JSON."""
    assert response.data is not None
    return json.loads(response.data)
