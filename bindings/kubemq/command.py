"""Source ``kubemq.command``: the sender only learns whether the request was done.

As kubemq-targets does, success is ``Executed=true`` with no body, failure is
``Executed=false`` with the error text; the target's data is not returned
(KubeMQ itself strips a command reply's body and metadata).
"""

from __future__ import annotations

from kubemq import AsyncCQClient, CommandReceived, CommandResponse
from kubemq.grpc import kubemq_pb2 as pb

from bindings import tracing
from bindings.kubemq.requests import RequestsSource
from bindings.kubemq.sdk import Received
from bindings.source import Outcome


class CommandSource(RequestsSource):
    kind = "kubemq.command"
    aliases = ("source.command",)
    summary = "Receives KubeMQ commands and replies Executed=true, or Executed=false with the error."
    subscribe_type = pb.Subscribe.Commands

    @property
    def max_reply_data(self) -> int | None:
        """A command reply carries no data, so no object is too big to fetch through one."""
        return None

    async def deliver(self, client: AsyncCQClient, message: Received[pb.Request], outcome: Outcome) -> None:
        response = outcome.response
        reply = CommandResponse(command_received=CommandReceived(**self.reply_address(message)), is_executed=not response.is_error, error=response.error, tags=tracing.inject({}))
        await client.send_response(reply)
