"""Shared pieces of the source tests: configs, a connector starter that waits for every subscription, SDK helpers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from kubemq import (
    AsyncCancellationToken,
    AsyncCQClient,
    AsyncPubSubClient,
    AsyncQueuesClient,
    CommandMessage,
    EventsStoreSubscription,
    EventsSubscription,
    QueueMessage,
    RetryPolicy,
)
from kubemq.pubsub.events_store_subscription import EventStoreStartPosition

from bindings.kubemq.client import query
from bindings.registry import Registry
from bindings.wire import Request, Response
from devbroker import EmbeddedBroker
from tests.fixtures.echo_target import EchoTarget
from tests.fixtures.kubemq import RunningConnector, StartConnector
from tests.fixtures.registries import ECHO_REGISTRY

REGISTRY = ECHO_REGISTRY
SUBSCRIBER_KINDS = {"kubemq.query": "queries", "kubemq.command": "commands", "kubemq.events": "events", "kubemq.events-store": "events_store"}


async def start(start_connector: StartConnector, broker: EmbeddedBroker, yaml: str, registry: Registry = REGISTRY) -> RunningConnector:
    """Start a connector and wait until the broker routes to every one of its subscriptions."""
    running = await start_connector(yaml, registry)
    await wait_subscribed(running, broker)
    return running


async def wait_subscribed(running: RunningConnector, broker: EmbeddedBroker) -> None:
    await running.wait_ready()
    for item in running.runtime.engine.bindings.values():
        kind = SUBSCRIBER_KINDS.get(item.spec.source.kind)
        if kind:
            await broker.wait_for_subscribers(item.spec.source.properties.channel, item.spec.source.properties.sources, kind=kind)


def echo_target(running: RunningConnector, name: str) -> EchoTarget:
    target = running.runtime.engine.bindings[name].target
    assert isinstance(target, EchoTarget)
    return target


def options(broker: EmbeddedBroker, client_id: str = "test-sender") -> dict[str, Any]:
    return {"address": broker.address, "client_id": client_id, "connection_pool_size": 1, "retry_policy": RetryPolicy(max_retries=0)}


async def enqueue(broker: EmbeddedBroker, channel: str, metadata: dict[str, str], data: bytes = b"", **policy: Any) -> str:
    """Send one request to a queue with the SDK; returns its message id."""
    async with AsyncQueuesClient(**options(broker)) as client:
        result = await client.send_queue_message(QueueMessage(channel=channel, body=Request(metadata=metadata, data=data).to_json(), **policy))
    assert not result.is_error, result.error
    return str(result.id)


@dataclass
class Taken:
    """A message taken from a queue by ``take``."""

    id: str
    body: bytes
    tags: dict[str, str]
    receive_count: int

    @property
    def response(self) -> Response:
        return Response.from_json(self.body)


async def take(broker: EmbeddedBroker, channel: str, count: int = 1, timeout: float = 10.0) -> list[Taken]:
    """Take (and ack) exactly ``count`` messages from a queue, waiting up to ``timeout``."""
    found: list[Taken] = []
    async with AsyncQueuesClient(**options(broker, "test-reader")) as client:
        async with asyncio.timeout(timeout):
            while len(found) < count:
                polled = await client.receive_queue_messages(channel, max_messages=count - len(found), wait_timeout_seconds=1, auto_ack=True)
                assert not polled.is_error, polled.error
                found += [Taken(m.id, m.body, dict(m.tags), m.receive_count) for m in polled.messages]
    return found


async def queue_depth(broker: EmbeddedBroker, channel: str) -> int:
    """Messages waiting on a queue (peeked, not taken)."""
    async with AsyncQueuesClient(**options(broker, "test-peeker")) as client:
        peeked = await client.peek_queue_messages(channel, max_messages=1024, wait_timeout_seconds=0)
    return len(peeked.messages)


@dataclass
class Listener:
    """Events (or events-store messages) seen on a channel: (tags, body) in arrival order."""

    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def responses(self) -> list[Response]:
        return [Response.from_json(body) for _, body in self.received]


@asynccontextmanager
async def listen(broker: EmbeddedBroker, channel: str, *, store: bool = False) -> AsyncIterator[Listener]:
    """Subscribe with the SDK to ``channel`` (events, or events-store from the first) for the block's duration."""
    listener = Listener()
    token = AsyncCancellationToken()
    async with AsyncPubSubClient(**options(broker, "test-listener")) as client:

        async def collect() -> None:
            if store:
                subscription = EventsStoreSubscription(channel=channel, on_receive_event_callback=lambda _: None, events_store_type=EventStoreStartPosition.StartFromFirst)
                async for stored in client.subscribe_to_events_store(subscription, token):
                    listener.received.append((dict(stored.tags), stored.body))
            else:
                async for event in client.subscribe_to_events(EventsSubscription(channel=channel, on_receive_event_callback=lambda _: None), token):
                    listener.received.append((dict(event.tags), event.body))

        reader = asyncio.create_task(collect())
        try:
            await broker.wait_for_subscribers(channel, 1, kind="events_store" if store else "events")
            yield listener
        finally:
            token.cancel()
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


class PeakInFlight:
    """The most requests a source had in flight while the block ran (sampled every 5 ms)."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.peak = 0
        self._watcher: asyncio.Task[None] | None = None

    async def __aenter__(self) -> PeakInFlight:
        self._watcher = asyncio.create_task(self._watch())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._watcher is not None
        self._watcher.cancel()

    async def _watch(self) -> None:
        while True:
            self.peak = max(self.peak, self.source.in_flight)
            await asyncio.sleep(0.005)


async def send(broker: EmbeddedBroker, channel: str, metadata: dict[str, str], data: bytes = b"", timeout: int = 10) -> Response:
    return await query(broker.address, channel, Request(metadata=metadata, data=data), timeout=timeout)


def printed_json(text: str) -> list[dict[str, object]]:
    """The JSON documents ``send`` printed, in order."""
    decoder, found, position = json.JSONDecoder(), [], 0
    while (position := text.find("{", position)) != -1:
        document, position = decoder.raw_decode(text, position)
        found.append(document)
    return found


async def send_command(broker: EmbeddedBroker, channel: str, metadata: dict[str, str], timeout: int = 10) -> tuple[bool, str]:
    async with AsyncCQClient(**options(broker)) as client:
        reply = await client.send_command(CommandMessage(channel=channel, body=Request(metadata=metadata).to_json(), timeout_in_seconds=timeout))
    return reply.is_executed, reply.error


def copied(message: Any) -> Any:
    copy = type(message)()
    copy.CopyFrom(message)
    return copy
