"""Long-running KubeMQ subscriptions that survive the broker going away.

The SDK does not re-subscribe by itself after a connection drop (its stream
just ends), so each subscription runs in its own loop here: connect, subscribe,
serve, and when the stream ends or fails, wait with backoff and do it again.
A semaphore bounds in-flight requests: when it is full the loop stops reading,
so backpressure reaches KubeMQ instead of piling up tasks in memory.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Generic, TypeVar

import structlog
from kubemq import ClientConfig

from bindings import tracing
from bindings.context import RequestContext
from bindings.errors import InvalidRequestError, RequestError, RequestTimeoutError, describe
from bindings.source import REPLY_ENVELOPE_ALLOWANCE, Outcome, RequestHandler, Source
from bindings.sources.connection import ConnectionProperties
from bindings.wire import Body, Response

MessageT = TypeVar("MessageT")
ClientT = TypeVar("ClientT")
MAX_BACKOFF_SECONDS = 30.0
# How long a reply to a request cut off by shutdown may take before the process moves on.
SETTLE_ON_SHUTDOWN_SECONDS = 2.0

log = structlog.get_logger("bindings.sources")


class SubscriptionSource(Source, Generic[ClientT, MessageT]):
    """Base of the KubeMQ sources (query, command, events, events-store, queue).

    A subclass says how to build its SDK client, how to open its message
    stream (a subscription, or a poll loop for queues), how to read a
    message's body and deadline, and how to deliver the outcome.
    """

    properties: ConnectionProperties

    def __init__(self, properties: ConnectionProperties, binding: str) -> None:
        # Named after its binding when the config names no client: what KubeMQ shows says where it comes from.
        self._client_id = properties.client_id or f"{binding}-{uuid.uuid4().hex[:8]}"
        super().__init__(properties.model_copy(update={"client_id": self._client_id}), binding)
        self.status.connection = properties.connection
        self._slots = asyncio.Semaphore(properties.max_concurrency)
        self._clients: dict[int, ClientT] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._live_streams = 0
        self._stopping = asyncio.Event()
        self._handler: RequestHandler | None = None

    # What a source kind defines -------------------------------------------------

    @abc.abstractmethod
    def new_client(self, config: ClientConfig) -> ClientT:
        """An unconnected SDK client for this pattern."""

    @abc.abstractmethod
    def open_stream(self, client: ClientT, index: int, stop: asyncio.Event) -> AsyncIterator[MessageT]:
        """The subscription's message stream; it must end when ``stop`` is set."""

    @abc.abstractmethod
    def describe(self, message: MessageT) -> tuple[str, Body, float | None]:
        """The message's id, body and timeout in seconds (None when it has none)."""

    @abc.abstractmethod
    def tags(self, message: MessageT) -> Mapping[str, str]:
        """The message's tags (read for the sender's trace context only when tracing is on)."""

    @abc.abstractmethod
    async def deliver(self, client: ClientT, message: MessageT, outcome: Outcome) -> None:
        """Send the outcome back the way this pattern does (reply, ack, publish ...)."""

    async def settle(self, index: int, message: MessageT, outcome: Outcome) -> None:
        """Deliver a handled message's outcome; kinds that track what they handled extend this."""
        # Reply on the newest connection: the one the message came on may have been replaced.
        client = self._clients.get(index)
        if client is None:
            log.warning("connection lost before reply", binding=self.binding, source=self.kind, request_id=self.describe(message)[0])
            return
        await self.deliver(client, message, outcome)

    async def close_client(self, client: ClientT) -> None:
        """Release a client; kinds whose last messages are still on the wire flush them first."""
        await client.close()  # type: ignore[attr-defined]

    # Lifecycle ------------------------------------------------------------------

    async def start(self, handler: RequestHandler) -> None:
        self._handler = handler
        self._stopping.clear()
        self._loops = [asyncio.create_task(self._subscription_loop(index), name=f"{self.binding}-{self.kind}-{index}") for index in range(self.properties.sources)]

    async def stop(self, drain_timeout: float) -> None:
        self._stopping.set()
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops = []
        if self._in_flight:
            _, pending = await asyncio.wait(set(self._in_flight), timeout=drain_timeout)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("drain timed out", binding=self.binding, cancelled=len(pending))
                await asyncio.gather(*pending, return_exceptions=True)
        for client in self._clients.values():
            with contextlib.suppress(Exception):
                await self.close_client(client)
        self._clients.clear()
        self.status.connected = False

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def max_concurrency(self) -> int:
        return self.properties.max_concurrency

    @property
    def max_reply_data(self) -> int | None:
        """A reply body is base64 of the data inside a small JSON envelope, within ``max_message_size``."""
        return (self.properties.max_message_size - REPLY_ENVELOPE_ALLOWANCE) * 3 // 4

    @property
    def raw_payload(self) -> bool:
        return self.properties.do_not_parse_payload

    def point_at(self, properties: ConnectionProperties) -> None:
        super().point_at(properties.model_copy(update={"client_id": self._client_id}))
        self.status.connection = properties.connection

    # The loop -------------------------------------------------------------------

    async def _subscription_loop(self, index: int) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                client = await self._connected_client(index)
                await self._consume(client, index)
                failures = 0  # the stream ran and ended: the server went away
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means: reconnect
                failures += 1
                self.status.last_error = str(exc) or type(exc).__name__
                await self._drop_client(index)
                log.warning("subscription failed", binding=self.binding, source=self.kind, error=self.status.last_error, attempt=failures)
            if not self.properties.auto_reconnect:
                self.status.failed = True
                return
            if self.properties.max_reconnects and failures >= self.properties.max_reconnects:
                self.status.failed = True
                log.error("giving up re-subscribing", binding=self.binding, attempts=failures)
                return
            await self._backoff(failures)

    async def _connected_client(self, index: int) -> ClientT:
        client = self._clients.get(index)
        if client is None:
            client = self.new_client(self.properties.client_config(index))
            await client.connect()  # type: ignore[attr-defined]
            self._clients[index] = client
        return client

    async def _drop_client(self, index: int) -> None:
        client = self._clients.pop(index, None)
        if client is not None:
            with contextlib.suppress(Exception):
                await self.close_client(client)

    async def _consume(self, client: ClientT, index: int) -> None:
        self._live_streams += 1
        self.status.connected = True
        try:
            async for message in self.open_stream(client, index, self._stopping):
                # The sender's timeout runs from now, not from when a slot frees up.
                received = time.monotonic()
                await self._slots.acquire()
                task = asyncio.create_task(self._serve(index, message, received))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
        finally:
            self._live_streams -= 1
            self.status.connected = self._live_streams > 0

    async def _backoff(self, failures: int) -> None:
        base = self.properties.reconnect_interval_seconds or 1.0
        delay = min(max(base, MAX_BACKOFF_SECONDS), base * 2 ** max(failures - 1, 0))
        delay *= random.uniform(0.8, 1.0)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)

    async def _settle_cut_off(self, index: int, message: MessageT) -> None:
        """A request cancelled by the drain timeout still gets an answer (a queue message a reject)."""
        if not self._stopping.is_set():
            return
        error = RequestTimeoutError("the connector is shutting down and the request did not finish within the drain timeout")
        try:
            async with asyncio.timeout(SETTLE_ON_SHUTDOWN_SECONDS):
                await self.settle(index, message, Outcome(Response.failure(error), error))
        except (Exception, asyncio.CancelledError) as exc:  # noqa: BLE001 - best effort while stopping
            log.warning("could not answer a request cut off by shutdown", binding=self.binding, error=str(exc) or type(exc).__name__)

    async def _serve(self, index: int, message: MessageT, received: float) -> None:
        """Handle one message and settle it: exactly one outcome, whatever is raised on the way.

        Only the process dying (or its cancellation, answered by ``_settle_cut_off``)
        leaves a message unanswered; nothing raised here ends the subscription.
        """
        try:
            with tracing.consume(self, message) as trace:
                outcome = await self._outcome(index, message, received)
                trace.record(outcome)
                await self._settle_or_answer_instead(index, message, outcome)
        finally:
            self._slots.release()

    async def _outcome(self, index: int, message: MessageT, received: float) -> Outcome:
        """The handler's outcome; an error outcome if anything fails before or inside it."""
        try:
            if self._handler is None:
                raise RuntimeError("the source was not started")
            request_id, body, timeout = self.describe(message)
            deadline = received + timeout if timeout else None
            context = RequestContext(binding=self.binding, request_id=request_id or uuid.uuid4().hex, source_kind=self.kind, deadline=deadline)
            if len(body) > self.properties.max_message_size:
                # Received whole (the receive limit is the server's), but never run: it could not be answered either.
                error: RequestError = InvalidRequestError(f"invalid request format, the message is {len(body)} bytes, more than max_message_size ({self.properties.max_message_size}); not run")
                return Outcome(Response.failure(error), error)
            return await tracing.run(self._handler, body, context)
        except asyncio.CancelledError:
            await self._settle_cut_off(index, message)
            raise
        except Exception as exc:  # a handler never raises; if it did, the message still gets an answer
            log.exception("request handling failed", binding=self.binding, source=self.kind)
            error = RequestError(f"internal error: {describe(exc)}")
            return Outcome(Response.failure(error), error)

    async def _settle_or_answer_instead(self, index: int, message: MessageT, outcome: Outcome) -> None:
        """Settle; if that fails (a reply too large, refused, unencodable), answer with an error instead."""
        try:
            await self.settle(index, message, outcome)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the sender still gets an answer, the subscription goes on
            reason = describe(exc)
            log.error("could not deliver outcome; answering with an error instead", binding=self.binding, source=self.kind, error=reason)
        error = RequestError(f"the reply could not be sent: {reason}")
        try:
            await self.answer_instead(index, message, Outcome(Response.failure(error), error, method=outcome.method))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the transport itself is failing: logged, the subscription goes on
            log.error("could not deliver outcome", binding=self.binding, source=self.kind, error=describe(exc))

    async def answer_instead(self, index: int, message: MessageT, outcome: Outcome) -> None:
        """Deliver an error outcome in place of one whose delivery failed.

        KubeMQ keeps the first reply to a request, so a second one cannot
        answer twice. Kinds that settle a failed delivery themselves override this.
        """
        client = self._clients.get(index)
        if client is not None:
            await self.deliver(client, message, outcome)
