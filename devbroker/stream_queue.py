"""``StreamQueueMessage``: one queue message per stream, settled once, as in kubemq-community.

This is the transactional receive of kubemq-js (``transaction``) and kubemq-go
(``StreamQueueMessage.Next``), modelled on ``QueueClient.StreamQueueMessage``
(``pkg/client/queue.go``) and its gRPC handler (``interfaces/grpc/grpc.go``):

* ``ReceiveMessage`` subscribes the stream to a queue (once; another gets
  Error 128) and waits up to ``WaitTimeSeconds`` (1 s if 0) for one message;
  none in time ends the stream with Error 138.
* The message is hidden from other readers for ``VisibilitySeconds`` (60 s if
  0); ``ModifyVisibility`` restarts that timer from now. When it runs out the
  stream gets Error 129 unasked, the message goes back as a reject does, and
  the stream ends.
* Ack (the message is gone), reject (back at the tail with the receive counted,
  or dead-lettered past ``MaxReceiveCount``), resend (to another queue) and
  send-modified (a replacement goes out instead) settle the message: the
  stream gets an OK reply and ends with status OK, so a later request on it,
  such as a second ack, is never answered.
* A refused request gets an ``IsError`` reply with the server's text and the
  stream goes on. Replies, the message and the timers' errors carry the
  ``RequestID`` and type of the latest request read, as on the server.
* A client that cancels while holding the message hands it back as a reject
  does (new sequence, receive counted). One that only half-closes keeps its
  transaction, which then ends by a timer.

Not modelled: the server re-checking ``MaxReceiveCount`` on delivery (counts
rise only on reject here, which enforces it), and an expired message stopping
its wait timer (here expired messages are dropped and the wait goes on).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from kubemq.grpc import kubemq_pb2 as pb

from devbroker.queues import DEFAULT_WAIT_SECONDS, QueueStore, as_delivered
from devbroker.validation import (
    DEFAULT_VISIBILITY_SECONDS,
    ERR_INVALID_ACK_SEQUENCE,
    ERR_NO_MESSAGE_TO_ACK,
    ERR_NO_MESSAGE_TO_REJECT,
    ERR_NO_MESSAGE_TO_SEND,
    ERR_NO_NEW_MESSAGE,
    ERR_SENDING_QUEUE_MESSAGE,
    ERR_SUBSCRIPTION_ACTIVE,
    ERR_VISIBILITY_EXPIRED,
    BrokerError,
    check_stream_queue_request,
)

RequestType = pb.StreamRequestType
Request = pb.StreamQueueMessagesRequest
Response = pb.StreamQueueMessagesResponse

# The server arms its visibility timer for a day before any message arrives.
IDLE_VISIBILITY_SECONDS = 24 * 60 * 60


class StreamTransaction:
    """One stream's state: the queue it reads, the message it holds, and its wait and visibility timers."""

    def __init__(self, store: QueueStore) -> None:
        self._store = store
        self._loop = asyncio.get_running_loop()
        self._latest = Request()
        self._channel = ""
        self._held: pb.QueueMessage | None = None
        # Set while waiting for the message, cleared once it is delivered.
        self._wait_deadline: float | None = None
        self._visibility_deadline = self._loop.time() + IDLE_VISIBILITY_SECONDS
        self._finished = False

    async def run(self, requests: AsyncIterator[Request]) -> AsyncGenerator[Response, None]:
        """Reply to requests, deliver the message and fire the timers until the transaction ends."""
        reader: asyncio.Task[Request | None] | None = _read_next(requests)
        try:
            while not self._finished:
                if self._wait_deadline is not None:
                    taken, _expired = self._store.take(self._channel, 1)
                    if taken:
                        yield self._deliver(taken[0])
                        continue
                await self._next_event(reader)
                if reader is not None and reader.done():
                    request = reader.result()
                    if request is None:  # the client half-closed: the transaction goes on until a timer ends it
                        reader = None
                        continue
                    reader = _read_next(requests)
                    reply = self._handle(request)
                else:
                    reply = self._on_timer()
                if reply is not None:
                    yield reply
        finally:
            if reader is not None:
                reader.cancel()
            self._return_held()

    async def _next_event(self, reader: asyncio.Task[Request | None] | None) -> None:
        """Wait for a request, a message ready on the awaited queue, or the nearest timer."""
        waiting: set[asyncio.Future[Any]] = set() if reader is None else {reader}
        arrival = None
        if self._wait_deadline is not None:
            arrival = asyncio.ensure_future(self._store.arrival(self._channel).wait())
            waiting.add(arrival)
        deadline = self._visibility_deadline
        if self._wait_deadline is not None:
            deadline = min(deadline, self._wait_deadline)
        timeout = max(0.0, deadline - self._loop.time())
        try:
            if waiting:
                await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            else:
                await asyncio.sleep(timeout)
        finally:
            if arrival is not None:
                arrival.cancel()

    def _handle(self, request: Request) -> Response | None:
        current = Request()
        current.CopyFrom(request)
        current.RequestID = current.RequestID or uuid.uuid4().hex
        self._latest = current
        try:
            check_stream_queue_request(current)
            return self._apply(current)
        except BrokerError as error:
            return _reply(current, IsError=True, Error=error.message)

    def _apply(self, request: Request) -> Response | None:
        """Carry out a valid request; settling ones end the transaction."""
        kind = request.StreamRequestTypeData
        if kind in (RequestType.ReceiveMessage, RequestType.ModifyVisibility):
            request.VisibilitySeconds = request.VisibilitySeconds or DEFAULT_VISIBILITY_SECONDS
        if kind == RequestType.ReceiveMessage:
            self._subscribe(request)
            return None  # the message (or Error 138) is the reply
        if kind == RequestType.ModifyVisibility:
            self._visibility_deadline = self._loop.time() + request.VisibilitySeconds
            return _reply(request)
        if kind == RequestType.AckMessage:
            self._holding(ERR_NO_MESSAGE_TO_ACK, request.RefSequence)
            self._held = None
        elif kind == RequestType.RejectMessage:
            self._holding(ERR_NO_MESSAGE_TO_REJECT, request.RefSequence)
            self._return_held()
        elif kind == RequestType.ResendMessage:
            held = self._holding(ERR_NO_MESSAGE_TO_SEND)
            self._send_instead(self._store.requeue(held, request.Channel))
        else:  # SendModifiedMessage; the server reuses the ack text when nothing is held
            self._holding(ERR_NO_MESSAGE_TO_ACK)
            self._send_instead(self._store.send(request.ModifiedMessage))
        return self._finish(_reply(request))

    def _subscribe(self, request: Request) -> None:
        if self._channel:
            raise BrokerError(ERR_SUBSCRIPTION_ACTIVE)
        self._channel = request.Channel
        self._wait_deadline = self._loop.time() + (request.WaitTimeSeconds or DEFAULT_WAIT_SECONDS)

    def _deliver(self, stored: pb.QueueMessage) -> Response:
        self._held = stored
        self._wait_deadline = None
        # The server times visibility from the latest request, normally the receive itself.
        self._visibility_deadline = self._loop.time() + self._latest.VisibilitySeconds
        return _reply(self._latest, Message=as_delivered(stored))

    def _holding(self, refusal: str, sequence: int | None = None) -> pb.QueueMessage:
        """The held message, if there is one and ``sequence`` (when given) names it."""
        if self._held is None:
            raise BrokerError(refusal)
        if sequence is not None and sequence != self._held.Attributes.Sequence:
            raise BrokerError(ERR_INVALID_ACK_SEQUENCE)
        return self._held

    def _send_instead(self, result: pb.SendQueueMessageResult) -> None:
        """The held message is done once its replacement is stored; if that fails it stays held."""
        if result.IsError:
            raise BrokerError(ERR_SENDING_QUEUE_MESSAGE)
        self._held = None

    def _return_held(self) -> None:
        """Back to the queue with the receive counted, as the server's reject, expiry and cancel paths do."""
        held, self._held = self._held, None
        if held is not None:
            self._store.reject(held)

    def _on_timer(self) -> Response | None:
        now = self._loop.time()
        if self._wait_deadline is not None and now >= self._wait_deadline:
            return self._finish(_reply(self._latest, IsError=True, Error=ERR_NO_NEW_MESSAGE))
        if now >= self._visibility_deadline:
            self._return_held()
            return self._finish(_reply(self._latest, IsError=True, Error=ERR_VISIBILITY_EXPIRED))
        return None

    def _finish(self, reply: Response) -> Response:
        self._finished = True
        return reply


def _read_next(requests: AsyncIterator[Request]) -> asyncio.Task[Request | None]:
    async def next_request() -> Request | None:
        return await anext(requests, None)

    return asyncio.create_task(next_request())


def _reply(request: Request, **fields: Any) -> Response:
    return Response(RequestID=request.RequestID, StreamRequestTypeData=request.StreamRequestTypeData, **fields)
