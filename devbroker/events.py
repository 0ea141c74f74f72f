"""Events and events-store: fire-and-forget fan-out, and the same with a per-channel log.

Plain events behave like NATS publishes (no storage, ``Timestamp`` and
``Sequence`` 0). Events-store messages are appended to an in-memory log with a
per-channel sequence from 1 and a nanosecond timestamp, as NATS Streaming does
for the real server; a new subscriber first replays the log from its start
position, then receives live messages in order.

Received events carry the sender in the ``x-kubemq-client-id`` tag, which is
where SDK 4.1.5 reads ``from_client_id`` (modelled: v2.3.7 does not set it).

Not modelled: durable resume. The real server names its NATS Streaming
subscription ``<channel>-<group>``, so a re-subscribing client may resume where
it left off instead of honouring the start position; here the start position
always applies, and group members replay history independently.
"""

from __future__ import annotations

import time
import uuid

from kubemq.grpc import kubemq_pb2 as pb

from devbroker.routing import Subscription, SubscriptionRegistry
from devbroker.validation import check_event, check_events_subscribe

_NANOS_PER_SECOND = 1_000_000_000
SENDER_TAG = "x-kubemq-client-id"


class EventsHub:
    """Publishes events to subscribers and keeps the events-store logs."""

    def __init__(self, registry: SubscriptionRegistry) -> None:
        self._registry = registry
        self._logs: dict[str, list[pb.EventReceive]] = {}

    def publish(self, event: pb.Event) -> pb.Result:
        """Validate, store if ``Store`` is set, and fan out; raises ``BrokerError`` if invalid."""
        check_event(event)
        event_id = event.EventID or uuid.uuid4().hex
        received = pb.EventReceive(EventID=event_id, Channel=event.Channel, Metadata=event.Metadata, Body=event.Body, Tags=event.Tags)
        if SENDER_TAG not in received.Tags:
            received.Tags[SENDER_TAG] = event.ClientID
        if event.Store:
            log = self._logs.setdefault(event.Channel, [])
            received.Sequence = len(log) + 1
            received.Timestamp = time.time_ns()
            log.append(received)
            self._registry.publish("events_store", event.Channel, received)
        else:
            self._registry.publish("events", event.Channel, received)
        return pb.Result(EventID=event_id, Sent=True)

    def subscribe(self, subscribe: pb.Subscribe) -> Subscription:
        """Register a subscriber; an events-store one gets its history first."""
        check_events_subscribe(subscribe)
        if subscribe.SubscribeTypeData == pb.Subscribe.Events:
            return self._registry.add("events", subscribe.Channel, subscribe.Group, subscribe.ClientID)
        return self._registry.add(
            "events_store",
            subscribe.Channel,
            subscribe.Group,
            subscribe.ClientID,
            backlog=self._replay(subscribe),
        )

    def _replay(self, subscribe: pb.Subscribe) -> list[pb.EventReceive]:
        """Stored events from the start position (NATS Streaming semantics, as the server maps them).

        ``StartAtTime`` is read as Unix **nanoseconds** and ``StartAtTimeDelta``
        as seconds, like the real server. (SDK 4.1.5 sends StartAtTime in
        seconds, which therefore replays everything.)
        """
        log = self._logs.get(subscribe.Channel, [])
        start = subscribe.EventsStoreTypeData
        value = subscribe.EventsStoreTypeValue
        if start == pb.Subscribe.StartFromFirst:
            return list(log)
        if start == pb.Subscribe.StartFromLast:
            return log[-1:]
        if start == pb.Subscribe.StartAtSequence:
            return log[value - 1 :]
        if start == pb.Subscribe.StartAtTime:
            return [event for event in log if event.Timestamp >= value]
        if start == pb.Subscribe.StartAtTimeDelta:
            since = time.time_ns() - value * _NANOS_PER_SECOND
            return [event for event in log if event.Timestamp >= since]
        return []  # StartNewOnly
