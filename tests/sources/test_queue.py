"""kubemq.queue end to end: ack only after success and response, redelivery, dead-lettering, crash recovery."""

from __future__ import annotations

from bindings.broker import EmbeddedBroker
from tests.fixtures.kubemq import StartConnector
from tests.sources.support import binding, config, echo_target, enqueue, eventually, queue_depth, start, take


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
    assert (reply.response.is_error, reply.response.error) == (True, "SlowDown: injected failure")
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
