"""The ``kubemq.kubemq`` gRPC service: authorization, error mapping and RPC dispatch.

The semantics live in the pattern modules (``request_reply``, ``events``,
``queues``, ``downstream``, ``stream_queue``); this module only maps RPCs onto them.
Every handler is wrapped so that no exception escapes as UNKNOWN: the SDK
retries UNKNOWN, which would duplicate queries. Refusals go out with their own
code and exact text; anything unexpected is logged and sent as INTERNAL.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc
import structlog
from kubemq.grpc import kubemq_pb2 as pb
from kubemq.grpc import kubemq_pb2_grpc

from devbroker.downstream import DownstreamSession
from devbroker.events import EventsHub
from devbroker.queues import QueueStore
from devbroker.request_reply import RequestReplyExchange
from devbroker.routing import Kind, Subscription, SubscriptionRegistry
from devbroker.stream_queue import StreamTransaction
from devbroker.validation import ERR_AUTH_FAILED, ERR_SHUTDOWN, BrokerError, check_subscribe

log = structlog.get_logger("devbroker")

# Inside the range the SDK 4.1.5 is tested against, so it logs no version warning.
SERVER_VERSION = "2.5.0"

_Request = TypeVar("_Request")
_Reply = TypeVar("_Reply")
_Servicer = TypeVar("_Servicer", bound="BrokerServicer")


async def _abort_for(error: Exception, method: str, context: grpc.aio.ServicerContext) -> NoReturn:
    """End the call with the refusal's own status, or INTERNAL for a bug (logged)."""
    if isinstance(error, BrokerError):
        await context.abort(error.code, error.message)
    log.error("broker call failed", method=method, exc_info=error)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal broker error: {error}")
    raise AssertionError("grpc's abort raises")  # for the type checker: abort is not declared NoReturn


def unary_rpc(
    handler: Callable[[_Servicer, _Request, grpc.aio.ServicerContext], Awaitable[_Reply]],
) -> Callable[[_Servicer, _Request, grpc.aio.ServicerContext], Awaitable[_Reply]]:
    """Authorize, run, and map any failure to a gRPC status."""

    @functools.wraps(handler)
    async def guarded(self: _Servicer, request: _Request, context: grpc.aio.ServicerContext) -> _Reply:
        try:
            self.authorize(context, handler.__name__)
            return await handler(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as error:  # noqa: BLE001 - must never surface as UNKNOWN
            await _abort_for(error, handler.__name__, context)

    return guarded


def streaming_rpc(
    handler: Callable[[_Servicer, Any, grpc.aio.ServicerContext], AsyncIterator[_Reply]],
) -> Callable[[_Servicer, Any, grpc.aio.ServicerContext], AsyncIterator[_Reply]]:
    """Same guard as :func:`unary_rpc`, for server-streaming and bidi handlers."""

    @functools.wraps(handler)
    async def guarded(self: _Servicer, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[_Reply]:
        replies = handler(self, request, context)
        try:
            self.authorize(context, handler.__name__)
            async for reply in replies:
                yield reply
        except grpc.aio.AbortError:
            raise
        except Exception as error:  # noqa: BLE001 - must never surface as UNKNOWN
            await _abort_for(error, handler.__name__, context)
        finally:
            # Run the handler's cleanup (unsubscribe, hand back held messages) now, not at GC time.
            await replies.aclose()  # type: ignore[attr-defined]

    return guarded


class BrokerServicer(kubemq_pb2_grpc.kubemqServicer):
    """Implements every RPC of the ``kubemq.kubemq`` service in the SDK's generated stubs."""

    def __init__(self, registry: SubscriptionRegistry, queues: QueueStore, *, auth_token: str | None) -> None:
        self._registry = registry
        self._requests = RequestReplyExchange(registry)
        self._events = EventsHub(registry)
        self._queues = queues
        self._auth_token = auth_token
        self._host = socket.gethostname()
        self._started_at = int(time.time())

    def authorize(self, context: grpc.aio.ServicerContext, method: str) -> None:
        """Check the raw ``authorization`` metadata token.

        Ping is the exception when it carries no token at all: SDK 4.1.5 strips
        the token from Ping (``transport/interceptors.py``), so checking it
        there would make every authorized client fail to connect. A token that
        *is* sent with Ping must still be the right one.
        """
        if self._auth_token is None:
            return
        token = dict(context.invocation_metadata() or ()).get("authorization")
        if token is None:
            if method == "Ping":
                return
            raise BrokerError(ERR_AUTH_FAILED + "missing authorization token", grpc.StatusCode.UNAUTHENTICATED)
        if token != self._auth_token:
            raise BrokerError(ERR_AUTH_FAILED + "invalid authorization token", grpc.StatusCode.UNAUTHENTICATED)

    @unary_rpc
    async def Ping(self, request: pb.Empty, context: grpc.aio.ServicerContext) -> pb.PingResult:
        now = int(time.time())
        return pb.PingResult(
            Host=self._host,
            Version=SERVER_VERSION,
            ServerStartTime=self._started_at,
            ServerUpTimeSeconds=max(0, now - self._started_at),
        )

    @unary_rpc
    async def SendRequest(self, request: pb.Request, context: grpc.aio.ServicerContext) -> pb.Response:
        return await self._requests.request(request)

    @unary_rpc
    async def SendResponse(self, request: pb.Response, context: grpc.aio.ServicerContext) -> pb.Empty:
        self._requests.respond(request)
        return pb.Empty()

    @streaming_rpc
    async def SubscribeToRequests(self, request: pb.Subscribe, context: grpc.aio.ServicerContext) -> AsyncIterator[pb.Request]:
        check_subscribe(request, (pb.Subscribe.Commands, pb.Subscribe.Queries))
        kind: Kind = "commands" if request.SubscribeTypeData == pb.Subscribe.Commands else "queries"
        subscription = self._registry.add(kind, request.Channel, request.Group, request.ClientID)
        async for message in self._deliver(subscription):
            yield message

    @unary_rpc
    async def SendEvent(self, request: pb.Event, context: grpc.aio.ServicerContext) -> pb.Result:
        return self._events.publish(request)

    @streaming_rpc
    async def SendEventsStream(self, request_iterator: AsyncIterator[pb.Event], context: grpc.aio.ServicerContext) -> AsyncIterator[pb.Result]:
        """Like the server: a result for every stored event, and for plain events only on failure."""
        async for event in request_iterator:
            try:
                result = self._events.publish(event)
            except BrokerError as error:
                yield pb.Result(EventID=event.EventID, Sent=False, Error=error.message)
                continue
            if event.Store:
                yield result

    @streaming_rpc
    async def SubscribeToEvents(self, request: pb.Subscribe, context: grpc.aio.ServicerContext) -> AsyncIterator[pb.EventReceive]:
        async for message in self._deliver(self._events.subscribe(request)):
            yield message

    async def _deliver(self, subscription: Subscription) -> AsyncIterator[pb.Request | pb.EventReceive]:
        """Stream a subscription until the client leaves or the broker closes it (UNAVAILABLE)."""
        try:
            while (message := await subscription.next()) is not None:
                yield message
        finally:
            self._registry.remove(subscription)
        raise BrokerError(ERR_SHUTDOWN, grpc.StatusCode.UNAVAILABLE)

    @unary_rpc
    async def SendQueueMessage(self, request: pb.QueueMessage, context: grpc.aio.ServicerContext) -> pb.SendQueueMessageResult:
        return self._queues.send(request)

    @unary_rpc
    async def SendQueueMessagesBatch(self, request: pb.QueueMessagesBatchRequest, context: grpc.aio.ServicerContext) -> pb.QueueMessagesBatchResponse:
        if not request.Messages:
            raise BrokerError("no messages to send")
        results = self._queues.send_batch(request.Messages)
        return pb.QueueMessagesBatchResponse(BatchID=request.BatchID, Results=results, HaveErrors=any(result.IsError for result in results))

    @streaming_rpc
    async def QueuesUpstream(self, request_iterator: AsyncIterator[pb.QueuesUpstreamRequest], context: grpc.aio.ServicerContext) -> AsyncIterator[pb.QueuesUpstreamResponse]:
        async for request in request_iterator:
            if not request.Messages:
                yield pb.QueuesUpstreamResponse(RefRequestID=request.RequestID, IsError=True, Error="no messages to send")
                continue
            yield pb.QueuesUpstreamResponse(RefRequestID=request.RequestID, Results=self._queues.send_batch(request.Messages))

    @streaming_rpc
    async def QueuesDownstream(self, request_iterator: AsyncIterator[pb.QueuesDownstreamRequest], context: grpc.aio.ServicerContext) -> AsyncIterator[pb.QueuesDownstreamResponse]:
        """Requests are handled one at a time, so a waiting Get delays the stream's acks, as on the server."""
        session = DownstreamSession(self._queues)
        try:
            async for request in request_iterator:
                response = await session.handle(request)
                if response is not None:
                    yield response
        finally:
            session.close()

    @streaming_rpc
    async def StreamQueueMessage(self, request_iterator: AsyncIterator[pb.StreamQueueMessagesRequest], context: grpc.aio.ServicerContext) -> AsyncIterator[pb.StreamQueueMessagesResponse]:
        """One message per stream (kubemq-js and kubemq-go manual ack); the stream ends with its transaction."""
        async with contextlib.aclosing(StreamTransaction(self._queues).run(request_iterator)) as replies:
            async for reply in replies:
                yield reply

    @unary_rpc
    async def ReceiveQueueMessages(self, request: pb.ReceiveQueueMessagesRequest, context: grpc.aio.ServicerContext) -> pb.ReceiveQueueMessagesResponse:
        return await self._queues.receive(request)

    @unary_rpc
    async def AckAllQueueMessages(self, request: pb.AckAllQueueMessagesRequest, context: grpc.aio.ServicerContext) -> pb.AckAllQueueMessagesResponse:
        return await self._queues.ack_all(request)
