"""KubeMQ as a binding's destination: kubemq-sources' ``kubemq.queue``, ``kubemq.events``, ``kubemq.events-store``, ``kubemq.command`` and ``kubemq.query``.

Each target sends the request's data as the message body, as kubemq-sources'
targets do (``SetBody(request.Data)``), and its metadata as the message's
metadata string. A send counts as done only when KubeMQ (or, for commands and
queries, the far side) confirmed it; anything else raises, so the source that
produced the request knows it was not delivered:

* queue: the send result is not an error;
* events: the send call returned; events-store: the store said ``Sent``;
* command: ``Executed``; query: ``Executed`` and, when the reply body is a
  kubemq-targets Response, ``is_error`` false. kubemq-sources took an
  executed query whose body said ``is_error: true`` for a success.

One SDK client per binding is kept; a connection failure drops it, so the next
send connects afresh instead of waiting on a dead channel.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import uuid
from typing import Any, ClassVar

from kubemq import (
    AsyncCQClient,
    AsyncPubSubClient,
    AsyncQueuesClient,
    ClientConfig,
    CommandMessage,
    EventMessage,
    EventStoreMessage,
    KubeMQError,
    KubeMQTimeoutError,
    QueryMessage,
    QueueMessage,
    RetryPolicy,
)

from bindings.context import RequestContext, TargetContext
from bindings.errors import TargetError
from bindings.kubemq.connection import KubemqClientProperties, OutputChannel
from bindings.kubemq.sdk import send_event, send_queue_message, send_serialized_request
from bindings.kubemq.subscription import CONNECTION_FAILURES
from bindings.limits import SERVER_MESSAGE_LIMIT
from bindings.properties import field
from bindings.target import Call, Method, RequestMetadata, Target
from bindings.wire import Request, Response

# kubemq-sources' default address, for configs that leave it out.
DEFAULT_ADDRESS = "localhost:50000"
# kubemq-sources waits this long for a command's or query's reply by default.
DEFAULT_TIMEOUT_SECONDS = 600
MAX_INT32 = 2**31 - 1


class KubemqTargetProperties(KubemqClientProperties):
    """Where a KubeMQ target sends (kubemq-sources names)."""

    address: str = field(DEFAULT_ADDRESS, description="KubeMQ gRPC address `host:port`, or `embedded` to send to the built-in development broker.", example="kubemq-cluster-grpc.kubemq:50000")
    channel: OutputChannel = field(description="Channel to send each message to.", example="queue.s3")


class QueueTargetProperties(KubemqTargetProperties):
    """A queue message's policy, as kubemq-sources' ``kubemq.queue`` target sets it."""

    delay_seconds: int = field(0, ge=0, le=MAX_INT32, description="Seconds before a sent message becomes visible to receivers.", example=0)
    expiration_seconds: int = field(0, ge=0, le=MAX_INT32, description="Seconds after which an unreceived message expires (0: never).", example=0)
    max_receive_count: int = field(0, ge=0, le=MAX_INT32, description="Receives before the message goes to `dead_letter_queue` (0: no limit).", example=0)
    dead_letter_queue: OutputChannel = field("", description="Queue that takes a message received `max_receive_count` times.", example="queue.s3.dead")


class RequestTargetProperties(KubemqTargetProperties):
    """How long a command or query waits for the far side."""

    timeout_seconds: int = field(DEFAULT_TIMEOUT_SECONDS, ge=1, le=MAX_INT32, description="Seconds to wait for the reply; past it the send counts as failed.", example=60)


class SendMetadata(RequestMetadata):
    """A KubeMQ target reads no request metadata: the whole request goes out as one message."""


async def _no_handler(owner: Any, metadata: Any, request: Request, context: RequestContext) -> Response:
    raise NotImplementedError  # a KubeMQ target's ``handle`` sends; the method only names the operation


SEND = Method(name="send", metadata=SendMetadata, handler=_no_handler, summary="Send the request's data as one message.")


class KubemqTarget(Target):
    """What the five KubeMQ target kinds share: one client, made on first use and after a lost connection."""

    properties_model: ClassVar[type[KubemqTargetProperties]] = KubemqTargetProperties
    # Only a query brings the far side's reply back; the other patterns confirm receipt at most.
    answers: ClassVar[bool] = False

    def __init__(self) -> None:
        self.properties: Any = None
        self._client: Any = None
        self._client_id = ""
        self._lock = asyncio.Lock()

    async def init(self, properties: Any, context: TargetContext) -> None:
        await self.close()
        self.properties = properties
        # kubemq-sources names its clients after the binding too.
        self._client_id = properties.client_id or f"{context.binding}-{uuid.uuid4().hex[:8]}"
        await self._connected()  # an unreachable KubeMQ fails the start, and /ready says why
        context.log.info(f"{self.kind} target ready", address=properties.address, channel=properties.channel)

    def resolve(self, request: Request) -> Call:
        return Call(request, SEND, SendMetadata())

    async def handle(self, call: Call, context: RequestContext) -> Response:
        client = None
        try:
            client = await self._connected()
            return await self.send(client, call.request)
        except KubeMQTimeoutError as exc:
            # Slow, not gone: the connection stays (a dropped one would cancel the other sends on it).
            raise TargetError(f"KubeMQ at {self.properties.address}: no answer in time: {_first_line(exc)}", code="Timeout", retryable=True) from exc
        except CONNECTION_FAILURES as exc:
            if client is not None:
                await self._drop(client)
            raise TargetError(f"KubeMQ at {self.properties.address} did not take the message: {_first_line(exc)}", code="ConnectionLost", retryable=True) from exc
        except KubeMQError as exc:
            raise TargetError(f"KubeMQ refused the message: {_first_line(exc)}", code=type(exc).__name__) from exc

    @abc.abstractmethod
    def new_client(self, config: ClientConfig) -> Any:
        """An unconnected SDK client of this kind's pattern."""

    @abc.abstractmethod
    async def send(self, client: Any, request: Request) -> Response:
        """Send ``request`` once; return only when the send is confirmed, else raise."""

    async def _connected(self) -> Any:
        async with self._lock:
            if self._client is None:
                config = ClientConfig(
                    **self.properties.sdk_options(),
                    client_id=self._client_id,
                    max_send_size=SERVER_MESSAGE_LIMIT,
                    max_receive_size=SERVER_MESSAGE_LIMIT,
                    connection_pool_size=1,
                    # A retried send could deliver the message twice; the producing source retries instead.
                    retry_policy=RetryPolicy(max_retries=0),
                )
                client = self.new_client(config)
                try:
                    await client.connect()
                except BaseException:
                    with contextlib.suppress(Exception):
                        await client.close()
                    raise
                self._client = client
            return self._client

    async def _drop(self, client: Any) -> None:
        async with self._lock:
            if self._client is client:
                self._client = None
        with contextlib.suppress(Exception):
            await client.close()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _metadata(request: Request) -> str | None:
    """The message's metadata string: the request's metadata as JSON, or none."""
    return json.dumps(request.metadata, separators=(",", ":")) if request.metadata else None


class QueueTarget(KubemqTarget):
    kind = "kubemq.queue"
    properties_model = QueueTargetProperties
    summary = "Send each request's data as a KubeMQ queue message (kubemq-sources' `kubemq.queue`)."

    def new_client(self, config: ClientConfig) -> AsyncQueuesClient:
        return AsyncQueuesClient(config=config)

    async def send(self, client: AsyncQueuesClient, request: Request) -> Response:
        properties: QueueTargetProperties = self.properties
        message = QueueMessage(
            channel=properties.channel,
            metadata=_metadata(request),
            body=request.data,
            delay_in_seconds=properties.delay_seconds,
            expiration_in_seconds=properties.expiration_seconds,
            max_receive_count=properties.max_receive_count,
            max_receive_queue=properties.dead_letter_queue,
        )
        result = await send_queue_message(client, message)
        if result.is_error:
            raise TargetError(f"queue send refused: {result.error}", code="QueueSendRefused")
        return Response.ok(message_id=result.id or "")


class EventsTarget(KubemqTarget):
    kind = "kubemq.events"
    summary = "Publish each request's data as a KubeMQ event (kubemq-sources' `kubemq.events`); nobody confirms receipt."

    def new_client(self, config: ClientConfig) -> AsyncPubSubClient:
        return AsyncPubSubClient(config=config)

    async def send(self, client: AsyncPubSubClient, request: Request) -> Response:
        event = EventMessage(channel=self.properties.channel, metadata=_metadata(request), body=request.data)
        result = await send_event(client, event)
        if not result.Sent and result.Error:  # as the SDK's send_event_unary judges a plain event
            raise TargetError(f"event send refused: {result.Error}", code="EventSendRefused")
        return Response.ok(message_id=event.id)


class EventsStoreTarget(KubemqTarget):
    kind = "kubemq.events-store"
    summary = "Publish each request's data to a KubeMQ events-store channel (kubemq-sources' `kubemq.events-store`); done when the store keeps it."

    def new_client(self, config: ClientConfig) -> AsyncPubSubClient:
        return AsyncPubSubClient(config=config)

    async def send(self, client: AsyncPubSubClient, request: Request) -> Response:
        message = EventStoreMessage(channel=self.properties.channel, metadata=_metadata(request), body=request.data)
        result = await send_event(client, message)
        if not result.Sent:
            raise TargetError(f"events-store send refused: {result.Error}", code="EventsStoreSendRefused")
        return Response.ok(message_id=message.id)


class CommandTarget(KubemqTarget):
    kind = "kubemq.command"
    properties_model = RequestTargetProperties
    summary = "Send each request's data as a KubeMQ command (kubemq-sources' `kubemq.command`); done when the far side executed it."

    def new_client(self, config: ClientConfig) -> AsyncCQClient:
        return AsyncCQClient(config=config)

    async def send(self, client: AsyncCQClient, request: Request) -> Response:
        properties: RequestTargetProperties = self.properties
        command = CommandMessage(channel=properties.channel, metadata=_metadata(request), body=request.data, timeout_in_seconds=properties.timeout_seconds)
        reply = await send_serialized_request(client, command)
        if not reply.is_executed:
            raise TargetError(f"command not executed: {reply.error or 'no reason given'}", code="NotExecuted", retryable=True)
        return Response.ok()


class QueryTarget(KubemqTarget):
    kind = "kubemq.query"
    properties_model = RequestTargetProperties
    answers = True
    summary = (
        "Send each request's data as a KubeMQ query (kubemq-sources' `kubemq.query`); done when the far side executed it "
        "and, if it answers with a kubemq-targets Response, that says `is_error: false`."
    )

    def new_client(self, config: ClientConfig) -> AsyncCQClient:
        return AsyncCQClient(config=config)

    async def send(self, client: AsyncCQClient, request: Request) -> Response:
        properties: RequestTargetProperties = self.properties
        query = QueryMessage(channel=properties.channel, metadata=_metadata(request), body=request.data, timeout_in_seconds=properties.timeout_seconds)
        reply = await send_serialized_request(client, query)
        if not reply.is_executed:
            raise TargetError(f"query not executed: {reply.error or 'no reason given'}", code="NotExecuted", retryable=True)
        answer = _kubemq_targets_reply(reply.body)
        if answer is None:
            return Response.ok(reply.body or None)
        if answer.is_error:
            raise TargetError(f"the far side failed: {answer.last_error or 'is_error without a message'}", code="FarSideError")
        return answer


def _kubemq_targets_reply(body: bytes) -> Response | None:
    """``body`` read as a kubemq-targets Response (parsed once), or None when it is something else."""
    try:
        value = json.loads(body)
    except ValueError:
        return None
    if not isinstance(value, dict) or "is_error" not in value:
        return None
    try:
        return Response.from_mapping(value)
    except (ValueError, TypeError):  # bad base64 data, metadata that is not an object
        return None


TARGETS: tuple[type[Target], ...] = (QueueTarget, EventsTarget, EventsStoreTarget, CommandTarget, QueryTarget)
