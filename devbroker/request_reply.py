"""Queries and commands: NATS-style request/reply over private inboxes.

Each ``SendRequest`` gets a fresh ``_INBOX.<id>`` written into
``Request.ReplyChannel``; ``SendResponse`` resolves whatever waits on that
inbox. Matching is on the inbox only (never RequestID), the first reply wins,
and late or unknown replies are accepted and dropped, as on the real server.
"""

from __future__ import annotations

import asyncio
import uuid

from kubemq.grpc import kubemq_pb2 as pb

from devbroker.routing import Kind, SubscriptionRegistry
from devbroker.validation import ERR_REQUEST_TIMEOUT, BrokerError, check_request, check_response

_KIND_BY_REQUEST_TYPE: dict[int, Kind] = {pb.Request.Command: "commands", pb.Request.Query: "queries"}


class RequestReplyExchange:
    """Forwards requests to subscribers and hands the first reply back to the requester."""

    def __init__(self, registry: SubscriptionRegistry) -> None:
        self._registry = registry
        self._waiting: dict[str, asyncio.Future[pb.Response]] = {}

    async def request(self, request: pb.Request) -> pb.Response:
        """Deliver and wait up to ``request.Timeout`` ms; with no subscriber that is the full timeout."""
        check_request(request)
        kind = _KIND_BY_REQUEST_TYPE[request.RequestTypeData]
        forwarded = pb.Request()
        forwarded.CopyFrom(request)
        forwarded.RequestID = request.RequestID or uuid.uuid4().hex
        inbox = f"_INBOX.{uuid.uuid4().hex}"
        forwarded.ReplyChannel = inbox
        reply = asyncio.get_running_loop().create_future()
        self._waiting[inbox] = reply
        try:
            self._registry.publish(kind, request.Channel, forwarded)
            response = await asyncio.wait_for(reply, request.Timeout / 1000)
        except TimeoutError:
            raise BrokerError(ERR_REQUEST_TIMEOUT) from None
        finally:
            del self._waiting[inbox]
        return _as_seen_by_requester(kind, response)

    def respond(self, response: pb.Response) -> None:
        """Resolve the waiting request, if any; a reply nobody waits for is not an error."""
        check_response(response)
        reply = self._waiting.get(response.ReplyChannel)
        if reply is not None and not reply.done():
            reply.set_result(response)


def _as_seen_by_requester(kind: Kind, response: pb.Response) -> pb.Response:
    """The server strips the inbox, and for commands also the payload fields."""
    result = pb.Response()
    result.CopyFrom(response)
    result.ReplyChannel = ""
    if kind == "commands":
        result.Body = b""
        result.Metadata = ""
        result.CacheHit = False
    return result
