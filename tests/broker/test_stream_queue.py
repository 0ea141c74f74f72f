"""StreamQueueMessage, the transactional receive of kubemq-js and kubemq-go, through raw stubs.

The Python SDK does not use this RPC, so each test drives the stream as those
clients do and checks the server's replies and texts (kubemq-community
``pkg/client/queue.go``) and what happens to the message in the queue.
"""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from kubemq.grpc import kubemq_pb2 as pb
from kubemq.grpc import kubemq_pb2_grpc

from devbroker import EmbeddedBroker
from tests.broker.support import RawStream, until_depth

Kind = pb.StreamRequestType


class Transaction(RawStream[pb.StreamQueueMessagesRequest, pb.StreamQueueMessagesResponse]):
    """One StreamQueueMessage stream: one message, settled once."""

    def __init__(self, stub: kubemq_pb2_grpc.kubemqStub) -> None:
        super().__init__(stub.StreamQueueMessage)

    def send(self, kind: int, **fields: object) -> str:
        request_id = uuid.uuid4().hex
        self.put(pb.StreamQueueMessagesRequest(RequestID=request_id, ClientID="js", StreamRequestTypeData=kind, **fields))
        return request_id

    async def reply(self, kind: int, **fields: object) -> pb.StreamQueueMessagesResponse:
        request_id = self.send(kind, **fields)
        reply = await self.read()
        assert (reply.RequestID, reply.StreamRequestTypeData) == (request_id, kind)
        return reply

    async def receive(self, channel: str, visibility: int = 1, wait: int = 1) -> pb.QueueMessage:
        reply = await self.reply(Kind.ReceiveMessage, Channel=channel, VisibilitySeconds=visibility, WaitTimeSeconds=wait)
        assert not reply.IsError, reply.Error
        return reply.Message

    async def settle(self, kind: int, **fields: object) -> None:
        """A settling request gets an OK reply, then the broker ends the stream with status OK."""
        reply = await self.reply(kind, **fields)
        assert (reply.IsError, reply.Error) == (False, "")
        await self.ended()

    async def ended(self) -> None:
        assert await self.read() is grpc.aio.EOF
        assert await self.call.code() == grpc.StatusCode.OK


@pytest.fixture
def transactions(stub):
    """Opens transactions on the test's broker and cancels whatever the test leaves open."""
    opened: list[Transaction] = []

    def open_transaction() -> Transaction:
        opened.append(Transaction(stub))
        return opened[-1]

    yield open_transaction
    for transaction in opened:
        transaction.close()


async def send(stub, channel: str, body: bytes = b"job", **policy: object) -> None:
    result = await stub.SendQueueMessage(pb.QueueMessage(ClientID="sender", Channel=channel, Body=body, Policy=pb.QueueMessagePolicy(**policy)))
    assert not result.IsError, result.Error


async def test_receive_then_ack_removes_the_message(fresh_broker: EmbeddedBroker, stub, transactions) -> None:
    await send(stub, "jobs", b"first")
    transaction = transactions()
    message = await transaction.receive("jobs")
    assert (message.Body, message.Channel, message.ClientID) == (b"first", "jobs", "sender")
    assert (message.Attributes.Sequence, message.Attributes.ReceiveCount) == (1, 1)
    assert await fresh_broker.queue_depth("jobs") == 0  # held, hidden from other readers
    await transaction.settle(Kind.AckMessage, RefSequence=message.Attributes.Sequence)
    empty = transactions()
    expired = await empty.reply(Kind.ReceiveMessage, Channel="jobs", WaitTimeSeconds=1)
    assert (expired.IsError, expired.Error) == (True, "Error 138: no new message in queue, wait time expired")
    await empty.ended()


async def test_a_second_ack_gets_no_reply_because_the_first_one_ended_the_stream(stub, transactions) -> None:
    """As on the server, no text is ever sent for a second ack (kubemq-go refuses it client-side)."""
    await send(stub, "twice")
    transaction = transactions()
    message = await transaction.receive("twice")
    await transaction.settle(Kind.AckMessage, RefSequence=message.Attributes.Sequence)
    transaction.send(Kind.AckMessage, RefSequence=message.Attributes.Sequence)
    assert await transaction.read() is grpc.aio.EOF
    assert await transaction.call.code() == grpc.StatusCode.OK


async def test_refusals_before_and_during_a_transaction_keep_the_stream_open(stub, transactions) -> None:
    transaction = transactions()
    transaction.send(Kind.ReceiveMessage, Channel="later", VisibilitySeconds=5, WaitTimeSeconds=5)
    early = {
        Kind.AckMessage: "Error 124: no active message to ack",
        Kind.RejectMessage: "Error 137: no active message to reject",
        Kind.ResendMessage: "Error 126: no active message to send",
    }
    for kind, text in early.items():
        refused = await transaction.reply(kind, RefSequence=1, Channel="elsewhere")
        assert (refused.IsError, refused.Error) == (True, text)
    again = await transaction.reply(Kind.ReceiveMessage, Channel="later")
    assert again.Error == "Error 128: subscription to queue is already active"
    await send(stub, "later")  # the waiting receive gets it
    delivered = await transaction.read()
    assert delivered.Message.Body == b"job"
    wrong = await transaction.reply(Kind.AckMessage, RefSequence=delivered.Message.Attributes.Sequence + 1)
    assert (wrong.IsError, wrong.Error) == (True, "Error 125: ack sequence cannot be 0 or negative")
    await transaction.settle(Kind.AckMessage, RefSequence=delivered.Message.Attributes.Sequence)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (dict(ClientID="", Channel="q"), "Error 101: invalid clientID value, cannot be empty"),
        (
            dict(Channel="q.*"),
            "Error 120: invalid queue name value, cannot be empty, contains wildcards ,white spaces and end with dot",
        ),
        (
            dict(Channel="q", VisibilitySeconds=43201),
            "Error 127: invalid visibility time, cannot be negative or exceed setting in kubemq config",
        ),
        (
            dict(Channel="q", WaitTimeSeconds=-1),
            "Error 136: invalid wait timeout, value cannot be negative or exceed max wait timeout seconds setting in kubemq config",
        ),
        (dict(StreamRequestTypeData=Kind.AckMessage), "Error 125: ack sequence cannot be 0 or negative"),
        (dict(StreamRequestTypeData=Kind.SendModifiedMessage), "Error 131: invalid queue message"),
        (
            dict(StreamRequestTypeData=Kind.SendModifiedMessage, ModifiedMessage=pb.QueueMessage(ClientID="c", Channel="q")),
            "Error 110: invalid message, cannot be empty",
        ),
        (dict(StreamRequestTypeData=Kind.StreamRequestTypeUnknown), "Error 132: invalid stream queue messages request type"),
    ],
)
async def test_invalid_requests_are_refused_in_band(stub, transactions, fields: dict, expected: str) -> None:
    transaction = transactions()
    request = pb.StreamQueueMessagesRequest(ClientID="js", StreamRequestTypeData=Kind.ReceiveMessage)
    for name, value in fields.items():
        if isinstance(value, pb.QueueMessage):
            getattr(request, name).CopyFrom(value)
        else:
            setattr(request, name, value)
    transaction.put(request)
    refused = await transaction.read()
    assert (refused.IsError, refused.Error, refused.StreamRequestTypeData) == (True, expected, request.StreamRequestTypeData)
    assert refused.RequestID  # generated when the request has none


async def test_reject_redelivers_with_the_receive_counted_then_dead_letters(fresh_broker: EmbeddedBroker, stub, transactions) -> None:
    await send(stub, "work", b"poison", MaxReceiveCount=2, MaxReceiveQueue="work.dead")
    await send(stub, "work", b"next")
    first = transactions()
    message = await first.receive("work")
    assert (message.Body, message.Attributes.Sequence, message.Attributes.ReceiveCount) == (b"poison", 1, 1)
    await first.settle(Kind.RejectMessage, RefSequence=1)
    order = transactions()
    assert (await order.receive("work")).Body == b"next"  # the rejected one went to the tail
    await order.settle(Kind.AckMessage, RefSequence=2)
    second = transactions()
    again = await second.receive("work")
    assert (again.Body, again.Attributes.Sequence, again.Attributes.ReceiveCount) == (b"poison", 3, 2)
    await second.settle(Kind.RejectMessage, RefSequence=3)
    assert await fresh_broker.queue_depth("work") == 0
    dead = await transactions().receive("work.dead")
    assert (dead.Body, dead.Attributes.ReRouted, dead.Attributes.ReRoutedFromQueue) == (b"poison", True, "work")


async def test_modify_visibility_keeps_the_message_hidden_past_the_first_visibility(fresh_broker: EmbeddedBroker, stub, transactions) -> None:
    await send(stub, "slow")
    transaction = transactions()
    message = await transaction.receive("slow", visibility=1)
    extended = await transaction.reply(Kind.ModifyVisibility, VisibilitySeconds=3)
    assert (extended.IsError, extended.Error) == (False, "")
    await asyncio.sleep(1.3)
    assert await fresh_broker.queue_depth("slow") == 0
    # Replies come in order, so an expiry would have been read before the ack's reply.
    await transaction.settle(Kind.AckMessage, RefSequence=message.Attributes.Sequence)
    assert await fresh_broker.queue_depth("slow") == 0


async def test_expired_visibility_returns_the_message_with_the_servers_error(fresh_broker: EmbeddedBroker, stub, transactions) -> None:
    """The error comes unasked when visibility runs out; kubemq-go's next Ack reads it as its reply."""
    await send(stub, "expiring")
    transaction = transactions()
    receive_id = transaction.send(Kind.ReceiveMessage, Channel="expiring", VisibilitySeconds=1, WaitTimeSeconds=1)
    assert (await transaction.read()).Message.Attributes.Sequence == 1
    transaction.done_writing()  # a half-closed stream keeps its transaction until a timer ends it
    expired = await transaction.read()
    assert (expired.IsError, expired.Error) == (True, "Error 129: current visibility timer expired")
    assert (expired.RequestID, expired.StreamRequestTypeData) == (receive_id, Kind.ReceiveMessage)
    await transaction.ended()
    assert await fresh_broker.queue_depth("expiring") == 1
    back = await transactions().receive("expiring")
    assert (back.Attributes.Sequence, back.Attributes.ReceiveCount) == (2, 2)


async def test_resend_moves_the_message_to_another_queue(fresh_broker: EmbeddedBroker, stub, transactions) -> None:
    await send(stub, "inbox", b"route me")
    transaction = transactions()
    message = await transaction.receive("inbox")
    await transaction.settle(Kind.ResendMessage, Channel="outbox")
    assert await fresh_broker.queue_depth("inbox") == 0
    moved = await transactions().receive("outbox")
    assert (moved.Body, moved.MessageID, moved.Channel) == (b"route me", message.MessageID, "outbox")
    assert moved.Attributes.ReceiveCount == 1


async def test_send_modified_message_replaces_the_held_one(fresh_broker: EmbeddedBroker, stub, transactions) -> None:
    await send(stub, "drafts", b"draft")
    transaction = transactions()
    await transaction.receive("drafts")
    replacement = pb.QueueMessage(ClientID="js", Channel="final", Body=b"edited", Tags={"rev": "2"})
    await transaction.settle(Kind.SendModifiedMessage, ModifiedMessage=replacement)
    assert await fresh_broker.queue_depth("drafts") == 0
    edited = await transactions().receive("final")
    assert (edited.Body, edited.Tags["rev"], edited.Attributes.ReceiveCount) == (b"edited", "2", 1)


async def test_client_disconnect_mid_transaction_returns_the_message(fresh_broker: EmbeddedBroker, stub, transactions) -> None:
    await send(stub, "crashy")
    transaction = transactions()
    await transaction.receive("crashy", visibility=60)
    transaction.close()  # like a worker process dying before it acks
    await until_depth(fresh_broker, "crashy", 1)
    back = await transactions().receive("crashy")
    assert (back.Body, back.Attributes.Sequence, back.Attributes.ReceiveCount) == (b"job", 2, 2)


async def test_concurrent_transactions_get_one_message_each(stub, transactions) -> None:
    await send(stub, "shared", b"a")
    await send(stub, "shared", b"b")
    first, second = transactions(), transactions()
    got = await asyncio.gather(first.receive("shared"), second.receive("shared"))
    assert sorted(message.Body for message in got) == [b"a", b"b"]


async def test_a_token_protected_broker_refuses_a_stream_without_it() -> None:
    async with EmbeddedBroker(auth_token="s3cret") as fresh_broker, grpc.aio.insecure_channel(fresh_broker.address) as channel:
        transaction = Transaction(kubemq_pb2_grpc.kubemqStub(channel))
        transaction.send(Kind.ReceiveMessage, Channel="q")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await transaction.read()
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.details() == "Error 421: authentication verification failed, missing authorization token"
