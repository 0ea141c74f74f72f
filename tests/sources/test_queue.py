"""kubemq.queue end to end: ack only after success and response, redelivery, dead-lettering, crash recovery."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from kubemq import AsyncQueuesClient, QueueMessage
from kubemq.core.exceptions import ErrorCode, KubeMQError, KubeMQValidationError

from bindings.errors import TargetError
from bindings.kubemq.queue import Batch, Polled, QueueError, QueueProperties, QueueSource, SendRefused, _refused_for_good, _send
from bindings.kubemq.sdk import flush_downstream
from bindings.limits import MIB
from bindings.source import REPLY_ENVELOPE_ALLOWANCE, Outcome
from bindings.wire import Request, Response
from devbroker import EmbeddedBroker
from tests.fixtures.configs import binding, config
from tests.fixtures.kubemq import StartConnector
from tests.fixtures.waiting import eventually
from tests.sources.support import Taken, echo_target, enqueue, options, queue_depth, start, take


async def test_success_sends_the_response_then_acks(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    running = await start(start_connector, broker, config(binding("q", "kubemq.queue", "qu.ok", {"response_channel": "qu.ok.resp"})))
    message_id = await enqueue(broker, "qu.ok", {"method": "echo"}, b"hello")
    [reply] = await take(broker, "qu.ok.resp")
    assert reply.tags["request_id"] == message_id
    assert (reply.response.is_error, reply.response.data, reply.response.metadata) == (False, b"echo:hello", {"result": "ok"})
    await eventually(lambda: running.runtime.engine.bindings["q"].source.in_flight == 0)
    assert await queue_depth(broker, "qu.ok") == 0  # acked: nothing comes back


async def test_retryable_failure_is_redelivered_then_dead_lettered(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    source = {"response_channel": "qu.dl.resp", "max_receive_count": 3, "dead_letter_queue": "qu.dl.dead"}
    running = await start(start_connector, broker, config(binding("q", "kubemq.queue", "qu.dl", source)))
    message_id = await enqueue(broker, "qu.dl", {"method": "fail", "code": "SlowDown", "retryable": "true"}, b"keep me")
    [dead] = await take(broker, "qu.dl.dead")
    assert echo_target(running, "q").calls == 3  # delivered three times
    assert dead.id == message_id
    assert dead.tags | {"error": "", "binding": ""} == {"error": "", "channel": "qu.dl", "receive_count": "3", "binding": ""}
    assert (dead.tags["error"], dead.tags["binding"]) == ("SlowDown: injected failure", "q")
    assert dead.body == b'{"metadata":{"method":"fail","code":"SlowDown","retryable":"true"},"data":"a2VlcCBtZQ=="}'
    [reply] = await take(broker, "qu.dl.resp")  # one response, for the final outcome only
    assert (reply.response.is_error, reply.response.error) == (True, "All attempts fail:\n#1: SlowDown: injected failure")
    assert await queue_depth(broker, "qu.dl") == 0
    assert await queue_depth(broker, "qu.dl.resp") == 0


async def test_redelivery_completes_a_request_that_recovers(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    running = await start(start_connector, broker, config(binding("q", "kubemq.queue", "qu.rec", {"response_channel": "qu.rec.resp", "max_receive_count": 5})))
    await enqueue(broker, "qu.rec", {"method": "fail", "code": "InternalError", "retryable": "true", "times": "2"}, b"third time")
    [reply] = await take(broker, "qu.rec.resp")
    assert (reply.response.is_error, reply.response.data) == (False, b"third time")
    assert echo_target(running, "q").calls == 3
    assert await queue_depth(broker, "qu.rec.dlq") == 0


async def test_failure_that_cannot_succeed_is_dead_lettered_at_once(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    running = await start(start_connector, broker, config(binding("q", "kubemq.queue", "qu.bad", {"max_receive_count": 5})))
    await enqueue(broker, "qu.bad", {"method": "fail", "code": "NoSuchKey"})
    await enqueue(broker, "qu.bad", {"method": "nope"})
    dead = await take(broker, "qu.bad.dlq", 2)  # the default dead-letter queue
    assert sorted(d.tags["error"][:20] for d in dead) == ["NoSuchKey: injected ", "invalid method type,"]
    assert all(d.tags["receive_count"] == "1" for d in dead)
    assert echo_target(running, "q").calls == 2


async def test_a_connector_killed_mid_request_loses_nothing(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    yaml = config(binding("q", "kubemq.queue", "qu.kill", {"response_channel": "qu.kill.resp"}))
    first = await start(start_connector, broker, yaml)
    message_id = await enqueue(broker, "qu.kill", {"method": "sleep", "milliseconds": "1500"}, b"survivor")
    source = first.runtime.engine.bindings["q"].source
    await eventually(lambda: source.in_flight == 1)
    await source.stop(drain_timeout=0)  # no drain: the request is cut off and its clients are gone
    await first.runtime.stop()
    assert await queue_depth(broker, "qu.kill.resp") == 0

    second = await start(start_connector, broker, yaml)
    [reply] = await take(broker, "qu.kill.resp")  # the same message came back and finished
    assert (reply.tags["request_id"], reply.response.data) == (message_id, b"survivor")
    assert echo_target(second, "q").calls == 1
    await eventually(lambda: second.runtime.engine.bindings["q"].source.in_flight == 0)
    assert await queue_depth(broker, "qu.kill") == 0


async def test_batches_are_polled_together_and_every_message_is_acked(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    source = {"response_channel": "qu.batch.resp", "batch_size": 4, "wait_timeout": 1, "sources": 2}
    running = await start(start_connector, broker, config(binding("q", "kubemq.queue", "qu.batch", source)))
    target = echo_target(running, "q")
    assert running.runtime.engine.bindings["q"].source.max_concurrency == 8
    for i in range(12):
        await enqueue(broker, "qu.batch", {"method": "echo"}, str(i).encode())
    replies = await take(broker, "qu.batch.resp", 12)
    assert sorted(int((r.response.data or b"")[5:]) for r in replies) == list(range(12))
    await eventually(lambda: running.runtime.engine.bindings["q"].source.in_flight == 0)
    await running.runtime.stop()  # a clean stop flushes the last acks: nothing is redelivered
    assert await queue_depth(broker, "qu.batch") == 0
    assert target.calls == 12


async def test_a_clean_stop_finishes_in_flight_requests_and_their_acks(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    running = await start(start_connector, broker, config(binding("q", "kubemq.queue", "qu.stop", {"response_channel": "qu.stop.resp"})))
    await enqueue(broker, "qu.stop", {"method": "sleep", "milliseconds": "300"}, b"finish me")
    await eventually(lambda: running.runtime.engine.bindings["q"].source.in_flight == 1)
    await running.runtime.stop()  # drains: the request ends, is acked, and the ack reaches KubeMQ before the close
    [reply] = await take(broker, "qu.stop.resp")
    assert reply.response.data == b"finish me"
    assert await queue_depth(broker, "qu.stop") == 0  # not redelivered


async def test_a_response_too_large_to_send_is_dead_lettered_not_rerun(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    # The reviewer's case: the request fits in max_message_size, its response (the data plus a long prefix) does not.
    target = '      kind: test.echo\n      properties:\n        prefix: "' + "p" * 100_000 + '"'
    source = {"response_channel": "qu.big.resp", "max_message_size": 1048576, "max_receive_count": 3}
    running = await start(start_connector, broker, config(binding("q", "kubemq.queue", "qu.big", source, target=target)))
    message_id = await enqueue(broker, "qu.big", {"method": "echo"}, b"d" * 700_000)
    [dead] = await take(broker, "qu.big.dlq")
    [reply] = await take(broker, "qu.big.resp")  # a short error response instead of the one that cannot go
    await eventually(lambda: running.runtime.engine.bindings["q"].source.in_flight == 0)
    assert echo_target(running, "q").calls == 1  # run once, not redelivered
    why = "the request ran but its response could not be sent: could not send to queue qu.big.resp: the message is "
    assert (reply.tags["request_id"], reply.response.is_error) == (message_id, True)
    assert reply.response.error.startswith(why) and reply.response.error.endswith("bytes, more than max_message_size (1048576)")
    assert len(reply.body) < 300
    assert (dead.id, dead.tags["error"], dead.tags["receive_count"]) == (message_id, reply.response.error, "1")
    assert await queue_depth(broker, "qu.big") == 0


async def test_a_message_received_more_often_than_allowed_is_dead_lettered_without_running(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    message_id = await enqueue(broker, "qu.over", {"method": "echo"}, b"poison")
    async with AsyncQueuesClient(**options(broker, "test-rejecter")) as client:  # a first delivery, rejected
        polled = await client.receive_queue_messages("qu.over", max_messages=1, wait_timeout_seconds=5, auto_ack=False)
        [first] = polled.messages
        await first.async_nack()
        await flush_downstream(client)
    source = {"response_channel": "qu.over.resp", "max_receive_count": 1}
    running = await start(start_connector, broker, config(binding("q", "kubemq.queue", "qu.over", source)))
    [dead] = await take(broker, "qu.over.dlq")
    [reply] = await take(broker, "qu.over.resp")
    assert echo_target(running, "q").calls == 0
    assert (dead.id, dead.tags["receive_count"], dead.body) == (message_id, "2", b'{"metadata":{"method":"echo"},"data":"cG9pc29u"}')
    assert dead.tags["error"] == reply.response.error == "received 2 times, more than max_receive_count (1); not run again"
    await eventually(lambda: running.runtime.engine.bindings["q"].source.in_flight == 0)
    assert await queue_depth(broker, "qu.over") == 0


async def send(client: AsyncQueuesClient, message: QueueMessage) -> None:
    """``_send`` with the SDK's public send, as the dead-letter copies go."""
    await _send(client, message.channel, len(message.body), lambda: client.send_queue_message_simple(message))


async def test_sends_that_can_never_succeed_are_told_apart_from_failures_in_transit(broker: EmbeddedBroker) -> None:
    config_options = options(broker, "test-classifier") | {"max_send_size": MIB}
    async with AsyncQueuesClient(**config_options) as client:
        with pytest.raises(SendRefused, match=r"the message is 1048577 bytes, more than max_message_size \(1048576\)"):
            await send(client, QueueMessage(channel="qu.class", body=b"x" * (MIB + 1)))
        with pytest.raises(SendRefused, match="invalid expiration seconds"):  # KubeMQ's own refusal
            await send(client, QueueMessage(channel="qu.class", body=b"x", expiration_in_seconds=50_000))
    with pytest.raises(QueueError, match="Client is closed") as closed:  # the connection, not the message
        await send(client, QueueMessage(channel="qu.class", body=b"x"))
    assert not isinstance(closed.value, SendRefused)


async def test_a_response_lost_in_transit_is_retried_within_max_receive_count(broker: EmbeddedBroker) -> None:
    properties = QueueProperties(address=broker.address, channel="qu.transit", response_channel="qu.transit.resp", max_receive_count=2)
    source = QueueSource(properties, "q")
    lost = AsyncQueuesClient(**options(broker, "test-lost"))
    await lost.close()  # every response sent through it fails as a dropped connection does
    await enqueue(broker, "qu.transit", {"method": "echo"}, b"again")
    async with AsyncQueuesClient(**options(broker, "test-receiver")) as receiver:
        for expected_count in (1, 2):
            polled = await receiver.receive_queue_messages("qu.transit", max_messages=1, wait_timeout_seconds=5, auto_ack=False)
            [received] = polled.messages
            assert received.receive_count == expected_count
            delivery = source.deliver(lost, Polled(received, Batch(1)), Outcome(Response.ok(b"done")))
            if expected_count == 1:
                await delivery  # rejected: redelivered
            else:
                with pytest.raises(QueueError, match="Client is closed"):  # the error response is lost too: rejected
                    await delivery
            await flush_downstream(receiver)
    [back] = await take(broker, "qu.transit")
    assert back.receive_count == 3  # over max_receive_count: a running source dead-letters it unrun (test above)


def near_limit(metadata: str, fill: int) -> bytes:
    """A request body of about ``fill`` bytes: ``metadata`` (JSON) and base64-like data."""
    head = b'{"metadata":' + metadata.encode() + b',"data":"'
    pad = fill - len(head) - 2
    return head + b"A" * (pad - pad % 4) + b'"}'


async def count_taken(broker: EmbeddedBroker, channel: str) -> list[Taken]:
    """Take every message now on ``channel`` (none waiting: an empty list)."""
    found: list[Taken] = []
    async with AsyncQueuesClient(**options(broker, "test-counter")) as client:
        while polled := (await client.receive_queue_messages(channel, max_messages=1024, wait_timeout_seconds=1, auto_ack=True)).messages:
            found += [Taken(m.id, m.body, dict(m.tags), m.receive_count) for m in polled]
    return found


async def test_a_dead_letter_copy_too_large_to_send_goes_without_its_body(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    # The reviewer's case: the request fits in max_message_size; its dead-letter copy, with the error tags added, does not.
    source = {"response_channel": "qu.dlbig.resp", "max_message_size": MIB, "max_receive_count": 2}
    running = await start(start_connector, broker, config(binding("q" * 300, "kubemq.queue", "qu.dlbig", source)))
    body = near_limit('{"method":"fail","code":"NoSuchKey"}', MIB - 180)
    async with AsyncQueuesClient(**options(broker)) as client:
        sent = await client.send_queue_message(QueueMessage(channel="qu.dlbig", body=body))
    [dead] = await take(broker, "qu.dlbig.dlq")
    await eventually(lambda: running.runtime.engine.bindings["q" * 300].source.in_flight == 0)
    assert (dead.id, dead.body, dead.tags["body_dropped"], dead.tags["error"]) == (sent.id, b"", str(len(body)), "NoSuchKey: injected failure")
    [reply] = await count_taken(broker, "qu.dlbig.resp")
    assert reply.response.error == "All attempts fail:\n#1: NoSuchKey: injected failure"
    assert echo_target(running, "q" * 300).calls == 1
    assert await queue_depth(broker, "qu.dlbig") == 0


async def test_a_dead_letter_copy_refused_even_without_its_body_is_given_up_once(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    # The request's own tags fill the limit, so no copy of it fits once the error tags (and a long binding name) are added.
    name = "q" * 300
    source = {"response_channel": "qu.dlnone.resp", "max_message_size": MIB, "max_receive_count": 2}
    running = await start(start_connector, broker, config(binding(name, "kubemq.queue", "qu.dlnone", source)))
    body = Request(metadata={"method": "fail", "code": "NoSuchKey"}).to_json()
    async with AsyncQueuesClient(**options(broker)) as client:
        sent = await client.send_queue_message(QueueMessage(channel="qu.dlnone", body=body, tags={"filler": "f" * (MIB - 300)}))
    assert not sent.is_error, sent.error
    await eventually(lambda: echo_target(running, name).calls == 1)
    await eventually(lambda: running.runtime.engine.bindings[name].source.in_flight == 0)
    # Acked (off the queue, not in its dead-letter queue): nothing is left to come back, so one call is all there is.
    await eventually(lambda: _depths(broker, name_queue="qu.dlnone"), expect=(0, 0))
    assert echo_target(running, name).calls == 1
    assert len(await count_taken(broker, "qu.dlnone.resp")) == 1
    assert await _depths(broker, name_queue="qu.dlnone") == (0, 0)  # acked: given up


async def test_a_message_whose_dead_letter_copy_was_lost_in_transit_gets_one_response(broker: EmbeddedBroker) -> None:
    properties = QueueProperties(address=broker.address, channel="qu.once", response_channel="qu.once.resp", max_receive_count=1)
    source = QueueSource(properties, "q")
    dead_letter, lost = source._dead_letter, [QueueError("connection lost")]

    async def dead_letter_lost_once(*args: Any) -> None:
        if lost:
            raise lost.pop()
        await dead_letter(*args)

    source._dead_letter = dead_letter_lost_once  # type: ignore[method-assign]
    await enqueue(broker, "qu.once", {"method": "fail", "code": "NoSuchKey"})
    error = TargetError("NoSuchKey: gone", code="NoSuchKey")
    async with AsyncQueuesClient(**options(broker, "test-receiver")) as receiver:
        polled = await receiver.receive_queue_messages("qu.once", max_messages=1, wait_timeout_seconds=5, auto_ack=False)
        [received] = polled.messages
        with pytest.raises(QueueError, match="connection lost"):  # responded, not dead-lettered: rejected
            await source.deliver(receiver, Polled(received, Batch(1)), Outcome(Response.failure(error), error))
        await flush_downstream(receiver)
        polled = await receiver.receive_queue_messages("qu.once", max_messages=1, wait_timeout_seconds=5, auto_ack=False)
        [again] = polled.messages
        assert again.receive_count == 2
        await source._give_up_unrun(receiver, Polled(again, Batch(1)))  # over the limit: dead-lettered unrun, no second response
        await flush_downstream(receiver)
    [dead] = await take(broker, "qu.once.dlq")
    assert dead.tags["error"] == "received 2 times, more than max_receive_count (1); not run again"
    [reply] = await count_taken(broker, "qu.once.resp")
    assert reply.response.error == "NoSuchKey: gone"
    assert await queue_depth(broker, "qu.once") == 0


@pytest.mark.parametrize(
    ("error", "for_good"),
    [
        (KubeMQError("CLIENT: Sent message larger than max (1048861 vs. 1048576)", code=ErrorCode.RESOURCE_EXHAUSTED), True),
        (KubeMQError("grpc: received message larger than max (2000000 vs. 1048576)", code=ErrorCode.RESOURCE_EXHAUSTED), True),
        (KubeMQError("rate limit exceeded, try again later", code=ErrorCode.RESOURCE_EXHAUSTED), False),  # throttling
        (KubeMQError("not allowed on this channel", code=ErrorCode.PERMISSION_DENIED), True),
        (KubeMQValidationError("channel cannot be empty"), True),
        (KubeMQError("connection reset", code=ErrorCode.UNAVAILABLE), False),
    ],
)
def test_send_errors_are_permanent_only_when_they_repeat(error: KubeMQError, for_good: bool) -> None:
    assert _refused_for_good(error) is for_good


@pytest.mark.parametrize(
    ("result_error", "refused"),
    [("Error 110: invalid message, cannot be empty", True), ("Error 137: invalid expiration seconds", True), ("Error 200: queue store unavailable", False), ("", False)],
)
async def test_send_results_with_an_error_are_permanent_only_for_kubemq_validation_errors(result_error: str, refused: bool) -> None:
    async def send_queue_message_simple(message: QueueMessage) -> SimpleNamespace:
        return SimpleNamespace(is_error=True, error=result_error)

    refusing = SimpleNamespace(config=SimpleNamespace(max_send_size=MIB), send_queue_message_simple=send_queue_message_simple)
    with pytest.raises(QueueError) as raised:
        await send(refusing, QueueMessage(channel="qu.result", body=b"x"))  # type: ignore[arg-type]
    assert isinstance(raised.value, SendRefused) is refused


def test_no_reply_size_limit_without_a_response_channel() -> None:
    answering = QueueSource(QueueProperties(address="localhost:50000", channel="qu.limit", response_channel="qu.limit.resp", max_message_size=MIB), "q")
    assert answering.max_reply_data == (MIB - REPLY_ENVELOPE_ALLOWANCE) * 3 // 4
    assert QueueSource(QueueProperties(address="localhost:50000", channel="qu.limit", max_message_size=MIB), "q").max_reply_data is None


async def _depths(broker: EmbeddedBroker, *, name_queue: str) -> tuple[int, int]:
    """Messages waiting in a queue and in its dead-letter queue."""
    return await queue_depth(broker, name_queue), await queue_depth(broker, f"{name_queue}.dlq")
