"""No poison message stops a binding, for any source kind, end to end through the broker with the official SDK.

Each kind gets the same sequence: bodies that used to go unanswered (a lone
surrogate, a number too long for Python, nesting that breaks a recursive
encoder), a method that raises something that is no ``RequestError``, a reply
that cannot be encoded, then valid requests: every one gets exactly one
outcome, and the valid ones after the poison are served.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from kubemq import AsyncCQClient, AsyncPubSubClient, AsyncQueuesClient, CommandMessage, EventMessage, EventStoreMessage, QueryMessage, QueueMessage

from devbroker import EmbeddedBroker
from bindings.sources.connection import MIB
from bindings.wire import Response
from tests.fixtures.kubemq import StartConnector
from tests.sources.support import binding, config, echo_target, eventually, listen, options, queue_depth, start, take

POISON = [
    b'{"metadata":{"method":"echo"},"data":"\\ud800"}',
    b'{"metadata":{"method":"echo"},"data":' + b"1" * 5000 + b"}",
    b'{"metadata":{"method":"echo"},"data":{"d":' + b"[" * 700 + b"]" * 700 + b"}}",
    b'{"metadata":{"method":"crash"}}',
    b'{"metadata":{"method":"unsendable"}}',
    b'{"metadata":{"method":"echo","x":"\xed\xa0\x80"},"data":{"\\udc00":"v"}}',
]
# What each poison body gets, in order: served (True) or refused (False), and the start of the error.
EXPECTED = [
    (True, ""),
    (False, "invalid request format, invalid data format, float64"),
    (False, "invalid request format, invalid data format, nested deeper than 512 levels"),
    (False, "internal error: UnicodeEncodeError"),
    (False, "the reply could not be sent: TypeError"),
    (True, ""),
]
VALID = [json.dumps({"metadata": {"method": "echo"}, "data": "dmFsaWQ="}).encode()] * 3


def check(response: Response, served: bool, error: str) -> None:
    assert response.is_error is not served, response.error
    assert response.error.startswith(error), response.error


async def test_query_every_poison_gets_one_reply_and_the_binding_serves_on(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    await start(start_connector, broker, config(binding("q", "kubemq.query", "poison.q")))
    async with AsyncCQClient(**options(broker)) as client:
        for body, (served, error) in zip(POISON + VALID, EXPECTED + [(True, "")] * len(VALID), strict=True):
            reply = await client.send_query(QueryMessage(channel="poison.q", body=body, timeout_in_seconds=10))
            assert reply.is_executed, reply.error
            check(Response.from_json(reply.body), served, error)


async def test_command_every_poison_gets_executed_or_its_error(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    await start(start_connector, broker, config(binding("c", "kubemq.command", "poison.c")))
    async with AsyncCQClient(**options(broker)) as client:
        for body, (served, error) in zip(POISON + VALID, EXPECTED + [(True, "")] * len(VALID), strict=True):
            reply = await client.send_command(CommandMessage(channel="poison.c", body=body, timeout_in_seconds=10))
            # A command reply carries no body, so an unencodable reply is no failure there.
            if body == POISON[4]:
                served, error = True, ""
            assert reply.is_executed is served, reply.error
            assert reply.error.startswith(error), reply.error


@pytest.mark.parametrize("store", [False, True], ids=["events", "events-store"])
async def test_events_every_poison_gets_one_response_and_the_binding_serves_on(broker: EmbeddedBroker, start_connector: StartConnector, store: bool) -> None:
    kind = "kubemq.events-store" if store else "kubemq.events"
    running = await start(start_connector, broker, config(binding("e", kind, f"poison.{kind}", {"response_channel": f"poison.{kind}.resp"})))
    bodies = POISON + VALID
    async with listen(broker, f"poison.{kind}.resp", store=store) as responses, AsyncPubSubClient(**options(broker)) as client:
        ids = []
        for body in bodies:
            if store:
                message = EventStoreMessage(channel=f"poison.{kind}", body=body)
                assert (await client.send_event_store(message)).sent
            else:
                message = EventMessage(channel=f"poison.{kind}", body=body)
                await client.send_event_unary(message)
            ids.append(message.id)
        await eventually(lambda: len(responses.received) == len(bodies))
        await asyncio.sleep(0.2)  # nothing more arrives: one response each
    assert len(responses.received) == len(bodies)
    by_id = {tags["request_id"]: Response.from_json(body) for tags, body in responses.received}
    for message_id, (served, error) in zip(ids, EXPECTED + [(True, "")] * len(VALID), strict=True):
        check(by_id[message_id], served, error)
    assert echo_target(running, "e").calls == len(bodies) - 2  # the number and the nesting never reach the target
    if store:
        progress = running.runtime.engine.bindings["e"].source.progress
        assert progress.resume_at == progress.floor + 1  # every sequence finished: nothing holds the position back


async def test_queue_poison_is_settled_and_the_messages_behind_it_are_processed(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    """With the default single poll stream, one unsettled message would stop the binding: none is."""
    source = {"response_channel": "poison.qu.resp", "max_receive_count": 2}
    running = await start(start_connector, broker, config(binding("qu", "kubemq.queue", "poison.qu", source)))
    ids = []
    async with AsyncQueuesClient(**options(broker)) as client:
        for body in POISON + VALID:
            sent = await client.send_queue_message(QueueMessage(channel="poison.qu", body=body))
            assert not sent.is_error, sent.error
            ids.append(sent.id)
    # The unsendable reply is retryable (its response could not be sent): one more delivery, then one response.
    replies = await take(broker, "poison.qu.resp", len(ids), timeout=20)
    by_id = {reply.tags["request_id"]: reply.response for reply in replies}
    for message_id, (served, error) in zip(ids, EXPECTED + [(True, "")] * len(VALID), strict=True):
        if message_id == ids[4]:
            error = "the request ran but its response could not be sent: Object of type bytes is not JSON serializable"
        check(by_id[message_id], served, error)
    dead = await take(broker, "poison.qu.dlq", 4)
    assert sorted(d.id for d in dead) == sorted(ids[1:5])
    await eventually(lambda: running.runtime.engine.bindings["qu"].source.in_flight == 0)
    assert await queue_depth(broker, "poison.qu") == 0
    outcomes = running.runtime.metrics.queue_outcomes
    assert outcomes.labels("qu", "echo", "acked")._value.get() == 5  # two poison bodies served + three valid
    assert outcomes.labels("qu", "unknown", "dead_lettered")._value.get() == 2  # refused before any method ran
    assert outcomes.labels("qu", "crash", "dead_lettered")._value.get() == 1
    assert outcomes.labels("qu", "unsendable", "rejected")._value.get() == 1
    assert outcomes.labels("qu", "unsendable", "dead_lettered")._value.get() == 1


async def test_queue_message_over_max_message_size_is_dead_lettered_unrun(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    """Larger than the binding's limit (but within the server's): received whole, refused with its size, never run."""
    running = await start(start_connector, broker, config(binding("big", "kubemq.queue", "poison.big", {"max_message_size": MIB, "response_channel": "poison.big.resp"})))
    oversized = b'{"metadata":{"method":"echo"},"data":"' + b"A" * (2 * MIB) + b'"}'
    async with AsyncQueuesClient(**options(broker), max_send_size=4 * MIB) as client:
        big = await client.send_queue_message(QueueMessage(channel="poison.big", body=oversized))
        small = await client.send_queue_message(QueueMessage(channel="poison.big", body=VALID[0]))
    replies = {reply.tags["request_id"]: reply.response for reply in await take(broker, "poison.big.resp", 2)}
    assert replies[big.id].error == f"invalid request format, the message is {len(oversized)} bytes, more than max_message_size ({MIB}); not run"
    assert (replies[small.id].is_error, replies[small.id].data) == (False, b"echo:valid")
    [dead] = await take(broker, "poison.big.dlq")
    assert (dead.id, dead.body, dead.tags["body_dropped"]) == (big.id, b"", str(len(oversized)))
    assert echo_target(running, "big").calls == 1
