"""Source ``kubemq.query``: the sender waits for the target's full reply.

As kubemq-targets does, the reply is always sent with ``Executed=true`` and the
kubemq-targets response JSON (``is_error``/``error`` inside) as its body, so a
sender parses one shape for success and failure alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from kubemq import AsyncCQClient, ClientConfig, QueryReceived, QueryResponse
from kubemq.grpc import kubemq_pb2 as pb

from bindings.source import Outcome
from bindings.sources.connection import ConnectionProperties
from bindings.sources.sdk import request_stream
from bindings.sources.subscription import SubscriptionSource


class QuerySource(SubscriptionSource[AsyncCQClient, pb.Request]):
    kind = "kubemq.query"
    aliases = ("source.query",)
    properties_model = ConnectionProperties
    summary = "Receives KubeMQ queries and replies with the target's response."
    subscribe_type = pb.Subscribe.Queries

    def new_client(self, config: ClientConfig) -> AsyncCQClient:
        return AsyncCQClient(config=config)

    def open_stream(self, client: AsyncCQClient, index: int, stop: asyncio.Event) -> AsyncIterator[pb.Request]:
        subscribe = pb.Subscribe(
            SubscribeTypeData=self.subscribe_type,
            ClientID=client.config.client_id or "",
            Channel=self.properties.channel,
            Group=self.properties.group,
        )
        return request_stream(client, subscribe, stop)

    def describe(self, message: pb.Request) -> tuple[str, bytes, float | None]:
        return message.RequestID, message.Body, (message.Timeout / 1000 if message.Timeout > 0 else None)

    async def deliver(self, client: AsyncCQClient, message: pb.Request, outcome: Outcome) -> None:
        reply = QueryResponse(query_received=QueryReceived.decode(message), is_executed=True, body=outcome.response.to_json())
        await client.send_response(reply)
