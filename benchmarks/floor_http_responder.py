"""The floor under any Python responder that calls S3: the official SDK's subscription and reply around one bare HTTP exchange with the store.

Each request is answered after one aiohttp exchange with SeaweedFS: a GET of
the object (``get_item``) or a PUT of the request's data (anything else), at
a presigned URL made once per key and kept, so no signing, no parsing of S3's
headers, no validation, logging or metrics. What this process spends per
request is what gRPC, the SDK, the event loop and aiohttp cost for a request
that touches S3; ``bench_requests.py`` runs it beside the connector and
kubemq-targets to show where the connector's floor lies.

    python benchmarks/floor_http_responder.py BROKER CHANNEL ENDPOINT ACCESS_KEY SECRET_KEY
"""

import asyncio
import base64
import functools
import json
import sys

import aiohttp
import boto3
from botocore.config import Config
from kubemq import AsyncCQClient, QueryResponse
from minimal_responder import LIMIT, reply, serve  # beside this file: run as a script, its folder is on the path


async def main(broker: str, channel: str, endpoint: str, key: str, secret: str) -> None:
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))

    @functools.cache
    def url(method: str, bucket: str, item: str) -> str:
        return s3.generate_presigned_url(method, Params={"Bucket": bucket, "Key": item}, ExpiresIn=24 * 3600)

    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as http,
        AsyncCQClient(address=broker, client_id="floor-http-responder", max_receive_size=LIMIT, max_send_size=LIMIT) as client,
    ):

        async def handle(query) -> None:
            request = json.loads(query.body)
            meta = request["metadata"]
            if meta["method"] == "get_item":
                async with http.get(url("get_object", meta["bucket_name"], meta["item_name"])) as response:
                    body = reply(await response.read())
            else:
                async with http.put(url("put_object", meta["bucket_name"], meta["item_name"]), data=base64.b64decode(request.get("data") or "")) as response:
                    await response.read()
                    body = reply()
            await client.send_response(QueryResponse(query_received=query, is_executed=True, body=body))

        await serve(client, channel, handle)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
