"""The ``kubemq.kubemq`` gRPC service: authorization, error mapping and RPC dispatch.

Every handler is wrapped so that no exception escapes as UNKNOWN: the SDK
retries UNKNOWN, which would duplicate queries. Refusals go out with their own
code and exact text; anything unexpected is logged and sent as INTERNAL.
"""

from __future__ import annotations

import functools
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc
from kubemq.grpc import kubemq_pb2 as pb
from kubemq.grpc import kubemq_pb2_grpc

from .request_reply import RequestReplyExchange
from .routing import SubscriptionRegistry
from .validation import ERR_AUTH_FAILED, ERR_SHUTDOWN, BrokerError, check_subscribe

log = logging.getLogger("bindings.broker")

# Inside the range the SDK 4.1.5 is tested against, so it logs no version warning.
SERVER_VERSION = "2.5.0"

_Request = TypeVar("_Request")
_Reply = TypeVar("_Reply")
_Servicer = TypeVar("_Servicer", bound="BrokerServicer")


async def _abort_for(error: Exception, method: str, context: grpc.aio.ServicerContext) -> NoReturn:
    """End the call with the refusal's own status, or INTERNAL for a bug (logged)."""
    if isinstance(error, BrokerError):
        await context.abort(error.code, error.message)
    log.exception("broker %s failed", method, exc_info=error)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal broker error: {error}")


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
        try:
            self.authorize(context, handler.__name__)
            async for reply in handler(self, request, context):
                yield reply
        except grpc.aio.AbortError:
            raise
        except Exception as error:  # noqa: BLE001 - must never surface as UNKNOWN
            await _abort_for(error, handler.__name__, context)

    return guarded


class BrokerServicer(kubemq_pb2_grpc.kubemqServicer):
    """Implements the RPCs the official SDK uses; the rest stay UNIMPLEMENTED."""

    def __init__(self, registry: SubscriptionRegistry, *, auth_token: str | None) -> None:
        self._registry = registry
        self._requests = RequestReplyExchange(registry)
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
    async def SubscribeToRequests(
        self, request: pb.Subscribe, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.Request]:
        check_subscribe(request, (pb.Subscribe.Commands, pb.Subscribe.Queries))
        kind = "commands" if request.SubscribeTypeData == pb.Subscribe.Commands else "queries"
        subscription = self._registry.add(kind, request.Channel, request.Group, request.ClientID)
        try:
            while (message := await subscription.next()) is not None:
                yield message
        finally:
            self._registry.remove(subscription)
        raise BrokerError(ERR_SHUTDOWN, grpc.StatusCode.UNAVAILABLE)
