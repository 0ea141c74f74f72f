"""Source ``kubemq.queue``: at-least-once requests that survive failures and restarts.

kubemq-targets polls with auto-ack, so a failed or interrupted request is
lost. Here a message is polled with manual ack and settled only when its fate
is known:

* success: the response is sent to ``response_channel`` (if set), then the
  message is acked;
* a failure that can succeed on retry (throttling, 5xx, timeouts): the message
  is rejected, so KubeMQ redelivers it, until it has been received
  ``max_receive_count`` times;
* a failure that cannot (bad request, ``NoSuchKey``, ``AccessDenied``), or the
  last allowed attempt: the error response is sent, the message is copied to
  ``dead_letter_queue`` with the error in its tags, then acked.

A response that cannot be sent counts as the request's failure: one that can
never go (too large, invalid or not allowed) is dead-lettered at once, with a
short error response saying why; any other failure (connection, throttling)
is retryable. ``max_receive_count`` bounds every outcome: a message received
more often than that (settling its last allowed delivery failed, so it was
rejected once more) is dead-lettered without running it again.

Until then the message stays held by this connector's stream: if the
connector dies, KubeMQ makes it visible again and it is redelivered.

KubeMQ handles a stream's requests one at a time, so a waiting poll would
hold back the acks of messages still in flight. Each stream therefore polls
again only once its previous batch is settled; parallelism comes from
``sources`` (streams) times ``batch_size``, bounded by ``max_concurrency``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace

import structlog
from kubemq import AsyncQueuesClient, ClientConfig, QueueMessage, QueueMessageReceived, QueueSendResult
from kubemq.core.exceptions import ErrorCode, KubeMQError, KubeMQValidationError
from pydantic import model_validator

from bindings import tracing
from bindings.errors import RequestError
from bindings.kubemq.connection import ConnectionProperties, OutputChannel, ReplyProperties, check_not_read_back
from bindings.kubemq.sdk import flush_downstream, send_serialized_queue_message, serialized_reply
from bindings.kubemq.subscription import SubscriptionSource
from bindings.properties import field
from bindings.source import Outcome
from bindings.wire import Response

log = structlog.get_logger("bindings.kubemq")

# One poll waits at most this long: the SDK gives up on a downstream reply after
# 300 s, and an idle poll every minute costs nothing.
MAX_POLL_SECONDS = 60
MAX_TAG_CHARS = 1024
# Most message ids remembered as answered while their dead-letter copy is still to go.
MAX_ANSWERED_KEPT = 10_000
# A RESOURCE_EXHAUSTED that is about the message's size (gRPC's limit), not throttling.
_TOO_LARGE = re.compile(r"larger than max|too large", re.IGNORECASE)
# KubeMQ's validation errors (1xx codes), e.g. "Error 110: invalid message, cannot be empty".
_VALIDATION_ERROR = re.compile(r"Error 1\d\d\b")


class QueueProperties(ReplyProperties, ConnectionProperties):
    """``kubemq.queue``: the queue to poll, how, and where failures go."""

    address: str = field("localhost:50000", description="KubeMQ gRPC address `host:port`, or `embedded` to start the built-in development broker.", example="kubemq-cluster-grpc.kubemq:50000")
    channel: str = field(description="Queue to receive requests from.", example="queue.aws.s3")
    sources: int = field(1, ge=1, le=1024, description="Parallel poll streams (each its own client); at most `sources` x `batch_size` requests are in flight.", example=4)
    max_concurrency: int = field(32, ge=1, le=1000, description="Most requests in flight for this binding (there are never more than `sources` x `batch_size`).", example=32)
    batch_size: int = field(1, ge=1, le=1024, description="Most messages taken per poll. A poll returns when it has this many or `wait_timeout` has passed.", example=1)
    wait_timeout: int = field(5, ge=1, le=86400, description="Seconds one poll waits for messages (at most 60 per poll; larger values are accepted for kubemq-targets configs).", example=5)
    max_receive_count: int = field(
        3, ge=1, le=1024, description="Deliveries of a message before it is dead-lettered, whatever brought it back (a retryable failure, a response lost in transit).", example=3
    )
    dead_letter_queue: OutputChannel = field(
        "", description="Queue that receives requests that failed for good (original body and metadata, error in the tags); empty: `<channel>.dlq`.", example="queue.aws.s3.dlq"
    )

    @model_validator(mode="after")
    def _default_dead_letter_queue(self) -> QueueProperties:
        if not self.dead_letter_queue:
            object.__setattr__(self, "dead_letter_queue", f"{self.channel}.dlq")
        check_not_read_back(self, "dead_letter_queue")
        return self


class QueueError(RuntimeError):
    """KubeMQ refused a poll or a send: the stream is re-opened (with backoff), or the message rejected."""


class SendRefused(QueueError):
    """A message that can never be sent as it is (too large, invalid, not allowed): trying again cannot help."""


class ResponseNotSent(RequestError):
    """The request ran, but its response could not be sent; retryable unless it can never be sent."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(f"the request ran but its response could not be sent: {str(cause) or type(cause).__name__}")
        self.retryable = not isinstance(cause, SendRefused)


class DeliveredTooOften(RequestError):
    """A message received more often than ``max_receive_count``: it is not run again."""

    def __init__(self, receive_count: int, limit: int) -> None:
        super().__init__(f"received {receive_count} times, more than max_receive_count ({limit}); not run again")


class Batch:
    """The messages of one poll; the stream polls again once all are settled."""

    def __init__(self, size: int) -> None:
        self._left = size
        self.settled = asyncio.Event()
        if size == 0:
            self.settled.set()

    def settle_one(self) -> None:
        self._left -= 1
        if self._left <= 0:
            self.settled.set()


@dataclass(frozen=True, slots=True)
class Polled:
    """A received message and the batch it came in."""

    message: QueueMessageReceived
    batch: Batch


class QueueSource(SubscriptionSource[AsyncQueuesClient, Polled]):
    kind = "kubemq.queue"
    aliases = ("source.queue",)
    summary = "Polls a KubeMQ queue; acks a message only after its request succeeded and its response was sent, redelivers retryable failures, dead-letters the rest."
    properties: QueueProperties
    properties_model = QueueProperties

    def __init__(self, properties: QueueProperties, binding: str) -> None:
        super().__init__(properties, binding)
        self._unanswered_polls: set[AsyncQueuesClient] = set()
        # Messages given up whose error response went but whose dead-letter copy did not (they
        # come back): their next give-up sends no second response. Oldest dropped past the bound.
        self._answered: dict[str, None] = {}

    def new_client(self, config: ClientConfig) -> AsyncQueuesClient:
        return AsyncQueuesClient(config=config)

    async def close_client(self, client: AsyncQueuesClient, *, reachable: bool) -> None:
        # The last acks must reach KubeMQ, or their messages come back. Behind an
        # unanswered poll there are none (polls wait for their batch to settle),
        # and a flush would only wait for that poll to time out; on a dead connection, for nothing.
        if reachable and client not in self._unanswered_polls:
            await flush_downstream(client)
        self._unanswered_polls.discard(client)
        await client.close()

    @property
    def max_concurrency(self) -> int:
        """Requests in flight at most: a batch per stream, within ``max_concurrency``."""
        props = self.properties
        return min(props.max_concurrency, props.sources * props.batch_size)

    @property
    def max_reply_data(self) -> int | None:
        """No limit without ``response_channel``: nothing is sent back, so no object is too big to reply with."""
        return super().max_reply_data if self.properties.response_channel else None

    async def open_stream(self, client: AsyncQueuesClient, index: int, stop: asyncio.Event) -> AsyncIterator[Polled]:
        wait = min(self.properties.wait_timeout, MAX_POLL_SECONDS)
        while not stop.is_set():
            self._unanswered_polls.add(client)
            polled = await client.receive_queue_messages(self.properties.channel, max_messages=self.properties.batch_size, wait_timeout_seconds=wait, auto_ack=False)
            self._unanswered_polls.discard(client)  # not reached when cancelled: KubeMQ still holds that poll
            if polled.is_error:
                raise QueueError(polled.error or "queue poll failed")
            batch = Batch(len(polled.messages))
            for message in polled.messages:
                if message.receive_count <= self.properties.max_receive_count:
                    yield Polled(message, batch)
                    continue
                await self._give_up_unrun(client, Polled(message, batch))
                batch.settle_one()
            await batch.settled.wait()

    async def _give_up_unrun(self, client: AsyncQueuesClient, message: Polled) -> None:
        """Dead-letter a message over its delivery limit without running it (``deliver`` rejects it if that fails)."""
        error = DeliveredTooOften(message.message.receive_count, self.properties.max_receive_count)
        try:
            await self.deliver(client, message, Outcome(Response.failure(error), error))
        except Exception as exc:  # noqa: BLE001 - logged; the message comes back and the stream goes on
            log.error("could not dead-letter a message over its delivery limit", binding=self.binding, request_id=message.message.id, error=str(exc) or type(exc).__name__)

    def describe(self, message: Polled) -> tuple[str, bytes, float | None]:
        return message.message.id, message.message.body, None

    def tags(self, message: Polled) -> Mapping[str, str]:
        return message.message.tags

    async def settle(self, index: int, message: Polled, outcome: Outcome) -> None:
        try:
            await super().settle(index, message, outcome)
        finally:
            message.batch.settle_one()

    def outcome_lost(self, message: Polled, exc: Exception) -> None:
        """Not a lost reply: the message was never acked, so KubeMQ delivers it again (``max_receive_count`` bounds how often)."""
        log.warning(
            "queue message not settled: the connection to KubeMQ was lost; it will be delivered again", binding=self.binding, request_id=message.message.id, error=str(exc) or type(exc).__name__
        )

    async def answer_instead(self, index: int, message: Polled, outcome: Outcome) -> None:
        """Nothing more to do: a delivery that failed has already rejected the message (``deliver``), so it comes back."""

    async def deliver(self, client: AsyncQueuesClient, message: Polled, outcome: Outcome) -> None:
        received = message.message
        try:
            if outcome.error is None:
                outcome = await self._answer(client, received, outcome)
            if outcome.error is not None:
                if outcome.error.retryable and received.receive_count < self.properties.max_receive_count:
                    log.warning("queue request failed; rejected for redelivery", binding=self.binding, request_id=received.id, receive_count=received.receive_count, error=str(outcome.error))
                    await received.async_nack()
                    self.on_settled(outcome.method, "rejected")
                    return
                await self._give_up(client, received, outcome)
        except BaseException:
            # Not settled: hand it back now rather than when the stream closes.
            with contextlib.suppress(Exception):
                await received.async_nack()
                self.on_settled(outcome.method, "rejected")
            raise
        await received.async_ack()
        self.on_settled(outcome.method, "acked" if outcome.error is None else "dead_lettered")

    async def _answer(self, client: AsyncQueuesClient, message: QueueMessageReceived, outcome: Outcome) -> Outcome:
        """Send a success's response; if it cannot be sent, that becomes the request's failure."""
        try:
            await self._respond(client, message, outcome)
        except Exception as exc:  # noqa: BLE001 - any failure to answer is the request's outcome
            error = ResponseNotSent(exc)
            return Outcome(Response.failure(error), error, method=outcome.method)
        return outcome

    async def _give_up(self, client: AsyncQueuesClient, message: QueueMessageReceived, outcome: Outcome) -> None:
        """Send the error response (once per message), then dead-letter; a response that can never be sent does not hold the message back."""
        if message.id not in self._answered:
            try:
                await self._respond(client, message, outcome)
            except SendRefused as exc:
                log.error("error response refused; dead-lettering anyway", binding=self.binding, request_id=message.id, error=str(exc))
            self._answered[message.id] = None
            if len(self._answered) > MAX_ANSWERED_KEPT:
                del self._answered[next(iter(self._answered))]
        await self._dead_letter(client, message, outcome)
        self._answered.pop(message.id, None)

    async def _respond(self, client: AsyncQueuesClient, message: QueueMessageReceived, outcome: Outcome) -> None:
        """Send the kubemq-targets Response JSON to ``response_channel``, if set, serialized once (see ``sdk.py``)."""
        channel = self.properties.response_channel
        if not channel:
            return
        header = QueueMessage(channel=channel, tags=tracing.inject({"request_id": message.id})).encode_message(client.config.client_id or "")
        reply = serialized_reply(header, outcome.response)
        await _send(client, channel, reply.body_size, lambda: send_serialized_queue_message(client, reply))

    async def _dead_letter(self, client: AsyncQueuesClient, message: QueueMessageReceived, outcome: Outcome) -> None:
        """Copy the request to the dead-letter queue, the error and its history in the tags.

        A copy refused for good goes without its body; if even that is refused
        the message is given up (logged), since rejecting it would only loop.
        """
        error = str(outcome.error)
        tags = {
            **message.tags,
            "error": error[:MAX_TAG_CHARS],
            "channel": message.channel,
            "receive_count": str(message.receive_count),
            "binding": self.binding,
        }
        log.error(
            "queue request failed for good; dead-lettered",
            binding=self.binding,
            request_id=message.id,
            receive_count=message.receive_count,
            dead_letter_queue=self.properties.dead_letter_queue,
            error=error,
        )
        copy = QueueMessage(channel=self.properties.dead_letter_queue, id=message.id, metadata=message.metadata or None, body=message.body, tags=tracing.inject(tags))
        size = len(message.body)
        try:
            await _send(client, copy.channel, size, lambda: client.send_queue_message_simple(copy))
            return
        except SendRefused as exc:
            # Rejecting would bring it back to be refused again, forever: keep what fits.
            log.warning("dead-letter copy refused; sending it without the body", binding=self.binding, request_id=message.id, size=size, error=str(exc))
        # KubeMQ refuses a message with neither body nor metadata.
        stripped = replace(copy, body=b"", metadata=message.metadata or f"body dropped: {size} bytes", tags=tags | {"body_dropped": str(size)})
        try:
            await _send(client, stripped.channel, len(stripped.body), lambda: client.send_queue_message_simple(stripped))
        except SendRefused as exc:
            log.error("dead-letter copy refused even without the body; message given up", binding=self.binding, request_id=message.id, size=size, error=str(exc))


async def _send(client: AsyncQueuesClient, channel: str, size: int, send: Callable[[], Awaitable[QueueSendResult]]) -> None:
    """Send one message of a ``size``-byte body to ``channel`` with ``send``; ``SendRefused`` when sending it again would fail the same way.

    ``send`` is a unary send (``send_queue_message_simple`` or its serialized
    twin): SDK 4.1.5's streaming send drops messages that concurrent first
    callers queue before its stream is up (they time out after 2 s).
    """
    limit = client.config.max_send_size
    if size > limit:
        raise SendRefused(f"could not send to queue {channel}: the message is {size} bytes, more than max_message_size ({limit})")
    try:
        result = await send()
    except KubeMQError as exc:
        raise (SendRefused if _refused_for_good(exc) else QueueError)(f"could not send to queue {channel}: {exc.message}") from exc
    if result.is_error:
        error = result.error or "send failed"
        raise (SendRefused if _VALIDATION_ERROR.match(error) else QueueError)(f"could not send to queue {channel}: {error}")


def _refused_for_good(exc: KubeMQError) -> bool:
    """Whether a send error repeats every time: invalid, not allowed, or too large (other RESOURCE_EXHAUSTED is throttling)."""
    if isinstance(exc, KubeMQValidationError) or exc.code == ErrorCode.PERMISSION_DENIED:
        return True
    return exc.code == ErrorCode.RESOURCE_EXHAUSTED and _TOO_LARGE.search(exc.message) is not None
