"""A kubemq-targets client: send one request with the official SDK and show the reply.

Used by ``kubemq-s3 send``. It speaks only the wire format, so it works with
any kubemq-targets target, not only this connector.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

from kubemq import AsyncCQClient, KubeMQError, QueryMessage, RetryPolicy

from bindings.sources.connection import SERVER_MESSAGE_LIMIT
from bindings.wire import Request, Response


async def query(address: str, channel: str, request: Request, *, timeout: int = 30, auth_token: str | None = None, client_id: str = "kubemq-s3-send") -> Response:
    """Send ``request`` as a KubeMQ query and return the decoded reply."""
    options: dict[str, Any] = {
        "address": address,
        "client_id": client_id,
        "max_send_size": SERVER_MESSAGE_LIMIT,
        "max_receive_size": SERVER_MESSAGE_LIMIT,
        "connection_pool_size": 1,
        # A retried query would run the request twice.
        "retry_policy": RetryPolicy(max_retries=0),
    }
    if auth_token:
        options["auth_token"] = auth_token
    async with AsyncCQClient(**options) as client:
        reply = await client.send_query(QueryMessage(channel=channel, body=request.to_json(), timeout_in_seconds=timeout))
    if not reply.is_executed:
        return Response.failure(reply.error or "query was not executed")
    return Response.from_json(reply.body)


def readable(response: Response) -> dict[str, Any]:
    """The reply as JSON with ``data`` decoded: a JSON value, text, or base64 for binary."""
    shown: dict[str, Any] = {"metadata": response.metadata, "is_error": response.is_error, "error": response.error}
    if response.data is None:
        shown["data"] = None
        return shown
    try:
        text = response.data.decode("utf-8")
    except UnicodeDecodeError:
        shown["data_base64"] = base64.b64encode(response.data).decode("ascii")
        return shown
    try:
        shown["data"] = json.loads(text)
    except ValueError:
        shown["data"] = text
    return shown


async def send_request(address: str, channel: str, metadata: dict[str, str], data: bytes, *, timeout: int, auth_token: str | None, output: Path | None) -> int:
    """Send, print the reply; exit code 0 for success, 1 for an error reply, 2 if nothing came back."""
    try:
        response = await query(address, channel, Request(metadata=metadata, data=data), timeout=timeout, auth_token=auth_token)
    except (KubeMQError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if output is not None and response.data is not None:
        output.write_bytes(response.data)
        response = Response(response.metadata, None, response.is_error, response.error)
        print(f"data written to {output}", file=sys.stderr)
    print(json.dumps(readable(response), indent=2, ensure_ascii=False))
    return 1 if response.is_error else 0
