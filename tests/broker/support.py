"""Helpers of the embedded broker tests: SDK clients that never retry, responders, raw streams, waits on queue depth."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, TypeVar

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import grpc
import pytest
from kubemq import (
    AsyncCancellationToken,
    AsyncCQClient,
    AsyncPubSubClient,
    AsyncQueuesClient,
    CommandReceived,
    CommandResponse,
    CommandsSubscription,
    QueriesSubscription,
    QueryReceived,
    QueryResponse,
    RetryPolicy,
)

from devbroker import EmbeddedBroker
from tests.fixtures.waiting import eventually

SdkClient = TypeVar("SdkClient", AsyncCQClient, AsyncPubSubClient, AsyncQueuesClient)


@contextlib.asynccontextmanager
async def sdk_client(client_class: type[SdkClient], address: str, client_id: str, **options: object) -> AsyncIterator[SdkClient]:
    """A connected SDK client that never retries, so a test sees every call exactly once."""
    client = client_class(
        address=address,
        client_id=client_id,
        connection_pool_size=1,
        retry_policy=RetryPolicy(max_retries=0),
        **options,
    )
    await client.connect()
    try:
        yield client
    finally:
        await client.close()


def cq_client(address: str, client_id: str, **options: object) -> contextlib.AbstractAsyncContextManager[AsyncCQClient]:
    return sdk_client(AsyncCQClient, address, client_id, **options)


@contextlib.asynccontextmanager
async def responder(
    fresh_broker: EmbeddedBroker,
    client_id: str,
    channel: str,
    reply: Callable[[AsyncCQClient, QueryReceived | CommandReceived], Awaitable[None]],
    *,
    kind: str = "queries",
    group: str | None = None,
    token: str | None = None,
    **options: object,
) -> AsyncIterator[None]:
    """An SDK subscriber answering with ``reply``; the test waits for its registration."""
    async with cq_client(fresh_broker.address, client_id, auth_token=token, **options) as client:
        token = AsyncCancellationToken()

        async def handle(received: QueryReceived | CommandReceived) -> None:
            await reply(client, received)

        if kind == "queries":
            subscription = QueriesSubscription(channel=channel, group=group, on_receive_query_callback=lambda _: None)
            running = client.subscribe_queries_with_callback(subscription, handle, cancellation_token=token, max_concurrent_callbacks=8)
        else:
            subscription = CommandsSubscription(channel=channel, group=group, on_receive_command_callback=lambda _: None)
            running = client.subscribe_commands_with_callback(subscription, handle, cancellation_token=token, max_concurrent_callbacks=8)
        task = asyncio.create_task(running)
        try:
            yield
        finally:
            token.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 5)


def echo_reply(tag: str) -> Callable[[AsyncCQClient, QueryReceived | CommandReceived], Awaitable[None]]:
    """A reply that echoes the body and names the responder, so tests see who answered."""

    async def reply(client: AsyncCQClient, received: QueryReceived | CommandReceived) -> None:
        if isinstance(received, QueryReceived):
            response = QueryResponse(query_received=received, is_executed=True, body=b"echo:" + received.body, metadata=tag)
        else:
            response = CommandResponse(command_received=received, is_executed=True, body=b"ignored", metadata=tag)
        await client.send_response(response)

    return reply


async def internal_error(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    """Await a raw stub call that must fail the way the real server fails: INTERNAL."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.INTERNAL, caught.value
    return caught.value


StreamRequest = TypeVar("StreamRequest")
StreamReply = TypeVar("StreamReply")


class RawStream(Generic[StreamRequest, StreamReply]):
    """A bidirectional stream on a raw stub, fed request by request, to see exactly what the broker answers."""

    def __init__(self, open_call: Callable[[AsyncIterator[StreamRequest]], grpc.aio.StreamStreamCall]) -> None:
        self._requests: asyncio.Queue[StreamRequest | None] = asyncio.Queue()
        self.call = open_call(self._feed())

    async def _feed(self) -> AsyncIterator[StreamRequest]:
        while (request := await self._requests.get()) is not None:
            yield request

    def put(self, request: StreamRequest) -> None:
        self._requests.put_nowait(request)

    def done_writing(self) -> None:
        """Half-close: no more requests, but the broker may still reply."""
        self._requests.put_nowait(None)

    async def read(self) -> StreamReply:
        """The next reply (``grpc.aio.EOF`` once the broker has ended the stream)."""
        return await asyncio.wait_for(self.call.read(), 5)

    def close(self) -> None:
        """Cancel the call, as a client process dying would."""
        self.call.cancel()


async def until_depth(broker: EmbeddedBroker, channel: str, depth: int, timeout: float = 5.0) -> None:
    """Wait until a queue holds ``depth`` messages waiting for a reader (hand-backs are asynchronous)."""
    await eventually(lambda: broker.queue_depth(channel), timeout, expect=depth)
