"""Queues through the fresh_broker: the SDK's QueuesUpstream/QueuesDownstream path, plus raw stubs for server texts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from kubemq import AsyncQueuesClient
from kubemq.grpc import kubemq_pb2 as pb
from kubemq.grpc import kubemq_pb2_grpc
from kubemq.queues import QueueMessage

from devbroker import EmbeddedBroker
from tests.broker.support import RawStream, sdk_client, until_depth

Get = pb.QueuesDownstreamRequestType.Get


def queues(fresh_broker: EmbeddedBroker, client_id: str = "worker"):
    return sdk_client(AsyncQueuesClient, fresh_broker.address, client_id)


class RawDownstream(RawStream[pb.QueuesDownstreamRequest, pb.QueuesDownstreamResponse]):
    """One QueuesDownstream stream driven request by request."""

    def __init__(self, stub: kubemq_pb2_grpc.kubemqStub) -> None:
        super().__init__(stub.QueuesDownstream)

    def send(self, **fields: object) -> None:
        self.put(pb.QueuesDownstreamRequest(RequestID=uuid.uuid4().hex, ClientID="raw", **fields))

    async def reply(self, **fields: object) -> pb.QueuesDownstreamResponse:
        self.send(**fields)
        return await self.read()


@pytest.fixture
def downstream(stub) -> AsyncIterator[RawDownstream]:
    stream = RawDownstream(stub)
    yield stream
    stream.close()


async def test_send_receive_ack_empties_the_queue(fresh_broker: EmbeddedBroker) -> None:
    async with queues(fresh_broker) as client:
        sent = await client.send_queue_message(QueueMessage(channel="q", body=b"job", metadata="m", tags={"t": "1"}))
        assert not sent.is_error and sent.id and sent.sent_at
        assert await fresh_broker.queue_depth("q") == 1
        poll = await client.receive_queue_messages(channel="q", max_messages=1, wait_timeout_seconds=5)
        (message,) = poll.messages
        assert (message.body, message.metadata, message.tags["t"]) == (b"job", "m", "1")
        assert (message.sequence, message.receive_count, message.from_client_id) == (1, 1, "worker")
        assert await fresh_broker.queue_depth("q") == 0  # held, not gone
        await message.async_ack()
        await _settled()
    assert await fresh_broker.queue_depth("q") == 0


async def test_fifo_batches_and_auto_ack(fresh_broker: EmbeddedBroker) -> None:
    async with queues(fresh_broker) as client:
        for index in range(5):
            await client.send_queue_message(QueueMessage(channel="fifo", body=b"%d" % index))
        first = await client.receive_queue_messages(channel="fifo", max_messages=3, wait_timeout_seconds=5, auto_ack=True)
        rest = await client.receive_queue_messages(channel="fifo", max_messages=2, wait_timeout_seconds=5, auto_ack=True)
        with pytest.raises(ValueError):
            await first.messages[0].async_ack()
    assert [m.body for m in first.messages + rest.messages] == [b"0", b"1", b"2", b"3", b"4"]
    assert await fresh_broker.queue_depth("fifo") == 0


async def test_reject_redelivers_at_the_tail_with_receive_count_raised(fresh_broker: EmbeddedBroker) -> None:
    async with queues(fresh_broker) as client:
        await client.send_queue_message(QueueMessage(channel="r", body=b"first"))
        await client.send_queue_message(QueueMessage(channel="r", body=b"second"))
        poll = await client.receive_queue_messages(channel="r", max_messages=1, wait_timeout_seconds=5)
        await poll.messages[0].async_nack()
        again = await client.receive_queue_messages(channel="r", max_messages=2, wait_timeout_seconds=5)
    assert [(m.body, m.sequence, m.receive_count) for m in again.messages] == [(b"second", 2, 1), (b"first", 3, 2)]


async def test_dead_letter_after_max_receive_count(fresh_broker: EmbeddedBroker) -> None:
    async with queues(fresh_broker) as client:
        await client.send_queue_message(QueueMessage(channel="work", body=b"poison", max_receive_count=2, max_receive_queue="work.dead"))
        for expected_count in (1, 2):
            poll = await client.receive_queue_messages(channel="work", max_messages=1, wait_timeout_seconds=5)
            assert poll.messages[0].receive_count == expected_count
            await poll.messages[0].async_nack()
        dead = await client.receive_queue_messages(channel="work.dead", max_messages=1, wait_timeout_seconds=5)
    (message,) = dead.messages
    assert (message.body, message.is_re_routed, message.re_route_from_queue) == (b"poison", True, "work")
    assert message.receive_count == 1
    assert await fresh_broker.queue_depth("work") == 0


async def test_rejected_past_max_receive_count_without_dead_letter_queue_is_dropped(fresh_broker: EmbeddedBroker, downstream: RawDownstream, stub) -> None:
    # The SDK refuses max_receive_count without max_receive_queue, so send raw.
    await stub.SendQueueMessage(pb.QueueMessage(ClientID="c", Channel="once", Body=b"x", Policy=pb.QueueMessagePolicy(MaxReceiveCount=1)))
    got = await downstream.reply(RequestTypeData=Get, Channel="once", MaxItems=1, WaitTimeout=1000)
    assert got.Messages[0].Policy.MaxReceiveCount == 1
    downstream.send(
        RequestTypeData=pb.QueuesDownstreamRequestType.NAckRange,
        RefTransactionId=got.TransactionId,
        SequenceRange=[got.Messages[0].Attributes.Sequence],
    )
    await _settled()
    assert await fresh_broker.queue_depth("once") == 0


async def test_held_message_is_invisible_until_its_reader_disconnects(fresh_broker: EmbeddedBroker) -> None:
    async with queues(fresh_broker, "sender") as sender:
        await sender.send_queue_message(QueueMessage(channel="v", body=b"in-flight"))
    async with queues(fresh_broker, "other") as other:
        async with queues(fresh_broker, "crashing") as crashing:
            held = await crashing.receive_queue_messages(channel="v", max_messages=1, wait_timeout_seconds=5)
            assert held.messages[0].body == b"in-flight"
            nothing = await other.receive_queue_messages(channel="v", max_messages=1, wait_timeout_seconds=1)
            assert nothing.messages == [] and not nothing.is_error
        # The reader closed without acking: the message is handed back with its sequence and count.
        await until_depth(fresh_broker, "v", 1)
        again = await other.receive_queue_messages(channel="v", max_messages=1, wait_timeout_seconds=5)
    assert [(m.body, m.sequence, m.receive_count) for m in again.messages] == [(b"in-flight", 1, 1)]


async def test_re_queue_moves_the_message_to_another_channel(fresh_broker: EmbeddedBroker) -> None:
    async with queues(fresh_broker) as client:
        await client.send_queue_message(QueueMessage(channel="a", body=b"move me"))
        poll = await client.receive_queue_messages(channel="a", max_messages=1, wait_timeout_seconds=5)
        await poll.messages[0].async_re_queue("b")
        moved = await client.receive_queue_messages(channel="b", max_messages=1, wait_timeout_seconds=5)
    assert [(m.body, m.channel, m.receive_count) for m in moved.messages] == [(b"move me", "b", 1)]
    assert await fresh_broker.queue_depth("a") == 0


async def test_long_poll_gets_a_message_sent_while_waiting(fresh_broker: EmbeddedBroker) -> None:
    async with queues(fresh_broker, "reader") as reader, queues(fresh_broker, "writer") as writer:
        poll = asyncio.create_task(reader.receive_queue_messages(channel="lp", max_messages=1, wait_timeout_seconds=10))
        await asyncio.sleep(0.1)
        await writer.send_queue_message(QueueMessage(channel="lp", body=b"late"))
        response = await asyncio.wait_for(poll, 5)
    assert [m.body for m in response.messages] == [b"late"]


async def test_delay_and_expiration_policies(fresh_broker: EmbeddedBroker) -> None:
    async with queues(fresh_broker) as client:
        delayed = await client.send_queue_message(QueueMessage(channel="d", body=b"later", delay_in_seconds=1))
        await client.send_queue_message(QueueMessage(channel="d", body=b"short-lived", expiration_in_seconds=1))
        assert delayed.delayed_to is not None
        assert await fresh_broker.queue_depth("d") == 2
        await asyncio.sleep(1.1)
        # The expired message comes first (the delayed one got its sequence when due) and is dropped.
        poll = await client.receive_queue_messages(channel="d", max_messages=1, wait_timeout_seconds=1, auto_ack=True)
    assert [(m.body, m.sequence) for m in poll.messages] == [(b"later", 2)]
    assert await fresh_broker.queue_depth("d") == 0


async def test_ack_all_queue_messages_purges_and_counts(fresh_broker: EmbeddedBroker) -> None:
    async with queues(fresh_broker) as client:
        for index in range(3):
            await client.send_queue_message(QueueMessage(channel="purge", body=b"%d" % index))
        assert await client.ack_all_queue_messages(channel="purge", wait_time_seconds=1) == 3
    assert await fresh_broker.queue_depth("purge") == 0


async def test_peek_leaves_messages_in_place(fresh_broker: EmbeddedBroker) -> None:
    async with queues(fresh_broker) as client:
        await client.send_queue_message(QueueMessage(channel="peek", body=b"look"))
        peeked = await client.peek_queue_messages(channel="peek", max_messages=1, wait_timeout_seconds=1)
        assert [m.body for m in peeked.messages] == [b"look"]
    assert await fresh_broker.queue_depth("peek") == 1


async def test_sdk_ack_all_on_a_poll_response_is_refused_and_redelivered_later(fresh_broker: EmbeddedBroker) -> None:
    """``AsyncQueuesPollResponse.ack_all`` opens a second stream; transactions belong to the first one."""
    async with queues(fresh_broker) as client:
        await client.send_queue_message(QueueMessage(channel="tx", body=b"x"))
        poll = await client.receive_queue_messages(channel="tx", max_messages=1, wait_timeout_seconds=5)
        await poll.ack_all()  # the SDK ignores the server's refusal
    await until_depth(fresh_broker, "tx", 1)
    assert await fresh_broker.queue_depth("tx") == 1  # not acked: back in the queue for the next receiver


async def test_downstream_transaction_protocol(downstream: RawDownstream, stub) -> None:
    await stub.SendQueueMessagesBatch(pb.QueueMessagesBatchRequest(BatchID="b", Messages=[pb.QueueMessage(ClientID="c", Channel="t", Body=b"%d" % i) for i in range(3)]))
    got = await downstream.reply(RequestTypeData=Get, Channel="t", MaxItems=3, WaitTimeout=1000)
    assert [m.Attributes.Sequence for m in got.Messages] == [1, 2, 3]
    transaction = got.TransactionId
    offsets = await downstream.reply(RequestTypeData=pb.QueuesDownstreamRequestType.ActiveOffsets, RefTransactionId=transaction)
    assert sorted(offsets.ActiveOffsets) == [1, 2, 3]
    bad = await downstream.reply(RequestTypeData=pb.QueuesDownstreamRequestType.AckRange, RefTransactionId=transaction, SequenceRange=[1, 9])
    assert (bad.IsError, bad.Error) == (True, "invalid ack sequence id 9")
    downstream.send(RequestTypeData=pb.QueuesDownstreamRequestType.AckAll, RefTransactionId=transaction)
    closed = await downstream.reply(RequestTypeData=pb.QueuesDownstreamRequestType.AckAll, RefTransactionId=transaction)
    assert closed.Error == "cannot ack messages with closed response "
    unknown = await downstream.reply(RequestTypeData=pb.QueuesDownstreamRequestType.NAckAll, RefTransactionId="nope")
    assert (unknown.IsError, unknown.Error) == (True, "transaction is completed or transaction id not found")
    empty = await downstream.reply(RequestTypeData=Get, Channel="t", MaxItems=1, WaitTimeout=1)
    assert (empty.IsError, list(empty.Messages)) == (False, [])


async def test_close_by_client_hands_messages_back(fresh_broker: EmbeddedBroker, downstream: RawDownstream, stub) -> None:
    await stub.SendQueueMessage(pb.QueueMessage(ClientID="c", Channel="cbc", Body=b"x"))
    got = await downstream.reply(RequestTypeData=Get, Channel="cbc", MaxItems=1, WaitTimeout=1000)
    assert await fresh_broker.queue_depth("cbc") == 0
    downstream.send(RequestTypeData=pb.QueuesDownstreamRequestType.CloseByClient, RefTransactionId=got.TransactionId)
    await until_depth(fresh_broker, "cbc", 1)


async def test_cancelled_stream_hands_messages_back(fresh_broker: EmbeddedBroker, stub) -> None:
    await stub.SendQueueMessage(pb.QueueMessage(ClientID="c", Channel="killed", Body=b"x"))
    stream = RawDownstream(stub)
    await stream.reply(RequestTypeData=Get, Channel="killed", MaxItems=1, WaitTimeout=1000)
    assert await fresh_broker.queue_depth("killed") == 0
    stream.close()  # like a connector process dying mid-request
    await until_depth(fresh_broker, "killed", 1)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (pb.QueueMessage(Channel="q", Body=b"1"), "Error 101: invalid clientID value, cannot be empty"),
        (
            pb.QueueMessage(ClientID="c", Channel="q.", Body=b"1"),
            "Error 120: invalid queue name value, cannot be empty, contains wildcards ,white spaces and end with dot",
        ),
        (pb.QueueMessage(ClientID="c", Channel="q"), "Error 110: invalid message, cannot be empty"),
        (
            pb.QueueMessage(ClientID="c", Channel="q", Body=b"1", Policy=pb.QueueMessagePolicy(ExpirationSeconds=43201)),
            "Error 133: invalid expiration seconds, exceed max expiration seconds setting in kubemq config",
        ),
        (
            pb.QueueMessage(ClientID="c", Channel="q", Body=b"1", Policy=pb.QueueMessagePolicy(MaxReceiveCount=-1)),
            "Error 134: invalid max received count, cannot be negative or exceed max receive count setting in kubemq config",
        ),
        (
            pb.QueueMessage(ClientID="c", Channel="q", Body=b"1", Policy=pb.QueueMessagePolicy(DelaySeconds=-1)),
            "Error 135: invalid delay seconds, exceed max delay seconds setting in kubemq config",
        ),
        (
            pb.QueueMessage(ClientID="c", Channel="q", Body=b"1", Policy=pb.QueueMessagePolicy(MaxReceiveQueue="d d")),
            "Error 120: invalid queue name value, cannot be empty, contains wildcards ,white spaces and end with dot",
        ),
    ],
)
async def test_send_queue_message_refusals_are_in_band(stub, message: pb.QueueMessage, expected: str) -> None:
    result = await stub.SendQueueMessage(message)
    assert (result.IsError, result.Error) == (True, expected)
    assert result.MessageID


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (
            pb.ReceiveQueueMessagesRequest(ClientID="c", Channel="q", MaxNumberOfMessages=0),
            "Error 122: max messages should be between 1 and max message setting in kubemq config  ",
        ),
        (
            pb.ReceiveQueueMessagesRequest(ClientID="c", Channel="q", MaxNumberOfMessages=1, WaitTimeSeconds=3601),
            "Error 136: invalid wait timeout, value cannot be negative or exceed max wait timeout seconds setting in kubemq config",
        ),
        (pb.ReceiveQueueMessagesRequest(Channel="q", MaxNumberOfMessages=1), "Error 101: invalid clientID value, cannot be empty"),
    ],
)
async def test_receive_queue_messages_refusals(stub, request_: pb.ReceiveQueueMessagesRequest, expected: str) -> None:
    response = await stub.ReceiveQueueMessages(request_)
    assert (response.IsError, response.Error) == (True, expected)


async def test_downstream_get_refusal(downstream: RawDownstream) -> None:
    refused = await downstream.reply(RequestTypeData=Get, Channel="a*")
    assert refused.IsError
    assert refused.Error.startswith("Error 120: invalid queue name value")


async def test_empty_batch_is_an_internal_error(stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SendQueueMessagesBatch(pb.QueueMessagesBatchRequest(BatchID="empty"))
    assert (caught.value.code(), caught.value.details()) == (grpc.StatusCode.INTERNAL, "no messages to send")


async def _settled() -> None:
    """Acks and rejects are fire-and-forget on the SDK's stream; give the broker a moment to apply them."""
    await asyncio.sleep(0.1)
