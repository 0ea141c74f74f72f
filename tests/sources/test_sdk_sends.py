"""The serialized sends of ``bindings/kubemq/sdk.py`` against the embedded broker.

What the broker receives from a source's serialized response is what the
SDK's own send of the same response would have sent (fields, tags with the
request's trace context, client id, channel), and the gRPC callables behind
the sends are made once per channel, and again after a reconnect.
"""

from __future__ import annotations

import gc
import os
import weakref
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubemq import AsyncCQClient, EventMessage, EventStoreMessage, QueryReceived, QueryResponse, QueueMessage
from kubemq.grpc import kubemq_pb2 as pb
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider

from bindings import otel, tracing
from bindings.kubemq import sdk
from bindings.kubemq.events import EventsProperties, EventsSource, EventsStoreProperties, EventsStoreSource
from bindings.kubemq.queue import Batch, Polled, QueueProperties, QueueSource
from bindings.limits import MIB
from bindings.source import Outcome
from bindings.wire import Response
from connector.product import IDENTITY
from devbroker import EmbeddedBroker
from devbroker.events import EventsHub
from devbroker.queues import QueueStore
from tests.sources.support import copied, enqueue, options


@pytest.fixture
async def traced() -> AsyncIterator[None]:
    """Tracing on, so that a response carries its request's trace context in its tags."""
    running = otel.Tracing(TracerProvider(), IDENTITY)
    assert tracing.install(running) is None
    yield
    await tracing.stop(running)


@pytest.fixture
def broker_received(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every event and queue message the broker is sent from now on, as it decoded it."""
    received: list[Any] = []
    publish, send = EventsHub.publish, QueueStore.send

    def publishing(hub: EventsHub, event: pb.Event) -> pb.Result:
        received.append(copied(event))
        return publish(hub, event)

    def sending(store: QueueStore, message: pb.QueueMessage) -> pb.SendQueueMessageResult:
        received.append(copied(message))
        return send(store, message)

    monkeypatch.setattr(EventsHub, "publish", publishing)
    monkeypatch.setattr(QueueStore, "send", sending)
    return received


def without_id(message: Any) -> Any:
    """The message with its id cleared (the SDK makes one per message), once checked to be there."""
    field = "EventID" if isinstance(message, pb.Event) else "MessageID"
    assert getattr(message, field)
    message.ClearField(field)
    return message


def traced_sender() -> tuple[dict[str, str], str]:
    """The tags of a request from a traced sender (its context as the SDK's carrier writes it), and its trace id."""
    span = TracerProvider().get_tracer("sender").start_span("send", kind=trace.SpanKind.PRODUCER)
    tags: dict[str, str] = {}
    propagate.inject(tags, context=trace.set_span_in_context(span))
    return tags, f"{span.get_span_context().trace_id:032x}"


def large_response() -> Response:
    """A ``get_item``-like success whose body's size takes a 4-byte varint."""
    return Response.ok(os.urandom(3 * MIB), bucket="b", key="k")


def check_same(serialized: Any, by_sdk: Any, trace_id: str) -> None:
    assert without_id(serialized) == without_id(by_sdk)
    assert serialized.Tags["traceparent"].split("-")[1] == trace_id  # the request's trace, continued
    assert len(serialized.Body) > 4 * MIB


@pytest.mark.parametrize("store", [False, True], ids=["events", "events-store"])
async def test_a_published_response_reaches_the_broker_as_the_sdks_send_would_send_it(traced: None, broker: EmbeddedBroker, broker_received: list[Any], store: bool) -> None:
    properties = (EventsStoreProperties if store else EventsProperties)(address=broker.address, channel="sdk.ev", response_channel="sdk.ev.resp")
    source = (EventsStoreSource if store else EventsSource)(properties, "identity")  # type: ignore[arg-type]
    tags, trace_id = traced_sender()
    request = sdk.received(pb.EventReceive(EventID="req-1", Channel="sdk.ev", Body=b"{}", Tags=tags).SerializeToString(), pb.EventReceive)
    response = large_response()
    client = source.new_client(source.properties.client_config(0))
    await client.connect()
    try:
        with tracing.consume(source, request):
            body, tags = response.to_json(), tracing.inject({"request_id": "req-1"})  # before the source drops the data
            await source.deliver(client, request, Outcome(response))
            if store:
                assert (await client.send_event_store(EventStoreMessage(channel="sdk.ev.resp", body=body, tags=tags))).sent
            else:
                await client.send_event_unary(EventMessage(channel="sdk.ev.resp", body=body, tags=tags))
    finally:
        await client.close()
    serialized, sent_by_sdk = broker_received
    assert (serialized.Store, serialized.ClientID) == (store, source._client_id)
    check_same(serialized, sent_by_sdk, trace_id)


async def test_a_queue_response_reaches_the_broker_as_the_sdks_send_would_send_it(traced: None, broker: EmbeddedBroker, broker_received: list[Any]) -> None:
    source = QueueSource(QueueProperties(address=broker.address, channel="sdk.qu", response_channel="sdk.qu.resp"), "identity")
    tags, trace_id = traced_sender()
    await enqueue(broker, "sdk.qu", {"method": "get_item"}, tags=tags)
    response = large_response()
    client = source.new_client(source.properties.client_config(0))
    await client.connect()
    try:
        [received] = (await client.receive_queue_messages("sdk.qu", max_messages=1, wait_timeout_seconds=5, auto_ack=False)).messages
        message = Polled(received, Batch(1))
        with tracing.consume(source, message):
            by_sdk = QueueMessage(channel="sdk.qu.resp", body=response.to_json(), tags=tracing.inject({"request_id": received.id}))  # before the source drops the data
            await source.deliver(client, message, Outcome(response))
            assert not (await client.send_queue_message_simple(by_sdk)).is_error
    finally:
        await client.close()
    _, serialized, sent_by_sdk = broker_received  # the request, then the two responses
    assert serialized.ClientID == source._client_id
    check_same(serialized, sent_by_sdk, trace_id)


def reply(client: AsyncCQClient) -> bytes:
    """A query reply nobody waits for: the broker checks it and drops it."""
    received = QueryReceived(id="r-1", from_client_id="sender", channel="sdk.sends", reply_channel="sdk.sends.inbox")
    return sdk.serialized_response(QueryResponse(query_received=received, is_executed=True).encode(client.config.client_id or ""), [b"{}"])


async def test_the_send_callables_are_made_once_per_channel_and_again_after_a_reconnect(broker: EmbeddedBroker) -> None:
    async with AsyncCQClient(**options(broker, "test-responder")) as client:
        transport = client._transport
        await sdk.send_serialized_response(client, reply(client), "sdk.sends.inbox")
        first = sdk._callables(transport)
        await sdk.send_serialized_response(client, reply(client), "sdk.sends.inbox")
        assert sdk._callables(transport) is first
        old_channel = transport._channel
        await transport._reconnect()  # what the SDK does when a connection is lost: a new channel, the old one closed
        assert transport._channel is not old_channel
        await sdk.send_serialized_response(client, reply(client), "sdk.sends.inbox")  # a callable of the closed channel would fail
        assert sdk._callables(transport) is not first


async def test_a_closed_clients_transport_and_channel_are_let_go(broker: EmbeddedBroker) -> None:
    async with AsyncCQClient(**options(broker, "test-closed")) as client:
        await sdk.send_serialized_response(client, reply(client), "sdk.sends.inbox")
        transport, channel = weakref.ref(client._transport), weakref.ref(client._transport._channel)
        assert transport() in sdk._callables_of
    del client
    gc.collect()
    assert (transport(), channel()) == (None, None)  # not held by the callables kept for them
