"""What the two request/reply kinds share: ``kubemq.query`` and ``kubemq.command``.

Both subscribe to KubeMQ requests with the CQ client and read each request's
``Timeout``, so the deadline middleware knows when the sender gives up. They
differ only in the reply they send.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any, ClassVar

from kubemq import AsyncCQClient, ClientConfig, RetryPolicy
from kubemq.grpc import kubemq_pb2 as pb

from bindings.kubemq.connection import SubscriptionProperties
from bindings.kubemq.sdk import Received, subscribe_message, subscription_stream
from bindings.kubemq.subscription import SubscriptionSource
from bindings.wire import Body


class RequestsSource(SubscriptionSource[AsyncCQClient, Received[pb.Request]]):
    """A subscription to queries or commands (``subscribe_type``); subclasses define the reply."""

    properties: SubscriptionProperties
    properties_model = SubscriptionProperties
    subscribe_type: ClassVar[int]

    def new_client(self, config: ClientConfig) -> AsyncCQClient:
        # One SDK retry of a reply: KubeMQ keeps the first reply to a request and drops
        # any other, so a retried reply cannot be delivered twice, and a transient
        # failure no longer leaves the sender waiting out its timeout.
        return AsyncCQClient(config=replace(config, retry_policy=RetryPolicy(max_retries=1)))

    @property
    def load_group(self) -> str:
        return self.properties.group

    def open_stream(self, client: AsyncCQClient, index: int, stop: asyncio.Event) -> AsyncIterator[Received[pb.Request]]:
        return subscription_stream(client, subscribe_message(client, self.properties, self.subscribe_type), stop)

    def describe(self, message: Received[pb.Request]) -> tuple[str, Body, float | None]:
        timeout = message.fields.Timeout
        return message.fields.RequestID, message.body, (timeout / 1000 if timeout > 0 else None)

    def tags(self, message: Received[pb.Request]) -> Mapping[str, str]:
        tags: Mapping[str, str] = message.fields.Tags  # the protobuf map, read in place
        return tags

    @staticmethod
    def reply_address(message: Received[pb.Request]) -> dict[str, Any]:
        """What a reply needs of the request: the SDK's ``*Received.decode`` would also copy its whole body."""
        fields = message.fields
        return {"id": fields.RequestID, "from_client_id": fields.ClientID, "channel": fields.Channel, "reply_channel": fields.ReplyChannel}
