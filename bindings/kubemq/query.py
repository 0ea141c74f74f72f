"""Source ``kubemq.query``: the sender waits for the target's full reply.

As kubemq-targets does, the reply is always sent with ``Executed=true`` and the
kubemq-targets response JSON (``is_error``/``error`` inside) as its body, so a
sender parses one shape for success and failure alike.

The reply message is serialized here, its body joined straight into it, so
a large object is held at most twice while it is sent (see ``sdk.py``).
"""

from __future__ import annotations

from kubemq import AsyncCQClient, QueryReceived, QueryResponse
from kubemq.grpc import kubemq_pb2 as pb

from bindings import tracing
from bindings.kubemq.requests import RequestsSource
from bindings.kubemq.sdk import Received, send_serialized_response, serialized_reply
from bindings.source import Outcome


class QuerySource(RequestsSource):
    kind = "kubemq.query"
    aliases = ("source.query",)
    summary = "Receives KubeMQ queries and replies with the target's response."
    subscribe_type = pb.Subscribe.Queries

    async def deliver(self, client: AsyncCQClient, message: Received[pb.Request], outcome: Outcome) -> None:
        address = self.reply_address(message)
        header = QueryResponse(query_received=QueryReceived(**address), is_executed=True, tags=tracing.inject({})).encode(client.config.client_id or "")
        await send_serialized_response(client, serialized_reply(header, outcome.response).wire, address["reply_channel"])
