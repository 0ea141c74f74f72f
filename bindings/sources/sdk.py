"""The few places where the sources reach past the SDK's public surface, kept in one file.

The SDK's public ``subscribe_to_queries``/``subscribe_to_commands`` decode each
request into ``QueryReceived``/``CommandReceived``, which drop the request's
``Timeout``. The connector needs it to know when a sender has given up, so it
reads the same transport stream the public methods read, and still replies
through the public ``send_response``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from kubemq import AsyncCancellationToken
from kubemq.grpc import kubemq_pb2 as pb


async def request_stream(client: Any, subscribe: pb.Subscribe, stop: asyncio.Event) -> AsyncIterator[pb.Request]:
    """Yield raw ``Request`` messages of a commands/queries subscription until ``stop`` is set."""
    token = AsyncCancellationToken()
    watcher = asyncio.create_task(_cancel_on(stop, token))
    try:
        async for request in client._transport.subscribe_to_requests(subscribe, token):
            yield request
    finally:
        watcher.cancel()


async def _cancel_on(stop: asyncio.Event, token: AsyncCancellationToken) -> None:
    await stop.wait()
    token.cancel()
