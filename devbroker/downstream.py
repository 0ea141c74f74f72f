"""``QueuesDownstream``: poll transactions, scoped to one stream, as in kubemq-community v2.3.7.

A ``Get`` opens a transaction holding what it received; ack, reject (NAck) or
re-queue requests must name it in ``RefTransactionId`` **on the same stream**.
A transaction closes when nothing is held any more, on ``CloseByClient``, and
when the stream ends; whatever is still held then goes back to the queue.
Successful operations send no reply; failures reply with ``IsError`` and the
server's own texts (from ``services/array/array_queues_downstream.go`` and
``pkg/client/queue_downstream.go``, trailing spaces included).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

from kubemq.grpc import kubemq_pb2 as pb

from devbroker.queues import QueueStore, as_delivered
from devbroker.validation import BrokerError, check_queue_reader

RequestType = pb.QueuesDownstreamRequestType

ERR_TRANSACTION_NOT_FOUND = "transaction is completed or transaction id not found"
ERR_REQUEST_UNKNOWN = "request unknown"

# Server defaults applied to a Get before validation (pkg/client/queue_downstream.go).
DEFAULT_MAX_ITEMS = 200_000
MIN_WAIT_TIMEOUT_MS = 1000


class TransactionError(Exception):
    """A refused transaction operation; its text goes to the reply's ``Error``."""


class Transaction:
    """What one ``Get`` holds, by sequence, until acked, rejected, re-queued or handed back."""

    def __init__(self, store: QueueStore, held: Sequence[pb.QueueMessage]) -> None:
        self.id = uuid.uuid4().hex
        self._store = store
        self._held = {message.Attributes.Sequence: message for message in held}
        self._closed = not self._held

    def ack_all(self) -> None:
        self._ensure_open("cannot ack messages with closed response ")
        self._held.clear()
        self._closed = True

    def reject_all(self) -> None:
        self._ensure_open("cannot nack messages with closed response ")
        for message in self._held.values():
            self._store.reject(message)
        self._held.clear()
        self._closed = True

    def requeue_all(self, channel: str) -> None:
        # The server reuses the ack wording here.
        self._ensure_open("cannot ack messages with closed response ")
        _require_destination(channel)
        self._requeue(list(self._held), channel)
        self._closed = True

    def ack_range(self, sequences: Sequence[int]) -> None:
        self._ensure_open("cannot ack messages with closed response ")
        self._apply_to_range(sequences, "ack", lambda message: None)

    def reject_range(self, sequences: Sequence[int]) -> None:
        self._ensure_open("cannot nack messages with closed response ")
        self._apply_to_range(sequences, "nack", self._store.reject)

    def requeue_range(self, sequences: Sequence[int], channel: str) -> None:
        self._ensure_open("cannot requeue messages with closed response ")
        _require_destination(channel)
        if not sequences:
            raise TransactionError("cannot requeue empty list of of offsets")
        self._requeue(sequences, channel)
        self._close_if_empty()

    def active_offsets(self) -> list[int]:
        self._ensure_open("cannot get active offsets with closed response ")
        return list(self._held)

    def close(self) -> None:
        """End the transaction; anything still held becomes visible again."""
        if self._closed:
            return
        self._store.hand_back(self._held.values())
        self._held.clear()
        self._closed = True

    def _ensure_open(self, refusal: str) -> None:
        if self._closed:
            raise TransactionError(refusal)

    def _apply_to_range(self, sequences: Sequence[int], verb: str, settle: Callable[[pb.QueueMessage], None]) -> None:
        """Settle in order; like the server, stop at the first unknown sequence (earlier ones stay done)."""
        if not sequences:
            raise TransactionError(f"cannot {verb} empty list of of offsets")
        for sequence in sequences:
            message = self._held.pop(sequence, None)
            if message is None:
                raise TransactionError(f"invalid {verb} sequence id {sequence}")
            settle(message)
        self._close_if_empty()

    def _requeue(self, sequences: Sequence[int], channel: str) -> None:
        for sequence in sequences:
            message = self._held.get(sequence)
            if message is None:
                raise TransactionError(f"invalid ack sequence id {sequence}")
            result = self._store.requeue(message, channel)
            if result.IsError:
                raise TransactionError(f"re-queue message with seq {sequence} failed, {result.Error}")
            del self._held[sequence]

    def _close_if_empty(self) -> None:
        if not self._held:
            self._closed = True


def _require_destination(channel: str) -> None:
    if not channel:
        raise TransactionError("cannot requeue messages with empty channel destination ")


class DownstreamSession:
    """One ``QueuesDownstream`` stream: its transactions and the handling of each request, in order."""

    def __init__(self, store: QueueStore) -> None:
        self._store = store
        self._transactions: dict[str, Transaction] = {}

    async def handle(self, request: pb.QueuesDownstreamRequest) -> pb.QueuesDownstreamResponse | None:
        """The reply to send, if any (successful settle operations get none)."""
        if request.RequestTypeData == RequestType.Get:
            return await self._get(request)
        transaction = self._transactions.get(request.RefTransactionId)
        if transaction is None:
            return _refusal(request, request.RefTransactionId, ERR_TRANSACTION_NOT_FOUND)
        try:
            return self._settle(transaction, request)
        except TransactionError as error:
            return _refusal(request, transaction.id, str(error))

    def close(self) -> None:
        """Stream ended: every open transaction hands its messages back."""
        for transaction in self._transactions.values():
            transaction.close()
        self._transactions.clear()

    async def _get(self, request: pb.QueuesDownstreamRequest) -> pb.QueuesDownstreamResponse:
        max_items = request.MaxItems if request.MaxItems > 0 else DEFAULT_MAX_ITEMS
        wait_ms = max(request.WaitTimeout, MIN_WAIT_TIMEOUT_MS)
        try:
            check_queue_reader(request.ClientID, request.Channel)
        except BrokerError as error:
            return _refusal(request, uuid.uuid4().hex, error.message)
        held, _expired = await self._store.take_within(request.Channel, max_items, wait_ms / 1000)
        transaction = Transaction(self._store, held)
        self._transactions[transaction.id] = transaction
        if held and request.AutoAck:
            transaction.ack_all()
        return pb.QueuesDownstreamResponse(
            TransactionId=transaction.id,
            RefRequestId=request.RequestID,
            RequestTypeData=RequestType.Get,
            Messages=[as_delivered(message) for message in held],
        )

    @staticmethod
    def _settle(transaction: Transaction, request: pb.QueuesDownstreamRequest) -> pb.QueuesDownstreamResponse | None:
        kind = request.RequestTypeData
        sequences = list(request.SequenceRange)
        if kind == RequestType.AckAll:
            transaction.ack_all()
        elif kind == RequestType.AckRange:
            transaction.ack_range(sequences)
        elif kind == RequestType.NAckAll:
            transaction.reject_all()
        elif kind == RequestType.NAckRange:
            transaction.reject_range(sequences)
        elif kind == RequestType.ReQueueAll:
            transaction.requeue_all(request.ReQueueChannel)
        elif kind == RequestType.ReQueueRange:
            transaction.requeue_range(sequences, request.ReQueueChannel)
        elif kind == RequestType.CloseByClient:
            transaction.close()
        elif kind == RequestType.ActiveOffsets:
            return pb.QueuesDownstreamResponse(
                TransactionId=transaction.id,
                RefRequestId=request.RequestID,
                RequestTypeData=kind,
                ActiveOffsets=transaction.active_offsets(),
            )
        else:
            return _refusal(request, transaction.id, ERR_REQUEST_UNKNOWN, RequestType.PollRequestTypeUnknown)
        return None


def _refusal(request: pb.QueuesDownstreamRequest, transaction_id: str, error: str, kind: pb.QueuesDownstreamRequestType | None = None) -> pb.QueuesDownstreamResponse:
    return pb.QueuesDownstreamResponse(
        TransactionId=transaction_id,
        RefRequestId=request.RequestID,
        RequestTypeData=request.RequestTypeData if kind is None else kind,
        IsError=True,
        Error=error,
    )
