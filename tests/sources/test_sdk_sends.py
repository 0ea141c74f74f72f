"""The serialized sends of ``bindings/sources/sdk.py`` against the embedded broker: what they reuse, and across reconnects."""

from __future__ import annotations

import gc

from kubemq import AsyncCQClient, QueryReceived, QueryResponse

from bindings.sources import sdk
from devbroker import EmbeddedBroker
from tests.sources.support import options


def reply(client: AsyncCQClient) -> bytes:
    """A query reply nobody waits for: the broker checks it and drops it."""
    received = QueryReceived(id="r-1", from_client_id="sender", channel="sdk.sends", reply_channel="sdk.sends.inbox")
    return sdk.serialized_response(QueryResponse(query_received=received, is_executed=True).encode(client.config.client_id or ""), [b"{}"])


async def test_the_send_callables_are_made_once_per_channel_and_again_after_a_reconnect(broker: EmbeddedBroker) -> None:
    async with AsyncCQClient(**options(broker, "test-responder")) as client:
        transport = client._transport
        await sdk.send_serialized_response(client, reply(client), "sdk.sends.inbox")
        first = sdk._callables(transport)
        await sdk.send_serialized_response(client, reply(client), "sdk.sends.inbox")
        assert sdk._callables(transport) is first
        old_channel = transport._channel
        await transport._reconnect()  # what the SDK does when a connection is lost: a new channel, the old one closed
        assert transport._channel is not old_channel
        await sdk.send_serialized_response(client, reply(client), "sdk.sends.inbox")  # a callable of the closed channel would fail
        assert sdk._callables(transport) is not first


async def test_a_closed_clients_callables_are_let_go(broker: EmbeddedBroker) -> None:
    before = len(sdk._callables_of)
    async with AsyncCQClient(**options(broker, "test-closed")) as client:
        await sdk.send_serialized_response(client, reply(client), "sdk.sends.inbox")
        assert len(sdk._callables_of) == before + 1
    del client
    gc.collect()
    assert len(sdk._callables_of) == before
