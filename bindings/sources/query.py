"""Source ``kubemq.query``: the sender waits for the target's full reply.

As kubemq-targets does, the reply is always sent with ``Executed=true`` and the
kubemq-targets response JSON (``is_error``/``error`` inside) as its body, so a
sender parses one shape for success and failure alike.
"""

from __future__ import annotations

from kubemq import AsyncCQClient, QueryReceived, QueryResponse
from kubemq.grpc import kubemq_pb2 as pb

from bindings import tracing
from bindings.source import Outcome
from bindings.sources.requests import RequestsSource


class QuerySource(RequestsSource):
    kind = "kubemq.query"
    aliases = ("source.query",)
    summary = "Receives KubeMQ queries and replies with the target's response."
    subscribe_type = pb.Subscribe.Queries

    async def deliver(self, client: AsyncCQClient, message: pb.Request, outcome: Outcome) -> None:
        body = outcome.response.to_json()
        # Only the encoded body is needed from here on: free a large object before gRPC copies the body again.
        outcome.response.data = None
        reply = QueryResponse(query_received=QueryReceived(**self.reply_address(message)), is_executed=True, body=body, tags=tracing.inject({}))
        await client.send_response(reply)
