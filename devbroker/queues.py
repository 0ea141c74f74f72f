"""Queue storage: per-channel FIFO with delivery counting, policies and hand-back of held messages.

Modelled on kubemq-community v2.3.7 (``pkg/client/queue.go``), where a queue
is a NATS Streaming channel read by one durable queue group:

* Each channel numbers its messages from 1; a message is *ready* (visible),
  *delayed* (``DelaySeconds``, it gets its sequence when it becomes due), or
  *held* by a reader until acked (gone), rejected or handed back.
* ``ReceiveCount`` is stored as the number of rejections; a delivered copy
  shows one more. A message handed back because its reader vanished keeps its
  sequence and its count, as NATS Streaming redelivery does.
* A rejected message is re-published at the tail with the count raised, unless
  that breaks ``MaxReceiveCount``: then it moves to ``MaxReceiveQueue`` marked
  ``ReRouted``/``ReRoutedFromQueue`` (or is dropped if there is none).
* Expired messages are dropped when a reader would get them.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import structlog
from kubemq.grpc import kubemq_pb2 as pb

from devbroker.validation import (
    MAX_RECEIVE_COUNT,
    BrokerError,
    check_queue_message,
    check_queue_reader,
    check_receive_request,
    check_wait_seconds,
)

log = structlog.get_logger("devbroker")

_NANOS_PER_SECOND = 1_000_000_000
# Server default when a receive or ack-all asks for 0 seconds (Queue.DefaultWaitTimeoutSeconds).
DEFAULT_WAIT_SECONDS = 1


@dataclass
class _Channel:
    """One queue: ready messages by sequence, plus a wake-up for waiting readers."""

    ready: dict[int, pb.QueueMessage] = field(default_factory=dict)
    # Min-heap of ready sequences; entries whose message is gone are skipped lazily.
    order: list[int] = field(default_factory=list)
    next_sequence: int = 1
    delayed: int = 0
    arrival: asyncio.Event = field(default_factory=asyncio.Event)


def as_delivered(stored: pb.QueueMessage) -> pb.QueueMessage:
    """The copy a reader sees: the stored message with this delivery counted."""
    delivered = pb.QueueMessage()
    delivered.CopyFrom(stored)
    delivered.Attributes.ReceiveCount += 1
    return delivered


def _is_expired(message: pb.QueueMessage) -> bool:
    expiration = message.Attributes.ExpirationAt
    return expiration > 0 and expiration < time.time_ns()


class QueueStore:
    """All queue channels of one broker."""

    def __init__(self) -> None:
        self._channels: dict[str, _Channel] = {}

    def _channel(self, name: str) -> _Channel:
        return self._channels.setdefault(name, _Channel())

    def depth(self, channel: str) -> int:
        """Messages waiting for a reader (ready or delayed), not those held by one."""
        queue = self._channels.get(channel)
        return len(queue.ready) + queue.delayed if queue else 0

    # -- sending -------------------------------------------------------------

    def send(self, message: pb.QueueMessage) -> pb.SendQueueMessageResult:
        """Store one message; refusals come back in the result, never as a gRPC error."""
        stored = pb.QueueMessage()
        stored.CopyFrom(message)
        stored.MessageID = message.MessageID or uuid.uuid4().hex
        stored.ClearField("Attributes")
        result = pb.SendQueueMessageResult(MessageID=stored.MessageID)
        try:
            check_queue_message(stored)
        except BrokerError as error:
            result.IsError = True
            result.Error = error.message
            return result
        policy = stored.Policy
        if policy.MaxReceiveCount == 0:
            policy.MaxReceiveCount = MAX_RECEIVE_COUNT
        now = time.time_ns()
        if policy.ExpirationSeconds > 0:
            stored.Attributes.ExpirationAt = now + (policy.ExpirationSeconds + policy.DelaySeconds) * _NANOS_PER_SECOND
        if policy.DelaySeconds > 0:
            stored.Attributes.DelayedTo = now + policy.DelaySeconds * _NANOS_PER_SECOND
            self._delay(stored, policy.DelaySeconds)
        else:
            self._append(stored)
        result.SentAt = time.time_ns()
        result.ExpirationAt = stored.Attributes.ExpirationAt
        result.DelayedTo = stored.Attributes.DelayedTo
        return result

    def send_batch(self, messages: Iterable[pb.QueueMessage]) -> list[pb.SendQueueMessageResult]:
        return [self.send(message) for message in messages]

    def _delay(self, stored: pb.QueueMessage, seconds: int) -> None:
        queue = self._channel(stored.Channel)
        queue.delayed += 1

        def become_due() -> None:
            queue.delayed -= 1
            self._append(stored)

        asyncio.get_running_loop().call_later(seconds, become_due)

    def _append(self, stored: pb.QueueMessage) -> None:
        """Publish at the tail with the next sequence and wake readers."""
        queue = self._channel(stored.Channel)
        stored.Attributes.Sequence = queue.next_sequence
        stored.Attributes.Timestamp = time.time_ns()
        queue.next_sequence += 1
        self._make_ready(queue, stored)

    @staticmethod
    def _make_ready(queue: _Channel, stored: pb.QueueMessage) -> None:
        sequence = stored.Attributes.Sequence
        queue.ready[sequence] = stored
        heapq.heappush(queue.order, sequence)
        woken, queue.arrival = queue.arrival, asyncio.Event()
        woken.set()

    # -- reading -------------------------------------------------------------

    def arrival(self, channel: str) -> asyncio.Event:
        """Set when a message next becomes ready on ``channel`` (a fresh event after each arrival)."""
        return self._channel(channel).arrival

    def take(self, channel: str, limit: int) -> tuple[list[pb.QueueMessage], int]:
        """Remove up to ``limit`` unexpired messages in sequence order at once; also returns how many expired.

        (The server also re-checks ``MaxReceiveCount`` here; with counts raised
        only by rejections, which already enforce it, that check never fires.)
        """
        queue = self._channel(channel)
        taken: list[pb.QueueMessage] = []
        expired = 0
        while len(taken) < limit and queue.order:
            stored = queue.ready.pop(heapq.heappop(queue.order), None)
            if stored is None:
                continue
            if _is_expired(stored):
                expired += 1
                log.info("queue message expired", message_id=stored.MessageID, channel=channel)
                continue
            taken.append(stored)
        return taken, expired

    async def take_within(self, channel: str, limit: int, wait_seconds: float) -> tuple[list[pb.QueueMessage], int]:
        """Hold messages until ``limit`` are taken or the wait ends, as the server's poll does.

        If the caller is cancelled meanwhile, what it held goes back to the queue.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        taken: list[pb.QueueMessage] = []
        expired = 0
        try:
            while True:
                more, more_expired = self.take(channel, limit - len(taken))
                taken += more
                expired += more_expired
                remaining = deadline - loop.time()
                if len(taken) >= limit or remaining <= 0:
                    return taken, expired
                arrival = self.arrival(channel)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrival.wait(), remaining)
        except BaseException:
            self.hand_back(taken)
            raise

    def hand_back(self, held: Iterable[pb.QueueMessage]) -> None:
        """Make held messages visible again at their old place (reader gone or transaction closed)."""
        for stored in held:
            self._make_ready(self._channel(stored.Channel), stored)

    def reject(self, stored: pb.QueueMessage) -> None:
        """Re-publish at the tail with one more rejection, or dead-letter it past ``MaxReceiveCount``."""
        rejected = pb.QueueMessage()
        rejected.CopyFrom(stored)
        rejected.Attributes.ReceiveCount += 1
        limit = rejected.Policy.MaxReceiveCount
        # The server checks the policy as if the message had been delivered once more.
        if limit > 0 and rejected.Attributes.ReceiveCount + 1 > limit:
            self._dead_letter(rejected)
            return
        self._append(rejected)

    def requeue(self, stored: pb.QueueMessage, channel: str) -> pb.SendQueueMessageResult:
        """Send a held message to another queue through the normal send path (fresh attributes)."""
        moved = pb.QueueMessage()
        moved.CopyFrom(stored)
        moved.Channel = channel
        return self.send(moved)

    def _dead_letter(self, message: pb.QueueMessage) -> None:
        target = message.Policy.MaxReceiveQueue
        if not target:
            log.info("queue message dropped after its receives", message_id=message.MessageID, channel=message.Channel, receive_count=message.Attributes.ReceiveCount)
            return
        dead = pb.QueueMessage()
        dead.CopyFrom(message)
        dead.Channel = target
        dead.ClearField("Policy")
        dead.Attributes.ReceiveCount = 0
        dead.Attributes.ReRouted = True
        dead.Attributes.ReRoutedFromQueue = message.Channel
        self._append(dead)

    # -- unary receive RPCs ----------------------------------------------------

    async def receive(self, request: pb.ReceiveQueueMessagesRequest) -> pb.ReceiveQueueMessagesResponse:
        """``ReceiveQueueMessages``: take and ack at once, or with ``IsPeak`` look without taking."""
        request_id = request.RequestID or uuid.uuid4().hex
        response = pb.ReceiveQueueMessagesResponse(RequestID=request_id, IsPeak=request.IsPeak)
        try:
            check_receive_request(request)
        except BrokerError as error:
            response.IsError = True
            response.Error = error.message
            return response
        wait_seconds = request.WaitTimeSeconds or DEFAULT_WAIT_SECONDS
        taken, expired = await self.take_within(request.Channel, request.MaxNumberOfMessages, wait_seconds)
        if request.IsPeak:
            self.hand_back(taken)
        response.Messages.extend(as_delivered(stored) for stored in taken)
        response.MessagesReceived = len(taken)
        response.MessagesExpired = expired
        return response

    async def ack_all(self, request: pb.AckAllQueueMessagesRequest) -> pb.AckAllQueueMessagesResponse:
        """``AckAllQueueMessages``: delete everything that is or becomes ready during the wait.

        Like the server, it always waits the full ``WaitTimeSeconds`` (1 s if 0).
        """
        request_id = request.RequestID or uuid.uuid4().hex
        response = pb.AckAllQueueMessagesResponse(RequestID=request_id)
        try:
            check_queue_reader(request.ClientID, request.Channel)
            check_wait_seconds(request.WaitTimeSeconds)
        except BrokerError as error:
            response.IsError = True
            response.Error = error.message
            return response
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (request.WaitTimeSeconds or DEFAULT_WAIT_SECONDS)
        queue = self._channel(request.Channel)
        while (remaining := deadline - loop.time()) > 0:
            response.AffectedMessages += len(queue.ready)
            queue.ready.clear()
            queue.order.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(queue.arrival.wait(), remaining)
        return response
