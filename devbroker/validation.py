"""Validation rules and exact error strings of the KubeMQ server.

The strings and the order of the checks are copied from kubemq-community
v2.3.7 (``pkg/entities/errors.go``, ``pkg/client/validatation.go`` and the
queue policy checks in ``pkg/client/queue.go``), because clients and tests
compare them literally. The queue limits are that server's config defaults.
Each ``check_*`` function raises the first failing rule as a
:class:`BrokerError`. Requests, responses, events and subscriptions refuse
with a gRPC status (INTERNAL unless stated); queue operations put the same
text in the reply's ``Error`` field instead, as the real server does.
"""

from __future__ import annotations

import grpc
from kubemq.grpc import kubemq_pb2 as pb

ERR_CLIENT_ID_EMPTY = "Error 101: invalid clientID value, cannot be empty"
ERR_CHANNEL_EMPTY = "Error 102: invalid channel value, cannot be empty"
ERR_CHANNEL_WILDCARD = "Error 107: invalid channel value, no wildcards are allowed"
ERR_CHANNEL_WHITESPACE = "Error 108: invalid channel value, no white spaces are allowed"
ERR_TIMEOUT_NOT_POSITIVE = "Error 109: invalid set timeout value, cannot be 0 or negative"
ERR_MESSAGE_EMPTY = "Error 110: invalid message, cannot be empty"
ERR_STORE_TYPE_UNDEFINED = "Error 111: invalid subscription type, cannot be undefined or 0"
ERR_START_SEQUENCE = "Error 112: invalid subscription type start at sequence value, cannot by 0 or negative"
ERR_START_TIME = "Error 113: invalid subscription type start at time value, cannot by 0 or negative"
ERR_START_TIME_DELTA = "Error 114: invalid subscription type start at time delta value, cannot by 0 or negative"
ERR_REQUEST_EMPTY = "Error 115: invalid request, cannot be empty"
ERR_CACHE_TTL_NOT_POSITIVE = "Error 116: invalid cache ttl value, cannot be 0 or negative"
ERR_REQUEST_ID_EMPTY = "Error 117: invalid request id, cannot be empty"
ERR_STORE_PARAMS_ON_EVENTS = "Error 118: event store parameters were set but subscribe type is not event store"
ERR_CHANNEL_TRAILING_DOT = "Error 119: invalid channel value, cannot end with `.`"
ERR_INVALID_QUEUE_NAME = "Error 120: invalid queue name value, cannot be empty, contains wildcards ,white spaces and end with dot"
ERR_INVALID_MAX_MESSAGES = "Error 122: max messages should be between 1 and max message setting in kubemq config  "
ERR_NO_MESSAGE_TO_ACK = "Error 124: no active message to ack"
ERR_INVALID_ACK_SEQUENCE = "Error 125: ack sequence cannot be 0 or negative"
ERR_NO_MESSAGE_TO_SEND = "Error 126: no active message to send"
ERR_INVALID_VISIBILITY = "Error 127: invalid visibility time, cannot be negative or exceed setting in kubemq config"
ERR_SUBSCRIPTION_ACTIVE = "Error 128: subscription to queue is already active"
ERR_VISIBILITY_EXPIRED = "Error 129: current visibility timer expired"
ERR_SENDING_QUEUE_MESSAGE = "Error 130: error during send message to queue"
ERR_INVALID_QUEUE_MESSAGE = "Error 131: invalid queue message"
ERR_INVALID_STREAM_REQUEST_TYPE = "Error 132: invalid stream queue messages request type"
ERR_INVALID_EXPIRATION = "Error 133: invalid expiration seconds, exceed max expiration seconds setting in kubemq config"
ERR_INVALID_MAX_RECEIVE_COUNT = "Error 134: invalid max received count, cannot be negative or exceed max receive count setting in kubemq config"
ERR_INVALID_DELAY = "Error 135: invalid delay seconds, exceed max delay seconds setting in kubemq config"
ERR_INVALID_WAIT_TIMEOUT = "Error 136: invalid wait timeout, value cannot be negative or exceed max wait timeout seconds setting in kubemq config"
ERR_NO_MESSAGE_TO_REJECT = "Error 137: no active message to reject"
ERR_NO_NEW_MESSAGE = "Error 138: no new message in queue, wait time expired"
ERR_INVALID_REQUEST_TYPE = "Error 206: invalid request type"
ERR_INVALID_SUBSCRIBE_TYPE = "Error 207: invalid subscribe type"
ERR_REQUEST_TIMEOUT = "Error 301: timeout for request message"
ERR_SHUTDOWN = "Error 409: server is in shutdown mode"
ERR_AUTH_FAILED = "Error 421: authentication verification failed, "

# kubemq-community config defaults (config/queue.go).
MAX_NUMBER_OF_MESSAGES = 1024
MAX_WAIT_TIMEOUT_SECONDS = 3600
MAX_EXPIRATION_SECONDS = 43200
MAX_DELAY_SECONDS = 43200
MAX_RECEIVE_COUNT = 1024
MAX_VISIBILITY_SECONDS = 43200
DEFAULT_VISIBILITY_SECONDS = 60


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


def check_event(event: pb.Event) -> None:
    """``SendEvent``/``SendEventsStream``, events and events-store alike (tags alone do not count)."""
    _check_client_id(event.ClientID)
    _check_channel(event.Channel, allow_wildcards=False)
    if not event.Metadata and not event.Body:
        raise BrokerError(ERR_MESSAGE_EMPTY)


def check_events_subscribe(subscribe: pb.Subscribe) -> None:
    """``SubscribeToEvents``: wildcards only for plain events, and a valid start position for the store."""
    check_subscribe(subscribe, (pb.Subscribe.Events, pb.Subscribe.EventsStore))
    store_type = subscribe.EventsStoreTypeData
    if subscribe.SubscribeTypeData == pb.Subscribe.Events:
        if store_type != pb.Subscribe.EventsStoreTypeUndefined:
            raise BrokerError(ERR_STORE_PARAMS_ON_EVENTS)
        return
    if "*" in subscribe.Channel or ">" in subscribe.Channel:
        raise BrokerError(ERR_CHANNEL_WILDCARD)
    if store_type == pb.Subscribe.EventsStoreTypeUndefined:
        raise BrokerError(ERR_STORE_TYPE_UNDEFINED)
    value_errors = {
        pb.Subscribe.StartAtSequence: ERR_START_SEQUENCE,
        pb.Subscribe.StartAtTime: ERR_START_TIME,
        pb.Subscribe.StartAtTimeDelta: ERR_START_TIME_DELTA,
    }
    if store_type in value_errors and subscribe.EventsStoreTypeValue <= 0:
        raise BrokerError(value_errors[store_type])


def check_queue_name(channel: str) -> None:
    """Queue names share one error for every defect."""
    if not channel or channel.endswith(".") or " " in channel or "*" in channel or ">" in channel:
        raise BrokerError(ERR_INVALID_QUEUE_NAME)


def check_queue_message(message: pb.QueueMessage) -> None:
    """A queue message, then its policy, in the order of ``preSendQueueMessage``."""
    _check_client_id(message.ClientID)
    check_queue_name(message.Channel)
    if not message.Metadata and not message.Body:
        raise BrokerError(ERR_MESSAGE_EMPTY)
    policy = message.Policy
    if not 0 <= policy.ExpirationSeconds <= MAX_EXPIRATION_SECONDS:
        raise BrokerError(ERR_INVALID_EXPIRATION)
    if not 0 <= policy.MaxReceiveCount <= MAX_RECEIVE_COUNT:
        raise BrokerError(ERR_INVALID_MAX_RECEIVE_COUNT)
    if not 0 <= policy.DelaySeconds <= MAX_DELAY_SECONDS:
        raise BrokerError(ERR_INVALID_DELAY)
    if policy.MaxReceiveQueue:
        check_queue_name(policy.MaxReceiveQueue)


def check_queue_reader(client_id: str, channel: str) -> None:
    """Who reads and from which queue: ``QueuesDownstream`` Get, receive, ack-all."""
    _check_client_id(client_id)
    check_queue_name(channel)


def check_wait_seconds(wait_seconds: int) -> None:
    if not 0 <= wait_seconds <= MAX_WAIT_TIMEOUT_SECONDS:
        raise BrokerError(ERR_INVALID_WAIT_TIMEOUT)


def check_receive_request(request: pb.ReceiveQueueMessagesRequest) -> None:
    """``ReceiveQueueMessages`` (receive and peek)."""
    check_queue_reader(request.ClientID, request.Channel)
    if not 1 <= request.MaxNumberOfMessages <= MAX_NUMBER_OF_MESSAGES:
        raise BrokerError(ERR_INVALID_MAX_MESSAGES)
    check_wait_seconds(request.WaitTimeSeconds)


def _check_visibility(seconds: int) -> None:
    if not 0 <= seconds <= MAX_VISIBILITY_SECONDS:
        raise BrokerError(ERR_INVALID_VISIBILITY)


def check_stream_queue_request(request: pb.StreamQueueMessagesRequest) -> None:
    """``StreamQueueMessage``: the client, then what its request type needs, in the server's order."""
    _check_client_id(request.ClientID)
    kind = request.StreamRequestTypeData
    if kind == pb.StreamRequestType.ReceiveMessage:
        check_queue_name(request.Channel)
        _check_visibility(request.VisibilitySeconds)
        check_wait_seconds(request.WaitTimeSeconds)
    elif kind in (pb.StreamRequestType.AckMessage, pb.StreamRequestType.RejectMessage):
        if request.RefSequence == 0:
            raise BrokerError(ERR_INVALID_ACK_SEQUENCE)
    elif kind == pb.StreamRequestType.ResendMessage:
        check_queue_name(request.Channel)
    elif kind == pb.StreamRequestType.ModifyVisibility:
        _check_visibility(request.VisibilitySeconds)
    elif kind == pb.StreamRequestType.SendModifiedMessage:
        if not request.HasField("ModifiedMessage"):
            raise BrokerError(ERR_INVALID_QUEUE_MESSAGE)
        check_queue_message(request.ModifiedMessage)
        _check_visibility(request.VisibilitySeconds)
    else:
        raise BrokerError(ERR_INVALID_STREAM_REQUEST_TYPE)
