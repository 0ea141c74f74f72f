"""Events and events-store through the fresh_broker: SDK on both sides, raw stub for exact server texts."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from kubemq import AsyncCancellationToken, AsyncPubSubClient
from kubemq.grpc import kubemq_pb2 as pb
from kubemq.pubsub import EventMessage, EventsStoreSubscription, EventsSubscription, EventStoreMessage
from kubemq.pubsub.events_store_subscription import EventStoreStartPosition

from devbroker import EmbeddedBroker
from tests.broker.support import internal_error, sdk_client


@contextlib.asynccontextmanager
async def event_listener(fresh_broker: EmbeddedBroker, channel: str, received: list, *, group: str | None = None) -> AsyncIterator[None]:
    """An SDK events subscriber appending what it gets to ``received``; registered before it yields."""
    async with sdk_client(AsyncPubSubClient, fresh_broker.address, f"listener-{len(received)}-{id(received)}") as client:
        token = AsyncCancellationToken()

        async def collect(event) -> None:
            received.append(event)

        subscription = EventsSubscription(channel=channel, group=group, on_receive_event_callback=lambda _: None)
        task = asyncio.create_task(client.subscribe_with_callback(subscription, collect, cancellation_token=token))
        try:
            yield
        finally:
            token.cancel()
            await asyncio.wait_for(task, 5)


async def _publish_store(stub, channel: str, count: int) -> None:
    for index in range(count):
        result = await stub.SendEvent(pb.Event(ClientID="p", Channel=channel, Body=b"%d" % index, Store=True))
        assert result.Sent


async def _read_sequences(stub, subscribe: pb.Subscribe, expected: int) -> list[int]:
    stream = stub.SubscribeToEvents(subscribe)
    try:
        return [(await asyncio.wait_for(stream.read(), 2)).Sequence for _ in range(expected)]
    finally:
        stream.cancel()


def _store_subscribe(start: int, value: int = 0, channel: str = "store") -> pb.Subscribe:
    return pb.Subscribe(
        SubscribeTypeData=pb.Subscribe.EventsStore,
        ClientID="reader",
        Channel=channel,
        EventsStoreTypeData=start,
        EventsStoreTypeValue=value,
    )


async def test_events_fan_out_to_plain_subscribers_and_one_per_group(fresh_broker: EmbeddedBroker) -> None:
    plain_a: list = []
    plain_b: list = []
    group_1: list = []
    group_2: list = []
    async with (
        event_listener(fresh_broker, "ev", plain_a),
        event_listener(fresh_broker, "ev", plain_b),
        event_listener(fresh_broker, "ev", group_1, group="g"),
        event_listener(fresh_broker, "ev", group_2, group="g"),
    ):
        await fresh_broker.wait_for_subscribers("ev", 4, kind="events")
        async with sdk_client(AsyncPubSubClient, fresh_broker.address, "publisher") as publisher:
            for index in range(20):
                await publisher.publish_event(EventMessage(channel="ev", body=b"%d" % index))
            await _until(lambda: len(plain_a) == len(plain_b) == len(group_1) + len(group_2) == 20)
    assert [event.body for event in plain_a] == [b"%d" % index for index in range(20)]
    assert group_1 and group_2
    assert plain_a[0].from_client_id == "publisher"
    assert plain_a[0].channel == "ev"


async def test_event_with_no_subscriber_is_gone(fresh_broker: EmbeddedBroker) -> None:
    async with sdk_client(AsyncPubSubClient, fresh_broker.address, "publisher") as publisher:
        await publisher.send_event_unary(EventMessage(channel="late", body=b"lost"))
        received: list = []
        async with event_listener(fresh_broker, "late", received):
            await fresh_broker.wait_for_subscribers("late", kind="events")
            await publisher.send_event_unary(EventMessage(channel="late", body=b"seen"))
            await _until(lambda: len(received) == 1)
    assert received[0].body == b"seen"


async def test_wildcard_events_subscription(fresh_broker: EmbeddedBroker, stub) -> None:
    stream = stub.SubscribeToEvents(pb.Subscribe(SubscribeTypeData=pb.Subscribe.Events, ClientID="w", Channel="metrics.*"))
    await fresh_broker.wait_for_subscribers("metrics.cpu", kind="events")
    await stub.SendEvent(pb.Event(ClientID="p", Channel="metrics.cpu", Metadata="m"))
    event = await asyncio.wait_for(stream.read(), 2)
    stream.cancel()
    assert (event.Channel, event.Metadata, event.Sequence, event.Timestamp) == ("metrics.cpu", "m", 0, 0)


@pytest.mark.parametrize(
    ("start", "value", "expected"),
    [
        (pb.Subscribe.StartFromFirst, 0, [1, 2, 3, 4]),
        (pb.Subscribe.StartFromLast, 0, [3, 4]),
        (pb.Subscribe.StartNewOnly, 0, [4]),
        (pb.Subscribe.StartAtSequence, 2, [2, 3, 4]),
        (pb.Subscribe.StartAtSequence, 9, [4]),
        (pb.Subscribe.StartAtTimeDelta, 3600, [1, 2, 3, 4]),
    ],
)
async def test_events_store_start_positions_then_live(fresh_broker: EmbeddedBroker, stub, start: int, value: int, expected: list[int]) -> None:
    await _publish_store(stub, "store", 3)
    stream = stub.SubscribeToEvents(_store_subscribe(start, value))
    await fresh_broker.wait_for_subscribers("store", kind="events_store")
    await _publish_store(stub, "store", 1)
    received = [(await asyncio.wait_for(stream.read(), 2)).Sequence for _ in expected]
    stream.cancel()
    assert received == expected


async def test_events_store_start_at_time_is_nanoseconds(stub) -> None:
    await _publish_store(stub, "store", 2)
    boundary = time.time_ns()
    await _publish_store(stub, "store", 1)
    assert await _read_sequences(stub, _store_subscribe(pb.Subscribe.StartAtTime, boundary), 1) == [3]


async def test_sdk_events_store_subscription_and_its_start_at_time_in_seconds(fresh_broker: EmbeddedBroker) -> None:
    """SDK 4.1.5 sends StartAtTime in seconds; the server reads nanoseconds, so it replays everything."""
    async with sdk_client(AsyncPubSubClient, fresh_broker.address, "store-user") as client:
        for index in range(3):
            result = await client.send_event_store(EventStoreMessage(channel="s", body=b"%d" % index))
            assert result.sent and not result.error
        received: list = []
        token = AsyncCancellationToken()

        async def collect(event) -> None:
            received.append(event)

        subscription = EventsStoreSubscription(
            channel="s",
            on_receive_event_callback=lambda _: None,
            events_store_type=EventStoreStartPosition.StartAtTime,
            events_store_start_time=datetime.now(),
        )
        task = asyncio.create_task(client.subscribe_store_with_callback(subscription, collect, cancellation_token=token))
        await _until(lambda: len(received) == 3)
        token.cancel()
        await asyncio.wait_for(task, 5)
    assert [(event.sequence, event.body) for event in received] == [(1, b"0"), (2, b"1"), (3, b"2")]
    assert received[0].timestamp.year == datetime.now().year


async def test_events_stream_reports_store_results_and_plain_failures_only(stub) -> None:
    events = [
        pb.Event(EventID="plain-ok", ClientID="c", Channel="x", Body=b"1"),
        pb.Event(EventID="plain-bad", ClientID="c", Channel="x"),
        pb.Event(EventID="stored", ClientID="c", Channel="x", Body=b"1", Store=True),
    ]

    async def requests():
        for event in events:
            yield event

    results = [result async for result in stub.SendEventsStream(requests())]
    assert [(r.EventID, r.Sent, r.Error) for r in results] == [
        ("plain-bad", False, "Error 110: invalid message, cannot be empty"),
        ("stored", True, ""),
    ]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (pb.Event(Channel="x", Body=b"1"), "Error 101: invalid clientID value, cannot be empty"),
        (pb.Event(ClientID="c", Body=b"1"), "Error 102: invalid channel value, cannot be empty"),
        (pb.Event(ClientID="c", Channel="a.>", Body=b"1"), "Error 107: invalid channel value, no wildcards are allowed"),
        (pb.Event(ClientID="c", Channel="x", Tags={"only": "tags"}), "Error 110: invalid message, cannot be empty"),
    ],
)
async def test_send_event_errors(stub, event: pb.Event, expected: str) -> None:
    assert (await internal_error(stub.SendEvent(event))).details() == expected


@pytest.mark.parametrize(
    ("subscribe", "expected"),
    [
        (pb.Subscribe(SubscribeTypeData=pb.Subscribe.Queries, ClientID="c", Channel="x"), "Error 207: invalid subscribe type"),
        (pb.Subscribe(SubscribeTypeData=pb.Subscribe.Events, Channel="x"), "Error 101: invalid clientID value, cannot be empty"),
        (
            pb.Subscribe(SubscribeTypeData=pb.Subscribe.Events, ClientID="c", Channel="x", EventsStoreTypeData=2),
            "Error 118: event store parameters were set but subscribe type is not event store",
        ),
        (_store_subscribe(pb.Subscribe.StartFromFirst, channel="a.*"), "Error 107: invalid channel value, no wildcards are allowed"),
        (_store_subscribe(pb.Subscribe.EventsStoreTypeUndefined), "Error 111: invalid subscription type, cannot be undefined or 0"),
        (
            _store_subscribe(pb.Subscribe.StartAtSequence),
            "Error 112: invalid subscription type start at sequence value, cannot by 0 or negative",
        ),
        (
            _store_subscribe(pb.Subscribe.StartAtTime, -1),
            "Error 113: invalid subscription type start at time value, cannot by 0 or negative",
        ),
        (
            _store_subscribe(pb.Subscribe.StartAtTimeDelta),
            "Error 114: invalid subscription type start at time delta value, cannot by 0 or negative",
        ),
    ],
)
async def test_subscribe_to_events_errors(stub, subscribe: pb.Subscribe, expected: str) -> None:
    assert (await internal_error(stub.SubscribeToEvents(subscribe).read())).details() == expected


async def test_wait_for_event_subscribers_counts_only_that_kind(fresh_broker: EmbeddedBroker, stub) -> None:
    stream = stub.SubscribeToEvents(_store_subscribe(pb.Subscribe.StartNewOnly))
    await fresh_broker.wait_for_subscribers("store", kind="events_store")
    with pytest.raises(TimeoutError):
        await fresh_broker.wait_for_subscribers("store", kind="events", timeout=0.05)
    stream.cancel()


async def _until(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)
