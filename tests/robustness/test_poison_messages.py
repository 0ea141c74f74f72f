"""No poison message stops a queue binding, end to end through the broker with the official SDK.

Every kind answers hostile bodies, bugs and unencodable replies (the contract
in tests/sources/test_conformance.py); a queue must also settle each one, or
the messages behind it wait forever: bodies that used to go unanswered (a lone
surrogate, a number too long for Python, nesting that breaks a recursive
encoder), a method that raises something that is no ``RequestError``, a reply
that cannot be encoded, then valid requests, all settled and counted, and a
message larger than the binding's limit dead-lettered unrun.
"""

from __future__ import annotations

import json

from kubemq import AsyncQueuesClient, QueueMessage

from bindings.limits import MIB
from bindings.wire import Response
from devbroker import EmbeddedBroker
from tests.fixtures.configs import binding, config
from tests.fixtures.kubemq import StartConnector
from tests.fixtures.waiting import eventually
from tests.sources.support import echo_target, options, queue_depth, start, take

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
    (False, "All attempts fail:\n#1: internal error: UnicodeEncodeError"),
    (False, "the reply could not be sent: TypeError"),
    (True, ""),
]
VALID = [json.dumps({"metadata": {"method": "echo"}, "data": "dmFsaWQ="}).encode()] * 3


def check(response: Response, served: bool, error: str) -> None:
    assert response.is_error is not served, response.error
    assert response.error.startswith(error), response.error


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
            error = "the request ran but its response could not be sent: bytes cannot be written as JSON"
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
