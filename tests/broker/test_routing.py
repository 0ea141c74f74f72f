"""Subject matching, fan-out selection and the slow-consumer rule, without gRPC."""

from __future__ import annotations

import asyncio

import pytest
from kubemq.grpc import kubemq_pb2 as pb

from devbroker import routing
from devbroker.routing import SubscriptionRegistry, channel_matches


@pytest.mark.parametrize(
    ("pattern", "channel", "matches"),
    [
        ("a.b", "a.b", True),
        ("a.b", "a.b.c", False),
        ("a.*", "a.b", True),
        ("a.*", "a.b.c", False),
        ("*.b", "a.b", True),
        ("a.>", "a.b.c", True),
        ("a.>", "a", False),
        (">", "a", True),
        ("a.>.c", "a.b.c", False),
        ("a.*.c", "a.b.c", True),
        ("a.*.c", "a.b.d", False),
        ("ab", "a", False),
    ],
)
def test_channel_matches(pattern: str, channel: str, matches: bool) -> None:
    assert channel_matches(pattern, channel) is matches


def test_select_gives_every_plain_subscriber_and_one_per_group() -> None:
    registry = SubscriptionRegistry()
    plain = registry.add("queries", "x", "", "p")
    wildcard = registry.add("queries", "*", "", "w")
    group_a = [registry.add("queries", "x", "a", f"a{i}") for i in range(3)]
    group_b = registry.add("queries", ">", "b", "b")
    registry.add("commands", "x", "", "other-namespace")
    chosen = registry.select("queries", "x")
    assert len(chosen) == 4
    assert {plain, wildcard, group_b} <= set(chosen)
    assert len(set(chosen) & set(group_a)) == 1


async def test_slow_consumer_keeps_order_then_drops_after_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routing, "SLOW_CONSUMER_DEADLINE", 0.05)
    registry = SubscriptionRegistry()
    subscription = registry.add("events", "e", "", "slow")
    for sequence in range(routing.MAILBOX_SIZE + 2):
        registry.publish("events", "e", pb.EventReceive(Sequence=sequence))
    assert (await subscription.next()).Sequence == 0  # frees one slot: message 100 gets in, 101 still waits
    await asyncio.sleep(0.15)
    received = [(await subscription.next()).Sequence for _ in range(routing.MAILBOX_SIZE)]
    assert received == list(range(1, routing.MAILBOX_SIZE + 1))
    assert registry.publish("events", "e", pb.EventReceive(Sequence=999)) == 1
    assert (await subscription.next()).Sequence == 999  # 101 was dropped


async def test_close_ends_the_subscription() -> None:
    registry = SubscriptionRegistry()
    subscription = registry.add("queries", "q", "", "c")
    registry.publish("queries", "q", pb.Request())
    registry.close_all()
    assert await subscription.next() is None
