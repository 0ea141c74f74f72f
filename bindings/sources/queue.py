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
from collections.abc import AsyncIterator
from dataclasses import dataclass

import structlog
from kubemq import AsyncQueuesClient, ClientConfig, QueueMessage, QueueMessageReceived
from pydantic import model_validator

from bindings.properties import field
from bindings.source import Outcome
from bindings.sources.connection import ConnectionProperties, OutputChannel, ReplyProperties, check_not_read_back
from bindings.sources.sdk import flush_downstream
from bindings.sources.subscription import SubscriptionSource

log = structlog.get_logger("bindings.sources")

# One poll waits at most this long: the SDK gives up on a downstream reply after
# 300 s, and an idle poll every minute costs nothing.
MAX_POLL_SECONDS = 60
MAX_TAG_CHARS = 1024


class QueueProperties(ReplyProperties, ConnectionProperties):
    """``kubemq.queue``: the queue to poll, how, and where failures go."""

    address: str = field("localhost:50000", description="KubeMQ gRPC address `host:port`, or `embedded` to start the built-in development broker.", example="kubemq-cluster-grpc.kubemq:50000")
    channel: str = field(description="Queue to receive requests from.", example="queue.aws.s3")
    sources: int = field(1, ge=1, le=1024, description="Parallel poll streams (each its own client); at most `sources` x `batch_size` requests are in flight.", example=4)
    max_concurrency: int = field(32, ge=1, le=1000, description="Most requests in flight for this binding (there are never more than `sources` x `batch_size`).", example=32)
    batch_size: int = field(1, ge=1, le=1024, description="Most messages taken per poll. A poll returns when it has this many or `wait_timeout` has passed.", example=1)
    wait_timeout: int = field(5, ge=1, le=86400, description="Seconds one poll waits for messages (at most 60 per poll; larger values are accepted for kubemq-targets configs).", example=5)
    max_receive_count: int = field(3, ge=1, le=1024, description="Deliveries of a message whose request keeps failing with a retryable error before it is dead-lettered.", example=3)
    dead_letter_queue: OutputChannel = field("", description="Queue that receives requests that failed for good (original body and metadata, error in the tags); empty: `<channel>.dlq`.", example="queue.aws.s3.dlq")

    @model_validator(mode="after")
    def _default_dead_letter_queue(self) -> QueueProperties:
        if not self.dead_letter_queue:
            object.__setattr__(self, "dead_letter_queue", f"{self.channel}.dlq")
        check_not_read_back(self, "dead_letter_queue")
        return self


class QueueError(RuntimeError):
    """KubeMQ refused a poll or a send: the stream is re-opened (with backoff), or the message rejected."""


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

    def new_client(self, config: ClientConfig) -> AsyncQueuesClient:
        return AsyncQueuesClient(config=config)

    async def close_client(self, client: AsyncQueuesClient) -> None:
        # The last acks must reach KubeMQ, or their messages come back. Behind an
        # unanswered poll there are none (polls wait for their batch to settle),
        # and a flush would only wait for that poll to time out.
        if client not in self._unanswered_polls:
            await flush_downstream(client)
        self._unanswered_polls.discard(client)
        await client.close()

    @property
    def max_concurrency(self) -> int:
        """Requests in flight at most: a batch per stream, within ``max_concurrency``."""
        props = self.properties
        return min(props.max_concurrency, props.sources * props.batch_size)

    async def open_stream(self, client: AsyncQueuesClient, index: int, stop: asyncio.Event) -> AsyncIterator[Polled]:  # type: ignore[override]
        wait = min(self.properties.wait_timeout, MAX_POLL_SECONDS)
        while not stop.is_set():
            self._unanswered_polls.add(client)
            polled = await client.receive_queue_messages(self.properties.channel, max_messages=self.properties.batch_size, wait_timeout_seconds=wait, auto_ack=False)
            self._unanswered_polls.discard(client)  # not reached when cancelled: KubeMQ still holds that poll
            if polled.is_error:
                raise QueueError(polled.error or "queue poll failed")
            batch = Batch(len(polled.messages))
            for message in polled.messages:
                yield Polled(message, batch)
            await batch.settled.wait()

    def describe(self, message: Polled) -> tuple[str, bytes, float | None]:
        return message.message.id, message.message.body, None

    async def settle(self, index: int, message: Polled, outcome: Outcome) -> None:
        try:
            await super().settle(index, message, outcome)
        finally:
            message.batch.settle_one()

    async def deliver(self, client: AsyncQueuesClient, message: Polled, outcome: Outcome) -> None:
        received = message.message
        try:
            if outcome.error is None:
                await self._respond(client, received, outcome)
            elif outcome.error.retryable and received.receive_count < self.properties.max_receive_count:
                log.warning("queue request failed; rejected for redelivery", binding=self.binding, request_id=received.id, receive_count=received.receive_count, error=str(outcome.error))
                await received.async_nack()
                return
            else:
                await self._respond(client, received, outcome)
                await self._dead_letter(client, received, outcome)
        except BaseException:
            # Not settled: hand it back now rather than when the stream closes.
            with contextlib.suppress(Exception):
                await received.async_nack()
            raise
        await received.async_ack()

    async def _respond(self, client: AsyncQueuesClient, message: QueueMessageReceived, outcome: Outcome) -> None:
        """Send the kubemq-targets Response JSON to ``response_channel``, if set."""
        if not self.properties.response_channel:
            return
        reply = QueueMessage(channel=self.properties.response_channel, body=outcome.response.to_json(), tags={"request_id": message.id})
        await _send(client, reply)

    async def _dead_letter(self, client: AsyncQueuesClient, message: QueueMessageReceived, outcome: Outcome) -> None:
        """Copy the request to the dead-letter queue, the error and its history in the tags."""
        error = str(outcome.error)
        tags = {
            **message.tags,
            "error": error[:MAX_TAG_CHARS],
            "channel": message.channel,
            "receive_count": str(message.receive_count),
            "binding": self.binding,
        }
        log.error("queue request failed for good; dead-lettered", binding=self.binding, request_id=message.id, receive_count=message.receive_count, dead_letter_queue=self.properties.dead_letter_queue, error=error)
        await _send(client, QueueMessage(channel=self.properties.dead_letter_queue, id=message.id, metadata=message.metadata or None, body=message.body, tags=tags))


async def _send(client: AsyncQueuesClient, message: QueueMessage) -> None:
    # The unary send: SDK 4.1.5's streaming send drops messages that concurrent
    # first callers queue before its stream is up (they time out after 2 s).
    result = await client.send_queue_message_simple(message)
    if result.is_error:
        raise QueueError(f"could not send to queue {message.channel}: {result.error}")
