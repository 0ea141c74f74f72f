"""Validation rules and exact error strings of the KubeMQ server.

The strings and the order of the checks are copied from kubemq-community
v2.3.7 (``pkg/entities/errors.go`` and ``pkg/client/validatation.go``), because
clients and tests compare them literally. Each ``check_*`` function raises the
first failing rule as a :class:`BrokerError`; the servicer turns it into a gRPC
status, INTERNAL unless stated otherwise, as the real server does.
"""

from __future__ import annotations

import grpc
from kubemq.grpc import kubemq_pb2 as pb

ERR_CLIENT_ID_EMPTY = "Error 101: invalid clientID value, cannot be empty"
ERR_CHANNEL_EMPTY = "Error 102: invalid channel value, cannot be empty"
ERR_CHANNEL_WILDCARD = "Error 107: invalid channel value, no wildcards are allowed"
ERR_CHANNEL_WHITESPACE = "Error 108: invalid channel value, no white spaces are allowed"
ERR_TIMEOUT_NOT_POSITIVE = "Error 109: invalid set timeout value, cannot be 0 or negative"
ERR_REQUEST_EMPTY = "Error 115: invalid request, cannot be empty"
ERR_CACHE_TTL_NOT_POSITIVE = "Error 116: invalid cache ttl value, cannot be 0 or negative"
ERR_REQUEST_ID_EMPTY = "Error 117: invalid request id, cannot be empty"
ERR_CHANNEL_TRAILING_DOT = "Error 119: invalid channel value, cannot end with `.`"
ERR_INVALID_REQUEST_TYPE = "Error 206: invalid request type"
ERR_INVALID_SUBSCRIBE_TYPE = "Error 207: invalid subscribe type"
ERR_REQUEST_TIMEOUT = "Error 301: timeout for request message"
ERR_SHUTDOWN = "Error 409: server is in shutdown mode"
ERR_AUTH_FAILED = "Error 421: authentication verification failed, "


class BrokerError(Exception):
    """A refusal the client must see verbatim, with the gRPC code to send it under."""

    def __init__(self, message: str, code: grpc.StatusCode = grpc.StatusCode.INTERNAL) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _check_client_id(client_id: str) -> None:
    if not client_id:
        raise BrokerError(ERR_CLIENT_ID_EMPTY)


def _check_channel(channel: str, *, allow_wildcards: bool) -> None:
    """Channel rules shared by senders (no wildcards) and subscribers (NATS wildcards allowed)."""
    if not channel:
        raise BrokerError(ERR_CHANNEL_EMPTY)
    if channel.endswith("."):
        raise BrokerError(ERR_CHANNEL_TRAILING_DOT)
    if " " in channel:
        raise BrokerError(ERR_CHANNEL_WHITESPACE)
    if not allow_wildcards and ("*" in channel or ">" in channel):
        raise BrokerError(ERR_CHANNEL_WILDCARD)


def check_request(request: pb.Request) -> None:
    """``SendRequest``: the request type first, then ``ValidateRequest`` in server order."""
    if request.RequestTypeData not in (pb.Request.Command, pb.Request.Query):
        raise BrokerError(ERR_INVALID_REQUEST_TYPE)
    _check_client_id(request.ClientID)
    _check_channel(request.Channel, allow_wildcards=False)
    if request.Timeout <= 0:
        raise BrokerError(ERR_TIMEOUT_NOT_POSITIVE)
    if not request.Metadata and not request.Body:
        raise BrokerError(ERR_REQUEST_EMPTY)
    if request.CacheKey and request.CacheTTL <= 0:
        raise BrokerError(ERR_CACHE_TTL_NOT_POSITIVE)


def check_response(response: pb.Response) -> None:
    """``SendResponse``: the reply channel is validated like a sender's channel."""
    _check_client_id(response.ClientID)
    _check_channel(response.ReplyChannel, allow_wildcards=False)
    if not response.RequestID:
        raise BrokerError(ERR_REQUEST_ID_EMPTY)


def check_subscribe(subscribe: pb.Subscribe, allowed_types: tuple[int, ...]) -> None:
    """Any ``SubscribeTo*``: the type must fit the RPC; wildcards are allowed here."""
    if subscribe.SubscribeTypeData not in allowed_types:
        raise BrokerError(ERR_INVALID_SUBSCRIBE_TYPE)
    _check_client_id(subscribe.ClientID)
    _check_channel(subscribe.Channel, allow_wildcards=True)
