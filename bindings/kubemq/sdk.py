"""The few places where the sources reach past the SDK's public surface, kept in one file.

The SDK's public subscribe methods decode each message into its own types,
which drop what the connector needs: ``QueryReceived``/``CommandReceived``
lose the request's ``Timeout`` (when the sender gives up), and the public
events-store iterators re-subscribe on their own with their own resume rule.
So the sources read the same transport streams the public methods read, and
still reply and publish through the public client methods.

A large reply is the third: the public sends (``send_response``,
``send_event_unary``, ``send_queue_message_simple``) put the body into a
protobuf message, which gRPC serializes into new bytes and then copies into
its own buffer, so the reply is held three times over at once.
``serialized_response`` builds the message's bytes with the body joined in
once (``serialized_reply`` from a response, its data dropped once encoded),
and ``send_serialized_response``, ``send_serialized_event`` and
``send_serialized_queue_message`` send them as the SDK sends a reply, an event
or a queue message, through a callable made once per gRPC channel.
``send_serialized_request`` does the same for a large query or command (the
``send`` command line's upload parts): ``send_query`` and ``send_command``
hold the body, the encoded request and its serialization at once, and gRPC's
copy on top.

Every channel gets its own TCP connection (``own_connections``). grpc-core
otherwise shares one connection between the channels of a process that have
the same address and settings, so a fresh client made to replace a dead
connection would be handed that same dead connection while any other client
still holds it, and would inherit its reconnect backoff. The SDK builds its
channel options in a private method, wrapped here once and checked at import.

Queue acks are the last gap: KubeMQ sends no reply to an ack, and the
SDK's ``close()`` cancels its downstream stream at once, so an ack queued just
before closing can be dropped and its message redelivered.
``flush_downstream`` closes that gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import importlib
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar, overload

import grpc
from google.protobuf.message import Message
from kubemq import (
    AsyncCQClient,
    AsyncQueuesClient,
    ClientConfig,
    CommandMessage,
    CommandResponse,
    EventMessage,
    EventStoreMessage,
    KubeMQTimeoutError,
    KubeMQValidationError,
    QueryMessage,
    QueryResponse,
    QueueMessage,
    QueueSendResult,
    from_grpc_error,
)
from kubemq.grpc import kubemq_pb2 as pb
from kubemq.transport.async_transport import AsyncTransport

from bindings.internals import Part, PrivateParts, attribute
from bindings.kubemq.connection import SubscriptionProperties

try:
    from kubemq._internal.semconv import MESSAGING_MESSAGE_BODY_SIZE, MESSAGING_MESSAGE_ID
    from kubemq._internal.telemetry import KubeMQTagsCarrier, error_code_to_error_type, serialize_span_to_bytes
except ImportError:  # another SDK version: KUBEMQ_PARTS says what is missing, and start-up stops there
    MESSAGING_MESSAGE_BODY_SIZE = MESSAGING_MESSAGE_ID = ""
from bindings.wire import LARGE_BODY, Body, Response

_REQUEST_TYPES = (pb.Subscribe.Commands, pb.Subscribe.Queries)
_SEND_RESPONSE = "/kubemq.kubemq/SendResponse"
_SEND_EVENT = "/kubemq.kubemq/SendEvent"
_SEND_QUEUE_MESSAGE = "/kubemq.kubemq/SendQueueMessage"
_SEND_REQUEST = "/kubemq.kubemq/SendRequest"
# Each serialized send: the type of its reply, and the SDK's error when it times out.
_SENDS: dict[str, tuple[Any, str]] = {
    _SEND_RESPONSE: (pb.Empty, "Send response timed out"),
    _SEND_EVENT: (pb.Result, "Send event timed out after {seconds}s"),
    _SEND_QUEUE_MESSAGE: (pb.SendQueueMessageResult, "Queue send timed out after {seconds}s"),
    _SEND_REQUEST: (pb.Response, "Request timed out after {seconds}s"),
}
# The field number of ``Body`` in each message type received or sent here, looked up once.
_BODY_FIELDS: dict[type[Message], int] = {message_type: message_type.DESCRIPTOR.fields_by_name["Body"].number for message_type in (pb.Request, pb.EventReceive, pb.Response, pb.Event, pb.QueueMessage)}
# A serialized query or command: the SDK's name for the operation (its retry rule) and the reply's type.
_REQUESTS: dict[type[Any], tuple[str, Any]] = {QueryMessage: ("SendQuery", QueryResponse), CommandMessage: ("SendCommand", CommandResponse)}


# A received message's type: a command or query, or an event (live or stored).
ReceivedT = TypeVar("ReceivedT", pb.Request, pb.EventReceive)
# The SDK's outgoing messages whose body is joined into their serialized form.
HeadedT = TypeVar("HeadedT", bound=QueryMessage | CommandMessage | QueueMessage | EventMessage | EventStoreMessage)


@dataclass(slots=True)
class Received(Generic[ReceivedT]):
    """A message as it arrived: its fields, and its body as a view into the received message.

    ``fields`` holds every field but a large ``Body``: reading ``Body`` from
    a protobuf message makes a new copy of it, which for a large upload would
    hold the object once more, on top of the message gRPC handed over.
    """

    fields: ReceivedT
    body: Body


async def subscription_stream(client: Any, subscribe: pb.Subscribe, stop: asyncio.Event) -> AsyncIterator[Any]:
    """Yield the messages of one subscription until ``stop`` is set or the stream ends.

    Commands and queries come as ``Received[pb.Request]``; events and
    events-store as ``Received[pb.EventReceive]`` (with its ``Sequence``).
    """
    requests = subscribe.SubscribeTypeData in _REQUEST_TYPES
    method, message_type = ("/kubemq.kubemq/SubscribeToRequests", pb.Request) if requests else ("/kubemq.kubemq/SubscribeToEvents", pb.EventReceive)
    async for message in _subscribe(client._transport, method, subscribe, stop):
        yield received(message, message_type)


async def _subscribe(transport: Any, method: str, subscribe: pb.Subscribe, stop: asyncio.Event) -> AsyncIterator[bytes]:
    """The SDK's ``subscribe_to_requests`` and ``subscribe_to_events``, step for step, but handing over each message's bytes (until ``stop``)."""
    transport._ensure_connected()
    call = transport._channel.unary_stream(method, request_serializer=pb.Subscribe.SerializeToString)(subscribe)
    await transport._register_stream(call)
    watchdog = asyncio.create_task(_cancel_call_on(stop, call))
    try:
        async for message in call:
            if transport._closing:
                break
            yield message
    except asyncio.CancelledError:
        pass
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.CANCELLED:
            if transport._is_connection_error(exc):
                await transport._on_connection_lost()
            raise from_grpc_error(exc) from exc
    finally:
        watchdog.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watchdog
        await transport._unregister_stream(call)


def received(message: bytes, message_type: type[ReceivedT]) -> Received[ReceivedT]:
    """Decode a ``message_type``'s bytes; a large body stays where it is, in ``message``."""
    span = None if len(message) < LARGE_BODY else _field_span(message, _BODY_FIELDS[message_type])
    if span is None:
        fields = message_type.FromString(message)
        return Received(fields, fields.Body)
    key, start, end = span
    return Received(message_type.FromString(message[:key] + message[end:]), memoryview(message)[start:end])


def _field_span(message: bytes, number: int) -> tuple[int, int, int] | None:
    """Where the last length-delimited field ``number`` is in ``message``: its key, and its value's start and end.

    Protobuf's wire format: each field is a varint key (number and wire type)
    and a value, varint, 8 or 4 bytes, or a length-prefixed run. A message
    ``FromString`` accepts has no malformed field; anything else gives None.
    """
    found = None
    position = 0
    try:
        while position < len(message):
            key_start = position
            key, position = _read_varint(message, position)
            wire_type = key & 7
            if wire_type == 0:
                _, position = _read_varint(message, position)
            elif wire_type == 1:
                position += 8
            elif wire_type == 5:
                position += 4
            elif wire_type == 2:
                length, position = _read_varint(message, position)
                if key >> 3 == number:
                    found = (key_start, position, position + length)
                position += length
            else:
                return None
    except IndexError:
        return None
    return found if position == len(message) else None


def _read_varint(message: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = message[position]
        value |= (byte & 0x7F) << shift
        position += 1
        if byte < 0x80:
            return value, position
        shift += 7


def subscribe_message(client: Any, properties: SubscriptionProperties, subscribe_type: int) -> pb.Subscribe:
    """The ``Subscribe`` of a subscription to ``properties.channel`` (start position left to the caller)."""
    return pb.Subscribe(
        SubscribeTypeData=subscribe_type,  # type: ignore[arg-type]
        ClientID=client.config.client_id or "",
        Channel=properties.channel,
        Group=properties.group,
    )


class Serialized(NamedTuple):
    """A ``serialized_response`` and the size of its body, which ``max_send_size`` limits."""

    wire: bytes
    body_size: int


def serialized_response(header: Message, body: Sequence[bytes]) -> bytes:
    """The wire bytes of ``header`` (a ``pb.Response``, ``pb.Event``, ``pb.QueueMessage`` or ``pb.Request``) with the pieces of ``body``, joined, as its ``Body``.

    Protobuf reads fields in any order, so the body simply follows the
    header's own fields (which must not include a body).
    """
    # The body's key: its field number, length-delimited (wire type 2).
    key = _BODY_FIELDS[type(header)] << 3 | 2
    return b"".join((header.SerializeToString(), _varint(key), _varint(sum(map(len, body))), *body))


def serialized_reply(header: Message, response: Response) -> Serialized:
    """``header`` with ``response``'s JSON as its body; the response's data is dropped once encoded, before the pieces are joined."""
    body = response.json_parts()
    response.data = None
    return Serialized(serialized_response(header, body), sum(map(len, body)))


async def send_serialized_response(client: Any, reply: bytes, reply_channel: str) -> None:
    """Send a ``serialized_response`` as ``client.send_response`` sends a response: its retries, deadline and errors."""
    client._ensure_connected()
    await client._retry_executor.execute("SendResponse", _call, client._transport, _SEND_RESPONSE, reply, channel=reply_channel)


async def send_serialized_event(client: Any, event: Serialized) -> pb.Result:
    """Send a serialized ``pb.Event`` as ``client.send_event_unary`` sends one: its size check, deadline and errors, no retries.

    A stored event (``Store``) goes the same way, as the Go SDK sends one
    (this SDK streams them); the caller reads the result (``Sent``, ``Error``).
    """
    result: pb.Result = await _send_once(client, _SEND_EVENT, event)
    return result


async def send_serialized_queue_message(client: Any, message: Serialized) -> QueueSendResult:
    """Send a serialized ``pb.QueueMessage`` as ``client.send_queue_message_simple`` sends one: its size check, deadline and errors, no retries."""
    return QueueSendResult.decode(await _send_once(client, _SEND_QUEUE_MESSAGE, message))


@overload
async def send_serialized_request(client: Any, message: QueryMessage) -> QueryResponse: ...
@overload
async def send_serialized_request(client: Any, message: CommandMessage) -> CommandResponse: ...
async def send_serialized_request(client: Any, message: QueryMessage | CommandMessage) -> QueryResponse | CommandResponse:
    """Send ``message`` as ``client.send_query`` or ``client.send_command`` sends it, its body joined straight into the serialized request.

    Its size check, span and trace tags, retries, deadline (the message's
    timeout), errors and metrics are the SDK's. The caller hands the only
    reference to ``message`` over: once its body is joined in, it is dropped.
    """
    client._validate_message_size(message.body)
    operation, reply_type = _REQUESTS[type(message)]
    channel, timeout = message.channel, message.timeout_in_seconds
    start = time.perf_counter()
    error_type = None
    with client._instrumentor.start_span("send", channel) as span:
        try:
            client._ensure_connected()
            header = _without_body(message).encode(client._config.client_id or "", span=serialize_span_to_bytes())
            tags = dict(header.Tags)
            KubeMQTagsCarrier(tags).inject()
            header.Tags.update(tags)
            if span.is_recording():
                span.set_attribute(MESSAGING_MESSAGE_ID, message.id)
                span.set_attribute(MESSAGING_MESSAGE_BODY_SIZE, len(message.body))
            wire = serialized_response(header, [message.body])
            del message  # the body is in ``wire`` now
            reply = await client._retry_executor.execute(operation, _call, client._pick_pool_transport(), _SEND_REQUEST, wire, timeout, channel=channel)
            client._instrumentor._metrics.record_sent_message("send", channel)
            decoded: QueryResponse | CommandResponse = reply_type.decode(reply)
            return decoded
        except (ValueError, TypeError) as exc:
            error_type = "validation"
            client._instrumentor.record_error(span, exc, error_type)
            raise KubeMQValidationError(str(exc), is_retryable=False) from exc
        except Exception as exc:
            error_type = error_code_to_error_type(getattr(exc, "code", None))
            client._instrumentor.record_error(span, exc, error_type)
            raise
        finally:
            client._instrumentor._metrics.record_operation_duration(time.perf_counter() - start, "send", channel, error_type)


def _without_body(message: HeadedT) -> HeadedT:
    """A copy of ``message`` with an empty body, for the SDK's own ``encode`` (its validation would refuse one made so)."""
    headless = copy.copy(message)
    object.__setattr__(headless, "body", b"")  # frozen dataclass
    return headless


async def send_queue_message(client: Any, message: QueueMessage) -> QueueSendResult:
    """Send ``message`` as ``client.send_queue_message_simple`` does, its body joined once, straight into the serialized message."""
    header = _without_body(message).encode_message(client.config.client_id or "")
    return await send_serialized_queue_message(client, Serialized(serialized_response(header, [message.body]), len(message.body)))


async def send_event(client: Any, message: EventMessage | EventStoreMessage) -> pb.Result:
    """Send an event (or an events-store message) as ``send_serialized_event`` does, its body joined once; the caller reads the result."""
    header = _without_body(message).encode(client.config.client_id or "")
    return await send_serialized_event(client, Serialized(serialized_response(header, [message.body]), len(message.body)))


async def _send_once(client: Any, method: str, message: Serialized) -> Any:
    # The SDK's size check reads only the body's length; the body is the message's tail.
    client._validate_message_size(memoryview(message.wire)[len(message.wire) - message.body_size :])
    client._ensure_connected()
    return await _call(client._transport, method, message.wire)


async def _call(transport: Any, method: str, request: bytes, timeout: int | None = None) -> Any:
    """One unary call of serialized bytes as the SDK's transport makes it: its deadline (``timeout``, or the default), reconnection and errors."""
    transport._ensure_connected()
    timeout = timeout or transport._config.default_timeout_seconds
    try:
        # A deadline on this task, not wait_for's: no task of its own per call.
        async with asyncio.timeout(timeout):
            return await _callables(transport)[method](request)
    except TimeoutError as exc:
        raise KubeMQTimeoutError(_SENDS[method][1].format(seconds=timeout)) from exc
    except grpc.aio.AioRpcError as exc:
        if transport._is_connection_error(exc):
            await transport._on_connection_lost()
        raise from_grpc_error(exc) from exc


# Per transport, its channel and the callables of ``_SENDS`` on it. A callable holds on to its
# channel, so keyed by the channel an entry would never go; keyed weakly by the transport, it goes
# with the client, and a reconnect (a new channel) replaces it.
_callables_of: weakref.WeakKeyDictionary[Any, tuple[Any, dict[str, Any]]] = weakref.WeakKeyDictionary()


def _callables(transport: Any) -> dict[str, Any]:
    """The callables of the serialized sends on the transport's current channel, made once per channel as the SDK's stub is."""
    channel = transport._channel
    cached = _callables_of.get(transport)
    if cached is None or cached[0] is not channel:
        calls = {method: channel.unary_unary(method, response_deserializer=reply.FromString, _registered_method=True) for method, (reply, _) in _SENDS.items()}
        cached = _callables_of[transport] = (channel, calls)
    return cached[1]


def _varint(value: int) -> bytes:
    """``value`` as a protobuf varint: 7 bits a byte, low first, the high bit set on all but the last."""
    encoded = bytearray()
    while value > 0x7F:
        encoded.append(value & 0x7F | 0x80)
        value >>= 7
    encoded.append(value)
    return bytes(encoded)


async def _cancel_call_on(stop: asyncio.Event, call: Any) -> None:
    await stop.wait()
    call.cancel()


async def flush_downstream(client: Any, timeout: float = 5.0) -> None:
    """Return once KubeMQ has handled every ack and reject sent on the client's downstream stream.

    The server handles a stream's requests in order, so the reply to one more
    request (an ``ActiveOffsets`` query, refused for naming no open
    transaction) proves the ones before it were handled.
    """
    receiver = client._downstream_receiver
    if receiver is None:
        return
    barrier = pb.QueuesDownstreamRequest(
        RequestID=uuid.uuid4().hex,
        ClientID=client.config.client_id or "",
        RequestTypeData=pb.QueuesDownstreamRequestType.ActiveOffsets,
        RefTransactionId=f"flush-{uuid.uuid4().hex}",
    )
    with contextlib.suppress(Exception):
        await asyncio.wait_for(receiver.send(barrier), timeout)


OWN_CONNECTION = ("grpc.use_local_subchannel_pool", 1)


def own_connections() -> None:
    """Give every channel the SDK opens from now on its own TCP connection (see the module's docstring); idempotent."""
    build = getattr(AsyncTransport, "_build_channel_options", None)
    if not callable(build) or getattr(build, "adds_own_connection", False):
        return  # missing: KUBEMQ_PARTS stops start-up with the reason

    def with_own_connection(transport: AsyncTransport) -> list[tuple[str, Any]]:
        return [*build(transport), OWN_CONNECTION]

    with_own_connection.adds_own_connection = True  # type: ignore[attr-defined]
    AsyncTransport._build_channel_options = with_own_connection  # type: ignore[method-assign,assignment]


own_connections()


def _sample_client() -> AsyncCQClient:
    """A client that is never connected (nothing opens): the instance attributes the SDK sets in its constructor."""
    return AsyncCQClient(address="127.0.0.1:1")


def _sample_transport() -> AsyncTransport:
    return AsyncTransport(ClientConfig(address="127.0.0.1:1"))


def _has_path(make: Any, path: str) -> bool:
    """Whether ``make()`` has the dotted attribute ``path``."""
    value = make()
    for name in path.split("."):
        if not hasattr(value, name):
            return False
        value = getattr(value, name)
    return True


def _instance(make: Any, label: str, path: str) -> Part:
    return Part(f"{label}.{path}", lambda: _has_path(make, path))


def _module_has(module: str, name: str) -> Part:
    return Part(f"{module}.{name}", lambda: hasattr(importlib.import_module(module), name))


# Every private part of the kubemq SDK this module uses; checked before the runtime starts anything.
KUBEMQ_PARTS = PrivateParts(
    library="kubemq",
    supported="==4.1.5",
    adapter="bindings/kubemq/sdk.py",
    parts=(
        *(attribute(AsyncTransport, name) for name in ("_ensure_connected", "_register_stream", "_unregister_stream", "_is_connection_error", "_on_connection_lost", "_build_channel_options")),
        *(_instance(_sample_transport, "AsyncTransport()", path) for path in ("_channel", "_closing", "_config.default_timeout_seconds")),
        *(
            _instance(_sample_client, "AsyncCQClient()", path)
            for path in (
                "_transport",
                "_config.client_id",
                "_retry_executor.execute",
                "_instrumentor.start_span",
                "_instrumentor.record_error",
                "_instrumentor._metrics.record_sent_message",
                "_instrumentor._metrics.record_operation_duration",
                "_ensure_connected",
                "_validate_message_size",
                "_pick_pool_transport",
            )
        ),
        _instance(lambda: AsyncQueuesClient(address="127.0.0.1:1"), "AsyncQueuesClient()", "_downstream_receiver"),
        _module_has("kubemq._internal.semconv", "MESSAGING_MESSAGE_BODY_SIZE"),
        _module_has("kubemq._internal.semconv", "MESSAGING_MESSAGE_ID"),
        *(_module_has("kubemq._internal.telemetry", name) for name in ("KubeMQTagsCarrier", "error_code_to_error_type", "serialize_span_to_bytes")),
    ),
)
