"""Subscription registry: NATS-style subject matching and group fan-out.

The real server puts every subscription on embedded NATS, so delivery follows
NATS rules: a subscriber without a group gets its own copy, a group gets one
copy delivered to a random member, and subscription channels may use ``*``
(one token) and ``>`` (one or more trailing tokens).
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict, deque
from collections.abc import Iterable
from typing import Literal

import structlog
from google.protobuf.message import Message

log = structlog.get_logger("devbroker")

Kind = Literal["queries", "commands", "events", "events_store"]
KINDS: tuple[Kind, ...] = ("queries", "commands", "events", "events_store")

# kubemq-community defaults: Grpc.SubBuffSize and the NATS callback deadline.
MAILBOX_SIZE = 100
SLOW_CONSUMER_DEADLINE = 2.0

_CLOSED = object()


def channel_matches(pattern: str, channel: str) -> bool:
    """True if ``channel`` (a literal subject) is matched by the subscription ``pattern``."""
    wanted = pattern.split(".")
    segments = channel.split(".")
    for index, segment in enumerate(wanted):
        if segment == ">":
            return index == len(wanted) - 1 and len(segments) > index
        if index >= len(segments) or (segment != "*" and segment != segments[index]):
            return False
    return len(segments) == len(wanted)


class Subscription:
    """One subscriber stream: a replay backlog (events-store history), then a bounded live mailbox."""

    def __init__(self, kind: Kind, channel: str, group: str, client_id: str, backlog: Iterable[Message] = ()) -> None:
        self.kind = kind
        self.channel = channel
        self.group = group
        self.client_id = client_id
        self._backlog: deque[Message] = deque(backlog)
        self._mailbox: asyncio.Queue[object] = asyncio.Queue(MAILBOX_SIZE)
        # Messages waiting for mailbox space; later ones must queue behind them to keep order.
        self._overflow = 0

    async def next(self) -> Message | None:
        """The next message, or None once the broker has closed this subscription."""
        if self._backlog:
            return self._backlog.popleft()
        item = await self._mailbox.get()
        return None if item is _CLOSED else item

    def has_room(self) -> bool:
        """True if a message can go straight into the mailbox without overtaking waiting ones."""
        return self._overflow == 0 and not self._mailbox.full()

    def put_nowait(self, message: Message) -> None:
        self._mailbox.put_nowait(message)

    async def put_with_deadline(self, message: Message) -> None:
        """Wait for space like the server's NATS callback does, then drop the message."""
        self._overflow += 1
        try:
            await asyncio.wait_for(self._mailbox.put(message), SLOW_CONSUMER_DEADLINE)
        except TimeoutError:
            log.warning("message dropped due to a slow consumer", kind=self.kind, channel=self.channel, client_id=self.client_id)
        finally:
            self._overflow -= 1

    def close(self) -> None:
        """Wake the stream handler so it ends; undelivered messages are discarded."""
        self._backlog.clear()
        while not self._mailbox.empty():
            self._mailbox.get_nowait()
        self._mailbox.put_nowait(_CLOSED)


class SubscriptionRegistry:
    """All live subscriptions, by kind; kinds are separate namespaces (``_QUERIES_.`` etc.)."""

    def __init__(self) -> None:
        self._subscriptions: dict[Kind, list[Subscription]] = defaultdict(list)
        self._late_deliveries: set[asyncio.Task[None]] = set()

    def add(self, kind: Kind, channel: str, group: str, client_id: str, backlog: Iterable[Message] = ()) -> Subscription:
        """Register a subscriber; ``backlog`` is delivered before anything published after this call."""
        subscription = Subscription(kind, channel, group, client_id, backlog)
        self._subscriptions[kind].append(subscription)
        log.debug("subscribed", kind=kind, channel=channel, group=group, client_id=client_id)
        return subscription

    def remove(self, subscription: Subscription) -> None:
        subscriptions = self._subscriptions[subscription.kind]
        if subscription in subscriptions:
            subscriptions.remove(subscription)
            log.debug("unsubscribed", kind=subscription.kind, channel=subscription.channel, client_id=subscription.client_id)

    def count(self, kind: Kind, channel: str) -> int:
        """Subscribers that a message sent to ``channel`` could reach."""
        return sum(1 for s in self._subscriptions[kind] if channel_matches(s.channel, channel))

    def select(self, kind: Kind, channel: str) -> list[Subscription]:
        """Every matching no-group subscriber, plus one random member of each matching group."""
        chosen: list[Subscription] = []
        groups: dict[str, list[Subscription]] = defaultdict(list)
        for subscription in self._subscriptions[kind]:
            if channel_matches(subscription.channel, channel):
                if subscription.group:
                    groups[subscription.group].append(subscription)
                else:
                    chosen.append(subscription)
        chosen.extend(random.choice(members) for members in groups.values())
        return chosen

    def deliver(self, subscription: Subscription, message: Message) -> None:
        """Enqueue at once if there is room, else wait up to the slow-consumer deadline in the background."""
        if subscription.has_room():
            subscription.put_nowait(message)
            return
        task = asyncio.get_running_loop().create_task(subscription.put_with_deadline(message))
        self._late_deliveries.add(task)
        task.add_done_callback(self._late_deliveries.discard)

    def publish(self, kind: Kind, channel: str, message: Message) -> int:
        """Route one message with NATS semantics; returns how many subscribers got a copy."""
        targets = self.select(kind, channel)
        for subscription in targets:
            self.deliver(subscription, message)
        return len(targets)

    def close_all(self) -> None:
        """End every subscriber stream (broker shutdown)."""
        for task in self._late_deliveries:
            task.cancel()
        for subscriptions in self._subscriptions.values():
            for subscription in subscriptions:
                subscription.close()
