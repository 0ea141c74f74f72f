"""The contract every source kind keeps, written once and inherited by each kind (as FastStream and Dapr test theirs).

A kind joins by subclassing ``SourceContract`` with a driver that sends one
request body the kind's way and returns what came back: its reply, or the
response published on ``response_channel``. Every test below then runs for it:
the kubemq-targets reply shape, refusals in kubemq-targets' words, a bug in
the target answered instead of silence, hostile bodies each answered with the
binding serving on, bounded concurrency, and in-flight requests finishing on
stop.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from kubemq import AsyncCQClient, AsyncPubSubClient, AsyncQueuesClient, CommandMessage, EventMessage, EventStoreMessage, QueryMessage, QueueMessage

from bindings.wire import Request, Response
from devbroker import EmbeddedBroker
from tests.fixtures.configs import binding, config
from tests.fixtures.kubemq import RunningConnector, StartConnector
from tests.fixtures.waiting import eventually
from tests.sources.support import PeakInFlight, echo_target, listen, options, start, take

# Bodies that once went unanswered, and what each gets: (served?, start of the error).
HOSTILE = [
    (b'{"metadata":{"method":"echo"},"data":"\\ud800"}', True, ""),
    (b'{"metadata":{"method":"echo"},"data":' + b"1" * 5000 + b"}", False, "invalid request format, invalid data format, float64"),
    (b'{"metadata":{"method":"echo"},"data":{"d":' + b"[" * 700 + b"]" * 700 + b"}}", False, "invalid request format, invalid data format, nested deeper than 512 levels"),
    (b'{"metadata":{"method":"echo","x":"\xed\xa0\x80"},"data":{"\\udc00":"v"}}', True, ""),
    (b"\xff\xfe not json", False, "All attempts fail:\n#1: invalid method type"),
    (b'{"metadata":[1],"data":null}', False, "All attempts fail:\n#1: invalid method type"),
]


def body(metadata: dict[str, str], data: bytes = b"") -> bytes:
    return Request(metadata=metadata, data=data).to_json()


class SourceContract:
    """What every source kind promises; a subclass names the kind and how a sender talks to it."""

    kind: ClassVar[str]
    # Whether the kind hands the target's data back (a command reply carries none).
    returns_data: ClassVar[bool] = True
    # What a reply that cannot be encoded turns into: (served?, start of the error).
    unsendable: ClassVar[tuple[bool, str]] = (False, "the reply could not be sent: TypeError: ")
    extra: ClassVar[dict[str, str]] = {}

    def channel(self, name: str) -> str:
        return f"contract.{self.kind}.{name}"

    async def serve(self, start_connector: StartConnector, broker: EmbeddedBroker, name: str, **source: str) -> RunningConnector:
        properties = {**self.extra, **self.reply_properties(name), **source}
        return await start(start_connector, broker, config(binding("contract", self.kind, self.channel(name), properties)))

    def reply_properties(self, name: str) -> dict[str, str]:
        return {}

    async def exchange(self, broker: EmbeddedBroker, name: str, bodies: list[bytes], concurrent: bool = False) -> list[Response]:
        """Send each body (in order, or all at once); what came back for each, in the same order."""
        raise NotImplementedError

    # The contract ------------------------------------------------------------------

    async def test_a_request_is_served_with_the_kubemq_targets_reply(self, broker: EmbeddedBroker, start_connector: StartConnector) -> None:
        await self.serve(start_connector, broker, "ok")
        [reply] = await self.exchange(broker, "ok", [body({"method": "echo"}, b"hello")])
        assert (reply.is_error, reply.error) == (False, "")
        if self.returns_data:
            assert (reply.metadata, reply.data) == ({"result": "ok"}, b"echo:hello")

    async def test_refusals_use_kubemq_targets_words(self, broker: EmbeddedBroker, start_connector: StartConnector) -> None:
        await self.serve(start_connector, broker, "refused")
        unknown, number = await self.exchange(broker, "refused", [body({"method": "nope"}), b'{"metadata":{"method":"echo"},"data":7}'])
        assert unknown.is_error and unknown.error.startswith("All attempts fail:\n#1: invalid method type, method type should be one of the following: :echo, ")
        assert (number.is_error, number.error) == (True, "invalid request format, invalid data format, float64")

    async def test_a_bug_in_the_target_is_answered_not_silent(self, broker: EmbeddedBroker, start_connector: StartConnector) -> None:
        await self.serve(start_connector, broker, "bug")
        crashed, after = await self.exchange(broker, "bug", [body({"method": "crash"}), body({"method": "echo"}, b"after")])
        assert crashed.is_error and crashed.error.startswith("All attempts fail:\n#1: internal error: UnicodeEncodeError: ")
        assert not after.is_error

    async def test_a_reply_that_cannot_be_encoded_becomes_an_error_reply(self, broker: EmbeddedBroker, start_connector: StartConnector) -> None:
        await self.serve(start_connector, broker, "unsendable")
        unsendable, after = await self.exchange(broker, "unsendable", [body({"method": "unsendable"}), body({"method": "echo"}, b"after")])
        served, error = self.unsendable
        assert unsendable.is_error is not served and unsendable.error.startswith(error), unsendable.error
        assert not after.is_error

    async def test_hostile_bodies_each_get_one_outcome_and_the_binding_serves_on(self, broker: EmbeddedBroker, start_connector: StartConnector) -> None:
        running = await self.serve(start_connector, broker, "hostile")
        bodies = [raw for raw, _, _ in HOSTILE] + [body({"method": "echo"}, b"still here")]
        replies = await self.exchange(broker, "hostile", bodies)
        for (raw, served, error), reply in zip(HOSTILE, replies, strict=False):
            assert reply.is_error is not served, (raw[:60], reply.error)
            assert reply.error.startswith(error), (raw[:60], reply.error)
        assert not replies[-1].is_error
        await eventually(lambda: running.runtime.engine.bindings["contract"].source.in_flight == 0)

    async def test_concurrency_is_bounded_by_max_concurrency(self, broker: EmbeddedBroker, start_connector: StartConnector) -> None:
        running = await self.serve(start_connector, broker, "bounded", max_concurrency="2", **self.bounded_extra())
        async with PeakInFlight(running.runtime.engine.bindings["contract"].source) as in_flight:
            replies = await self.exchange(broker, "bounded", [body({"method": "sleep", "milliseconds": "150"}, str(n).encode()) for n in range(5)], concurrent=True)
        assert [reply.error for reply in replies if reply.is_error] == []
        assert 1 <= in_flight.peak <= 2

    def bounded_extra(self) -> dict[str, str]:
        return {}

    async def test_requests_in_flight_finish_when_the_binding_stops(self, broker: EmbeddedBroker, start_connector: StartConnector) -> None:
        running = await self.serve(start_connector, broker, "drain")
        exchange = asyncio.create_task(self.exchange(broker, "drain", [body({"method": "write", "milliseconds": "400"}, b"late")]))
        target = echo_target(running, "contract")
        await eventually(lambda: running.runtime.engine.bindings["contract"].source.in_flight == 1)
        await running.runtime.stop()
        [reply] = await exchange
        assert not reply.is_error and target.completed_writes == 1


class TestQuery(SourceContract):
    kind = "kubemq.query"

    async def exchange(self, broker: EmbeddedBroker, name: str, bodies: list[bytes], concurrent: bool = False) -> list[Response]:
        async with AsyncCQClient(**options(broker)) as client:

            async def one(raw: bytes) -> Response:
                reply = await client.send_query(QueryMessage(channel=self.channel(name), body=raw, timeout_in_seconds=15))
                assert reply.is_executed, reply.error  # kubemq-targets: the error travels in the body
                return Response.from_json(reply.body)

            return await _in_order(one, bodies, concurrent)


class TestCommand(SourceContract):
    kind = "kubemq.command"
    returns_data = False
    unsendable = (True, "")  # a command reply carries no body to encode

    async def exchange(self, broker: EmbeddedBroker, name: str, bodies: list[bytes], concurrent: bool = False) -> list[Response]:
        async with AsyncCQClient(**options(broker)) as client:

            async def one(raw: bytes) -> Response:
                reply = await client.send_command(CommandMessage(channel=self.channel(name), body=raw, timeout_in_seconds=15))
                return Response(is_error=not reply.is_executed, error=reply.error or "")

            return await _in_order(one, bodies, concurrent)


class TestQueue(SourceContract):
    kind = "kubemq.queue"
    # Retryable (sending might work next time), so redelivered up to max_receive_count, then answered once.
    unsendable = (False, "the request ran but its response could not be sent: bytes cannot be written as JSON")

    def reply_properties(self, name: str) -> dict[str, str]:
        return {"response_channel": self.channel(name) + ".resp"}

    def bounded_extra(self) -> dict[str, str]:
        return {"batch_size": "5"}  # one poll may take them all; max_concurrency still bounds the running ones

    async def exchange(self, broker: EmbeddedBroker, name: str, bodies: list[bytes], concurrent: bool = False) -> list[Response]:
        async with AsyncQueuesClient(**options(broker)) as client:
            ids = []
            for raw in bodies:
                sent = await client.send_queue_message(QueueMessage(channel=self.channel(name), body=raw))
                assert not sent.is_error, sent.error
                ids.append(sent.id)
        by_id = {reply.tags["request_id"]: reply.response for reply in await take(broker, self.channel(name) + ".resp", len(bodies), timeout=20)}
        return [by_id[message_id] for message_id in ids]


class TestEvents(SourceContract):
    kind = "kubemq.events"
    store = False

    def reply_properties(self, name: str) -> dict[str, str]:
        return {"response_channel": self.channel(name) + ".resp"}

    async def exchange(self, broker: EmbeddedBroker, name: str, bodies: list[bytes], concurrent: bool = False) -> list[Response]:
        async with listen(broker, self.channel(name) + ".resp", store=self.store) as responses, AsyncPubSubClient(**options(broker)) as client:
            ids = []
            for raw in bodies:
                if self.store:
                    message = EventStoreMessage(channel=self.channel(name), body=raw)
                    assert (await client.send_event_store(message)).sent
                else:
                    message = EventMessage(channel=self.channel(name), body=raw)
                    await client.send_event_unary(message)
                ids.append(message.id)
            await eventually(lambda: len(responses.received) >= len(bodies), timeout=20)
        by_id = {tags["request_id"]: Response.from_json(raw) for tags, raw in responses.received}
        assert len(by_id) == len(responses.received) == len(bodies), "one response per event"
        return [by_id[event_id] for event_id in ids]


class TestEventsStore(TestEvents):
    kind = "kubemq.events-store"
    store = True


async def _in_order(one, bodies: list[bytes], concurrent: bool) -> list[Response]:  # type: ignore[no-untyped-def]
    if concurrent:
        return list(await asyncio.gather(*(one(raw) for raw in bodies)))
    return [await one(raw) for raw in bodies]


def test_every_registered_source_kind_keeps_the_contract() -> None:
    """A new kind without its contract test class fails here, naming it."""
    from bindings.kubemq import SOURCES

    covered = {cls.kind for cls in SourceContract.__subclasses__() + TestEvents.__subclasses__()}
    assert {source.kind for source in SOURCES} == covered
