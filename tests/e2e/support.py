"""Helpers for the end-to-end tests: raw SDK sends, reply checks, independent HTTP and S3 checks.

Everything here talks to real parts: the official KubeMQ SDK, the embedded
broker, a running connector, SeaweedFS. Requests go through the connector;
outcomes are checked behind its back with the raw ``s3_client`` or ``aiohttp``.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from kubemq import AsyncCQClient, QueryMessage, RetryPolicy

from bindings.wire import Response
from connector.s3 import METHODS
from tests.fixtures.kubemq import S3_CHANNEL, free_port
from tests.fixtures.s3 import empty_bucket
from tests.ops.support import REPO, ConnectorProcess, connector_process, get_text
from tests.s3.support import keys_in, put_many

__all__ = ["METHOD_LIST", "RFC3339", "Send", "keys_in", "put_many"]

Send = Callable[..., Awaitable[Response]]

MIB = 1024 * 1024
# The methods as the unknown-method error lists them: kubemq-targets' nine first, in its order, then the additions.
METHOD_LIST = ", ".join(method.name for method in METHODS)
UNKNOWN_METHOD = f"invalid method type, method type should be one of the following: {METHOD_LIST}"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
# aws-sdk-go's layout of an S3 error, as kubemq-targets senders match on it.
S3_ERROR = re.compile(r"^(?P<code>\w+): (?P<message>[^\n]+)\n\tstatus code: (?P<status>\d{3}), request id: \S+, host id: \S*$")


def ok(reply: Response) -> Any:
    """A success reply's ``data`` parsed as JSON (None for ``data: null``); fails the test on an error reply."""
    assert not reply.is_error, reply.error
    assert reply.metadata["result"] == "ok", reply.metadata
    return None if reply.data is None else json.loads(reply.data)


def s3_failure(reply: Response) -> tuple[str, int, str]:
    """(S3 code, HTTP status, message) of an error reply carrying an S3 error, checked for kubemq-targets' error shape."""
    assert reply.is_error and reply.metadata == {} and reply.data is None, reply
    match = S3_ERROR.match(reply.error)
    assert match is not None, f"not an aws-sdk-go style S3 error: {reply.error!r}"
    return match["code"], int(match["status"]), match["message"]


def target_properties(**properties: str) -> str:
    """Extra ``aws.s3`` target properties for ``s3_binding_yaml(extra_target=...)``, quoted as kubemq-targets writes them."""
    return "".join(f'\n            {name}: "{value}"' for name, value in properties.items())


async def raw_query(address: str, body: bytes, *, channel: str = S3_CHANNEL, timeout: int = 15) -> tuple[bool, dict[str, Any]]:
    """Send ``body`` verbatim as a KubeMQ query with the official SDK; (Executed, the reply body as parsed JSON)."""
    options = {"address": address, "client_id": "e2e-raw-sender", "connection_pool_size": 1, "retry_policy": RetryPolicy(max_retries=0)}
    async with AsyncCQClient(**options) as client:
        reply = await client.send_query(QueryMessage(channel=channel, body=body, timeout_in_seconds=timeout))
    return reply.is_executed, json.loads(reply.body)


async def http(method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One request with an independent HTTP client (aiohttp, no AWS code): (status, body)."""
    async with aiohttp.ClientSession() as session, session.request(method, url, data=data, headers=headers) as response:
        return response.status, await response.read()


async def stored(s3_client: Any, bucket: str, key: str) -> bytes:
    """The object's bytes, read with the raw client."""
    return await (await s3_client.get_object(Bucket=bucket, Key=key))["Body"].read()  # type: ignore[no-any-return]


async def bucket_exists(s3_client: Any, name: str) -> bool:
    return name in {b["Name"] for b in (await s3_client.list_buckets())["Buckets"]}


async def drop_bucket(s3_client: Any, name: str) -> None:
    """Empty and delete ``name`` if a test left it behind."""
    if await bucket_exists(s3_client, name):
        await empty_bucket(s3_client, name)
        await s3_client.delete_bucket(Bucket=name)


def newcomer_config(directory: Path) -> tuple[Path, str, str]:
    """The repository's config.yaml on free ports: (path, API URL, broker address)."""
    api_port, broker_port = free_port(), free_port()
    text = (REPO / "config.yaml").read_text()
    assert "\napiPort: 8080\n" in text and "\napiHost: 127.0.0.1\n" in text and "embeddedBrokerPort" not in text
    text = text.replace("\napiPort: 8080\n", f"\napiPort: {api_port}\nembeddedBrokerPort: {broker_port}\n")
    path = directory / "config.yaml"
    path.write_text(text)
    return path, f"http://127.0.0.1:{api_port}", f"127.0.0.1:{broker_port}"


@contextlib.asynccontextmanager
async def newcomer_connector(tmp_path: Path) -> AsyncIterator[tuple[ConnectorProcess, str]]:
    """A connector process on the repository's config, ready; yields it and its broker address."""
    config, api_url, address = newcomer_config(tmp_path)
    async with connector_process(config) as child:
        await child.wait_ready(api_url, timeout=60)
        assert await get_text(f"{api_url}/ready") == (200, "ready")
        yield child, address


async def stop_with_sigterm(child: ConnectorProcess) -> None:
    child.send_signal(signal.SIGTERM)
    code = await child.wait(timeout=30)
    assert code == 0, child.output[-3000:]
