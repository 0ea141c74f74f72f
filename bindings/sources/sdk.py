"""The few places where the sources reach past the SDK's public surface, kept in one file.

The SDK's public subscribe methods decode each message into its own types,
which drop what the connector needs: ``QueryReceived``/``CommandReceived``
lose the request's ``Timeout`` (when the sender gives up), and the public
events-store iterators re-subscribe on their own with their own resume rule.
So the sources read the same transport streams the public methods read, and
still reply and publish through the public client methods.

Queue acks are the other gap: KubeMQ sends no reply to an ack, and the
SDK's ``close()`` cancels its downstream stream at once, so an ack queued just
before closing can be dropped and its message redelivered.
``flush_downstream`` closes that gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from kubemq import AsyncCancellationToken
from kubemq.grpc import kubemq_pb2 as pb

from bindings.sources.connection import SubscriptionProperties

_REQUEST_TYPES = (pb.Subscribe.Commands, pb.Subscribe.Queries)


async def subscription_stream(client: Any, subscribe: pb.Subscribe, stop: asyncio.Event) -> AsyncIterator[Any]:
    """Yield the raw messages of one subscription until ``stop`` is set or the stream ends.

    Commands and queries come as ``pb.Request``; events and events-store as
    ``pb.EventReceive`` (with its ``Sequence``).
    """
    token = AsyncCancellationToken()
    watcher = asyncio.create_task(_cancel_on(stop, token))
    transport = client._transport
    open_stream = transport.subscribe_to_requests if subscribe.SubscribeTypeData in _REQUEST_TYPES else transport.subscribe_to_events
    try:
        async for message in open_stream(subscribe, token):
            yield message
    finally:
        watcher.cancel()


def subscribe_message(client: Any, properties: SubscriptionProperties, subscribe_type: int) -> pb.Subscribe:
    """The ``Subscribe`` of a subscription to ``properties.channel`` (start position left to the caller)."""
    return pb.Subscribe(
        SubscribeTypeData=subscribe_type,  # type: ignore[arg-type]
        ClientID=client.config.client_id or "",
        Channel=properties.channel,
        Group=properties.group,
    )


async def _cancel_on(stop: asyncio.Event, token: AsyncCancellationToken) -> None:
    await stop.wait()
    token.cancel()


async def flush_downstream(client: Any, timeout: float = 5.0) -> None:
    """Return once KubeMQ has handled every ack and reject sent on the client's downstream stream.

    The server handles a stream's requests in order, so the reply to one more
    request (an ``ActiveOffsets`` query, refused for naming no open
    transaction) proves the ones before it were handled.
    """
    receiver = client._downstream_receiver
    if receiver is None:
        return
    barrier = pb.QueuesDownstreamRequest(
        RequestID=uuid.uuid4().hex,
        ClientID=client.config.client_id or "",
        RequestTypeData=pb.QueuesDownstreamRequestType.ActiveOffsets,
        RefTransactionId=f"flush-{uuid.uuid4().hex}",
    )
    with contextlib.suppress(Exception):
        await asyncio.wait_for(receiver.send(barrier), timeout)
