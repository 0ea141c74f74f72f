"""The floor under any Python responder: the official SDK's subscription and reply with no S3 call at all.

It answers every request with a reply of the right shape and size, made
once: for a ``get_item``, the object its ``item_name`` names in SIZES
(``name=bytes,...``); for anything else, ``{"result": "ok"}``. What this process spends per request is what gRPC, the SDK
and the event loop cost before any S3 work; ``bench_requests.py`` runs it
beside the connector and kubemq-targets to show where the connector's floor lies.

    python benchmarks/floor_responder.py BROKER CHANNEL SIZES
"""

import asyncio
import json
import os
import sys

from kubemq import AsyncCQClient, QueryResponse
from minimal_responder import LIMIT, reply, serve  # beside this file: run as a script, its folder is on the path


async def main(broker: str, channel: str, sizes: str) -> None:
    objects = {name: reply(os.urandom(int(size))) for name, size in (pair.split("=") for pair in sizes.split(","))}
    done = reply()
    async with AsyncCQClient(address=broker, client_id="floor-responder", max_receive_size=LIMIT, max_send_size=LIMIT) as client:

        async def handle(query) -> None:
            metadata = json.loads(query.body)["metadata"]
            body = objects[metadata["item_name"]] if metadata["method"] == "get_item" else done
            await client.send_response(QueryResponse(query_received=query, is_executed=True, body=body))

        await serve(client, channel, handle)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
