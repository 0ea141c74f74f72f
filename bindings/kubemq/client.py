"""A kubemq-targets client: send one request with the official SDK, in any pattern, and show the result.

Used by ``kubemq-s3 send``. It speaks only the wire format, so it works with
any kubemq-targets target, not only this connector:

* ``query``: waits for the reply (the Response JSON);
* ``command``: waits for ``Executed`` (true, or false with the error);
* ``queue``, ``events``, ``events-store``: prints the send result and, with a
  response channel, waits for the Response JSON published there.

Responses are matched to the request by the ``request_id`` tag this
connector sets; a response without that tag (as kubemq-targets sends them)
is taken as the answer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from kubemq import (
    AsyncCancellationToken,
    AsyncCQClient,
    AsyncPubSubClient,
    AsyncQueuesClient,
    CommandMessage,
    EventMessage,
    EventsStoreSubscription,
    EventsSubscription,
    EventStoreMessage,
    KubeMQAuthenticationError,
    KubeMQConnectionError,
    KubeMQError,
    KubeMQTimeoutError,
    QueryMessage,
    QueueMessage,
    RetryPolicy,
    TLSConfig,
)
from kubemq.pubsub.events_store_subscription import EventStoreStartPosition

from bindings.kubemq import SOURCES
from bindings.kubemq.sdk import flush_downstream, send_serialized_request
from bindings.limits import SERVER_MESSAGE_LIMIT
from bindings.wire import Request, Response

# A send pattern: a KubeMQ source kind's name without ``kubemq.`` (``query``, ``command``, ``queue``, ``events``, ``events-store``).
Pattern = str
PATTERNS: tuple[Pattern, ...] = tuple(source.kind.removeprefix("kubemq.") for source in SOURCES)
# The singular spellings earlier versions of ``send`` took, still accepted.
PATTERN_ALIASES = {"event": "events", "event-store": "events-store"}


def pattern_named(name: str) -> Pattern:
    """The pattern ``name`` stands for (its own name, or an earlier spelling); ``ValueError`` for none."""
    pattern = PATTERN_ALIASES.get(name, name)
    if pattern not in PATTERNS:
        raise ValueError(f"unknown pattern {name!r}; patterns: {', '.join(PATTERNS)}")
    return pattern


# How far back an events-store response subscription starts, so a response
# published while the subscription is being registered is still replayed.
EVENTS_STORE_LOOKBACK_SECONDS = 1
EVENTS_SUBSCRIBE_PAUSE_SECONDS = 0.2
# The server's answer to a query or command that nobody took in time, or that nothing subscribes to
# (kubemq-community cannot tell the two apart); the SDK usually gives up first with its own timeout.
NO_REPLY_ERROR = "Error 301"
# What a failed exchange raises when nothing came back (``explain_failure`` says which it was).
FAILURES = (TimeoutError, KubeMQError, ValueError)


@dataclass(frozen=True)
class Connection:
    """Where and as whom to connect."""

    address: str
    auth_token: str | None = None
    client_id: str = "send"
    tls: TLSConfig | None = None

    def options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "address": self.address,
            "client_id": self.client_id,
            "max_send_size": SERVER_MESSAGE_LIMIT,
            "max_receive_size": SERVER_MESSAGE_LIMIT,
            "connection_pool_size": 1,
            # A retried send would run the request twice.
            "retry_policy": RetryPolicy(max_retries=0),
        }
        if self.auth_token:
            options["auth_token"] = self.auth_token
        if self.tls is not None:
            options["tls"] = self.tls
        return options


@dataclass(frozen=True)
class Sent:
    """What a fire-and-forget send returned."""

    pattern: Pattern
    channel: str
    id: str

    def shown(self) -> dict[str, Any]:
        return {"sent": True, "pattern": self.pattern, "channel": self.channel, "id": self.id}


async def query(address: str, channel: str, request: Request, *, timeout: int = 30, auth_token: str | None = None, client_id: str = "send", tls: TLSConfig | None = None) -> Response:
    """Send ``request`` as a KubeMQ query and return the decoded reply."""
    async with AsyncCQClient(**Connection(address, auth_token, client_id, tls).options()) as client:
        return await _send_query(client, channel, request, timeout)


async def _send_query(client: AsyncCQClient, channel: str, request: Request, timeout: int) -> Response:
    # Serialized with the body joined in once: ``send_query`` would hold a large upload part four times over.
    reply = await send_serialized_request(client, QueryMessage(channel=channel, body=request.to_json(), timeout_in_seconds=timeout))
    if not reply.is_executed:
        return Response.failure(reply.error or "query was not executed")
    return Response.from_json(reply.body)


async def command(connection: Connection, channel: str, request: Request, *, timeout: int = 30) -> Response:
    """Send ``request`` as a KubeMQ command; the reply carries only success or the error."""
    async with AsyncCQClient(**connection.options()) as client:
        reply = await send_serialized_request(client, CommandMessage(channel=channel, body=request.to_json(), timeout_in_seconds=timeout))
    return Response(is_error=not reply.is_executed, error=reply.error if not reply.is_executed else "")


async def send_queue(connection: Connection, channel: str, request: Request) -> Sent:
    """Put ``request`` on a queue."""
    async with AsyncQueuesClient(**connection.options()) as client:
        result = await client.send_queue_message_simple(QueueMessage(channel=channel, body=request.to_json()))
    if result.is_error:
        raise KubeMQError(f"queue send refused: {result.error}")
    return Sent("queue", channel, result.id or "")


async def publish(connection: Connection, channel: str, request: Request, *, store: bool) -> Sent:
    """Publish ``request`` as an event, or an events-store message when ``store``."""
    async with AsyncPubSubClient(**connection.options()) as client:
        return await _publish(client, channel, request, store=store)


async def _publish(client: AsyncPubSubClient, channel: str, request: Request, *, store: bool) -> Sent:
    if not store:
        event = EventMessage(channel=channel, body=request.to_json())
        await client.send_event_unary(event)
        return Sent("events", channel, event.id)
    message = EventStoreMessage(channel=channel, body=request.to_json())
    result = await client.send_event_store(message)
    if not result.sent:
        raise KubeMQError(f"events-store send refused: {result.error}")
    return Sent("events-store", channel, message.id)


def _answers(tags: dict[str, str], request_id: str) -> bool:
    """Is this response the one for ``request_id``? Untagged ones (kubemq-targets) are taken."""
    return tags.get("request_id", request_id) == request_id


async def send_queue_and_wait(connection: Connection, channel: str, request: Request, response_channel: str, *, timeout: int) -> tuple[Sent, Response]:
    """Queue ``request``, then take its response from the ``response_channel`` queue.

    Other requests' responses met on the way are not consumed: they go back
    to the queue, unchanged, when this client leaves.
    """
    sent = await send_queue(connection, channel, request)
    async with AsyncQueuesClient(**connection.options()) as client:
        async with asyncio.timeout(timeout):
            while True:
                # One at a time: a poll for more would wait out its timeout before returning.
                polled = await client.receive_queue_messages(response_channel, max_messages=1, wait_timeout_seconds=1, auto_ack=False)
                if polled.is_error:
                    raise KubeMQError(f"queue poll refused: {polled.error}")
                for message in polled.messages:
                    if _answers(message.tags, sent.id):
                        await message.async_ack()
                        await flush_downstream(client)
                        return sent, Response.from_json(message.body)


async def publish_and_wait(connection: Connection, channel: str, request: Request, response_channel: str, *, store: bool, timeout: int) -> tuple[Sent, Response]:
    """Subscribe to ``response_channel``, publish ``request``, and wait for its response there.

    KubeMQ does not acknowledge subscriptions. Events-store responses are safe
    anyway (the subscription starts a moment in the past); for plain events
    the request goes out only after a short pause and a round trip to the
    server, so the subscription is in place before the response can be.
    """
    async with AsyncPubSubClient(**connection.options()) as client:
        token = AsyncCancellationToken()
        received: asyncio.Queue[tuple[dict[str, str], bytes]] = asyncio.Queue()

        async def collect() -> None:
            async for item in _event_responses(client, response_channel, store, token):
                await received.put(item)

        reader = asyncio.create_task(collect())
        try:
            if not store:
                await asyncio.sleep(EVENTS_SUBSCRIBE_PAUSE_SECONDS)
                await client.ping()
            sent = await _publish(client, channel, request, store=store)
            async with asyncio.timeout(timeout):
                while True:
                    tags, body = await received.get()
                    if _answers(tags, sent.id):
                        return sent, Response.from_json(body)
        finally:
            token.cancel()
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader


async def _event_responses(client: AsyncPubSubClient, channel: str, store: bool, token: AsyncCancellationToken) -> AsyncIterator[tuple[dict[str, str], bytes]]:
    """(tags, body) of every event (or events-store message) on ``channel`` from now on."""
    if store:
        subscription = EventsStoreSubscription(
            channel=channel,
            on_receive_event_callback=lambda _: None,
            events_store_type=EventStoreStartPosition.StartAtTimeDelta,
            events_store_time_delta_seconds=EVENTS_STORE_LOOKBACK_SECONDS,
        )
        async for stored in client.subscribe_to_events_store(subscription, token):
            yield stored.tags, stored.body
    else:
        async for event in client.subscribe_to_events(EventsSubscription(channel=channel, on_receive_event_callback=lambda _: None), token):
            yield event.tags, event.body


def explain_failure(exc: Exception, address: str, channel: str, *, timeout: int, response_channel: str | None) -> str:
    """What went wrong, on one line naming where (a timeout adds a hint line); the SDK's multi-line advice is left out."""
    if isinstance(exc, TimeoutError):  # waiting on the response channel
        return (
            f"error: no response on {response_channel} within {timeout}s (request sent to {channel} at {address})\n"
            f"hint: is a binding subscribed to {channel}, with response_channel {response_channel}?"
        )
    if not isinstance(exc, KubeMQError):
        return f"error: {exc}"
    first_line = exc.message.splitlines()[0] if exc.message else type(exc).__name__
    if isinstance(exc, KubeMQTimeoutError) or NO_REPLY_ERROR in first_line:
        return (
            f"error: no reply from {channel} at {address} within {timeout}s\n"
            f"hint: is a connector subscribed to {channel}? KubeMQ answers a request that nothing subscribes to "
            "only with this timeout; check the binding's channel and kind, or raise --timeout for a slow operation"
        )
    if _unreachable(exc):
        return f"error: cannot reach KubeMQ at {address}: {first_line.removeprefix(f'Failed to connect to {address}: ')}"
    return f"error: KubeMQ at {address}: {first_line}"


def _unreachable(exc: KubeMQError) -> bool:
    """A connection that failed for the network or TLS (wrong credentials are a refusal, said as such)."""
    return any(isinstance(e, KubeMQConnectionError) and not isinstance(e, KubeMQAuthenticationError) for e in (exc, exc.cause))


def readable(response: Response) -> dict[str, Any]:
    """The reply as JSON with ``data`` decoded: a JSON value, text, or base64 for binary."""
    shown: dict[str, Any] = {"metadata": response.metadata, "is_error": response.is_error, "error": response.error}
    if response.data is None:
        shown["data"] = None
        return shown
    try:
        text = response.data.decode("utf-8")
    except UnicodeDecodeError:
        shown["data_base64"] = base64.b64encode(response.data).decode("ascii")
        return shown
    try:
        shown["data"] = json.loads(text)
    except ValueError:
        shown["data"] = text
    return shown


Exchange = Callable[[Connection, str, Request, int, "str | None"], Awaitable[tuple[Sent | None, Response | None]]]


async def _query_exchange(connection: Connection, channel: str, request: Request, timeout: int, response_channel: str | None) -> tuple[Sent | None, Response | None]:
    return None, await query(connection.address, channel, request, timeout=timeout, auth_token=connection.auth_token, client_id=connection.client_id, tls=connection.tls)


async def _command_exchange(connection: Connection, channel: str, request: Request, timeout: int, response_channel: str | None) -> tuple[Sent | None, Response | None]:
    return None, await command(connection, channel, request, timeout=timeout)


async def _queue_exchange(connection: Connection, channel: str, request: Request, timeout: int, response_channel: str | None) -> tuple[Sent | None, Response | None]:
    if response_channel:
        return await send_queue_and_wait(connection, channel, request, response_channel, timeout=timeout)
    return await send_queue(connection, channel, request), None


def _publish_exchange(*, store: bool) -> Exchange:
    async def exchange(connection: Connection, channel: str, request: Request, timeout: int, response_channel: str | None) -> tuple[Sent | None, Response | None]:
        if response_channel:
            return await publish_and_wait(connection, channel, request, response_channel, store=store, timeout=timeout)
        return await publish(connection, channel, request, store=store), None

    return exchange


# How each pattern is sent; a test holds it to ``PATTERNS`` (a source kind without a sender is caught there).
SENDERS: dict[Pattern, Exchange] = {
    "query": _query_exchange,
    "command": _command_exchange,
    "queue": _queue_exchange,
    "events": _publish_exchange(store=False),
    "events-store": _publish_exchange(store=True),
}


async def exchange(connection: Connection, pattern: Pattern, channel: str, request: Request, *, timeout: int, response_channel: str | None) -> tuple[Sent | None, Response | None]:
    """Send in ``pattern``; what was sent (fire-and-forget patterns) and the response, if one is awaited."""
    return await SENDERS[pattern_named(pattern)](connection, channel, request, timeout, response_channel)


class Session:
    """Many requests to one channel, each with its response: a client reused across them.

    Only patterns that bring a response back qualify: ``query``, and
    ``queue``, ``events``, ``events-store`` with a response channel (each of
    those requests is its own exchange). ``concurrent`` says whether several
    requests may be in flight at once: not on a response queue, whose poller
    holds the other requests' responses until it leaves.
    """

    def __init__(self, connection: Connection, pattern: Pattern, channel: str, *, timeout: int, response_channel: str | None = None) -> None:
        if pattern == "command" or (pattern != "query" and not response_channel):
            raise ValueError(f"a {pattern} brings no response back" + ("" if pattern == "command" else " without a response channel"))
        self.connection, self.pattern, self.channel = connection, pattern, channel
        self.timeout, self.response_channel = timeout, response_channel
        self.concurrent = pattern != "queue"
        self._client: AsyncCQClient | None = None

    async def __aenter__(self) -> Session:
        if self.pattern == "query":
            client = AsyncCQClient(**self.connection.options())
            self._client = await client.__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.__aexit__(exc_type, exc, traceback)

    async def request(self, request: Request) -> Response:
        """The response to ``request``; raises one of ``FAILURES`` when nothing came back."""
        if self._client is not None:
            return await _send_query(self._client, self.channel, request, self.timeout)
        _, response = await exchange(self.connection, self.pattern, self.channel, request, timeout=self.timeout, response_channel=self.response_channel)
        if response is None:
            raise ValueError(f"a {self.pattern} gets no response without a response channel")
        return response


async def send_request(
    address: str,
    channel: str,
    metadata: dict[str, str],
    data: bytes,
    *,
    timeout: int,
    auth_token: str | None,
    output: Path | None,
    pattern: Pattern = "query",
    response_channel: str | None = None,
    tls: TLSConfig | None = None,
    client_id: str = "send",
) -> int:
    """Send, print the result; exit code 0 for success, 1 for an error reply, 2 if nothing came back."""
    request = Request(metadata=metadata, data=data)
    try:
        sent, response = await exchange(Connection(address, auth_token, client_id, tls), pattern, channel, request, timeout=timeout, response_channel=response_channel)
    except FAILURES as exc:
        print(explain_failure(exc, address, channel, timeout=timeout, response_channel=response_channel), file=sys.stderr)
        return 2
    return report(sent, response, output)


def report(sent: Sent | None, response: Response | None, output: Path | None) -> int:
    """Print what an exchange gave (``--output``: the data goes to that file); 0, or 1 for an error reply."""
    if sent is not None:
        print(json.dumps(sent.shown(), indent=2))
    if response is None:
        return 0
    if output is not None and response.data is not None:
        try:
            output.write_bytes(response.data)
        except OSError as exc:
            print(f"error: cannot write --output {output}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        response = Response(response.metadata, None, response.is_error, response.error)
        print(f"data written to {output}", file=sys.stderr)
    print(json.dumps(readable(response), indent=2, ensure_ascii=False))
    return 1 if response.is_error else 0
