"""The few lines anyone could write instead of the connector: the baseline of ``bench_requests.py`` and ``bench_large_objects.py``.

An SDK subscription to queries; each request is parsed, served with aioboto3
(``get_object`` or ``put_object``) and answered with the kubemq-targets reply
body. No validation, no middleware, no metrics, no logs.

    python benchmarks/minimal_responder.py BROKER CHANNEL ENDPOINT ACCESS_KEY SECRET_KEY
"""

import asyncio
import base64
import json
import sys

import aioboto3
from botocore.config import Config
from kubemq import AsyncCQClient, QueriesSubscription, QueryResponse

# KubeMQ's own message limit; the SDK's default (4 MiB) would refuse a large object.
LIMIT = 100 * 1024 * 1024


def reply(data: bytes | None = None, error: str = "") -> bytes:
    metadata = {} if error else {"result": "ok"}
    encoded = None if data is None else base64.b64encode(data).decode()
    return json.dumps({"metadata": metadata, "data": encoded, "is_error": bool(error), "error": error}).encode()


async def main(broker: str, channel: str, endpoint: str, key: str, secret: str) -> None:
    session = aioboto3.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1")
    config = Config(s3={"addressing_style": "path"}, max_pool_connections=64)
    async with session.client("s3", endpoint_url=endpoint, config=config) as s3, AsyncCQClient(address=broker, client_id="minimal-responder", max_receive_size=LIMIT, max_send_size=LIMIT) as client:

        async def handle(query) -> None:
            request = json.loads(query.body)
            meta = request["metadata"]
            try:
                if meta["method"] == "get_item":
                    obj = await s3.get_object(Bucket=meta["bucket_name"], Key=meta["item_name"])
                    body = reply(await obj["Body"].read())
                else:
                    await s3.put_object(Bucket=meta["bucket_name"], Key=meta["item_name"], Body=base64.b64decode(request.get("data") or ""))
                    body = reply()
            except Exception as exc:  # noqa: BLE001 - the baseline answers every request
                body = reply(error=str(exc))
            await client.send_response(QueryResponse(query_received=query, is_executed=True, body=body))

        await serve(client, channel, handle)


async def serve(client, channel: str, handle) -> None:
    """Run ``handle`` on each query of ``channel`` as it arrives, each in its own task."""
    tasks = set()
    async for query in client.subscribe_to_queries(QueriesSubscription(channel=channel, on_receive_query_callback=lambda _: None)):
        task = asyncio.create_task(handle(query))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
