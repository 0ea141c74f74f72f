"""Long-running KubeMQ subscriptions that survive the broker going away, loudly or silently.

The SDK does not re-subscribe by itself after a connection drop (its stream
just ends), so each subscription runs in its own loop here: connect, subscribe,
serve, and when the stream ends or fails, wait with a short jittered backoff
and do it again on a fresh client (a fresh channel and TCP connection).

A network that fails silently (a dead node, an expired NAT or load-balancer
entry) leaves a stream that looks open and carries nothing. gRPC keepalive
alone does not catch it: grpc-core stops pinging an idle connection after two
pings, and its pings test only the first HTTP/2 hop. So while a subscription
runs, a watchdog calls KubeMQ's ``Ping`` every ``keepalive_interval_seconds``
on the same connection; one not answered within ``keepalive_timeout_seconds``
condemns the connection. A new connection must answer a ``Ping`` within that
time too before the subscription counts as live.

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
from kubemq import ClientConfig, KubeMQCancellationError, KubeMQClientClosedError, KubeMQConnectionError, KubeMQTimeoutError

from bindings import tracing
from bindings.context import RequestContext
from bindings.errors import InvalidRequestError, RequestError, RequestTimeoutError, describe
from bindings.kubemq.connection import ConnectionProperties
from bindings.source import REPLY_ENVELOPE_ALLOWANCE, Outcome, RequestHandler, Source, drain
from bindings.wire import Body, Response

MessageT = TypeVar("MessageT")
ClientT = TypeVar("ClientT")
# How long a reply to a request cut off by shutdown may take before the process moves on.
SETTLE_ON_SHUTDOWN_SECONDS = 2.0

log = structlog.get_logger("bindings.kubemq")
# A reply that fails with one of these failed for the connection, not for what it carried: an error reply cannot go
# either. The builtin ``ConnectionError`` covers ``ConnectionLost`` and the SDK's closed queue stream.
CONNECTION_FAILURES = (ConnectionError, KubeMQConnectionError, KubeMQTimeoutError, KubeMQCancellationError, KubeMQClientClosedError)


class ConnectionLost(ConnectionError):
    """KubeMQ stopped answering on a connection that still looked open, or none is open now."""


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
        # The cut-offs of deliveries under way on each subscription's current client, by index: fired when it is dropped.
        self._deliveries: dict[int, set[asyncio.Timeout]] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        # Subscriptions not live now, by index, with why: the binding is ready only when none is.
        self._down: dict[int, str] = {}
        self._ever_live = False
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
        await self._on_live_connection(index, message, outcome)

    async def close_client(self, client: ClientT, *, reachable: bool) -> None:
        """Release a client; kinds whose last messages are still on the wire flush them first when KubeMQ is ``reachable``."""
        await client.close()  # type: ignore[attr-defined]

    # Lifecycle ------------------------------------------------------------------

    async def start(self, handler: RequestHandler) -> None:
        self._handler = handler
        self._stopping.clear()
        self._down = dict.fromkeys(range(self.properties.sources), "connecting")
        self._loops = [asyncio.create_task(self._subscription_loop(index), name=f"{self.binding}-{self.kind}-{index}") for index in range(self.properties.sources)]

    async def stop(self, drain_timeout: float) -> None:
        self._stopping.set()
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops = []
        await drain(set(self._in_flight), drain_timeout, self.binding)
        for index, client in self._clients.items():
            with contextlib.suppress(Exception):
                await self.close_client(client, reachable=index not in self._down)
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
            condemned = False
            attempt_started, live_since = time.monotonic(), None
            try:
                client = await self._connected_client(index)
                live_since = time.monotonic()
                await self._consume(client, index)
                failures = 0  # the stream ran and ended: the server went away
                reason = "KubeMQ ended the subscription"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means: reconnect
                # A subscription that served a while before failing starts a new outage: counted from one again.
                served = live_since is not None and time.monotonic() - live_since >= self.properties.keepalive_interval_seconds
                failures = 1 if served else failures + 1
                reason = str(exc) or type(exc).__name__
                condemned = isinstance(exc, ConnectionLost)
            # Never reused: a client whose stream ended or failed may sit on a dead connection.
            await self._drop_client(index, reachable=not condemned)
            if self._stopping.is_set():
                return
            self._subscription_down(index, reason, failures)
            if not self.properties.auto_reconnect:
                self.status.failed = True
                return
            if self.properties.max_reconnects and failures >= self.properties.max_reconnects:
                self.status.failed = True
                log.error("giving up re-subscribing", binding=self.binding, attempts=failures)
                return
            # An attempt that failed (it may have waited for a timeout) counts from its start; after a
            # subscription that served, the whole delay is waited, jittered, so replicas do not all come back at once.
            await self._backoff(failures, attempt_started if live_since is None else time.monotonic())

    async def _connected_client(self, index: int) -> ClientT:
        """A new client whose connection answered a ``Ping`` within ``keepalive_timeout_seconds``.

        The SDK's ``connect`` accepts a connection whose first ping went
        unanswered after 5 s; a silent network would look connected.
        """
        client = self.new_client(self.properties.client_config(index))
        self._clients[index] = client
        self._deliveries[index] = set()
        timeout = self.properties.keepalive_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                await client.connect()  # type: ignore[attr-defined]
                await client.ping()  # type: ignore[attr-defined]
        except TimeoutError:
            raise ConnectionLost(f"KubeMQ at {self.properties.address} did not answer within {timeout} s") from None
        return client

    async def _drop_client(self, index: int, *, reachable: bool) -> None:
        client = self._clients.pop(index, None)
        now = asyncio.get_running_loop().time()
        for delivery in self._deliveries.pop(index, ()):
            delivery.reschedule(now)  # deliveries under way on it give up now
        if client is not None:
            with contextlib.suppress(Exception):
                await self.close_client(client, reachable=reachable)

    async def _consume(self, client: ClientT, index: int) -> None:
        """Serve the subscription's stream until it ends, fails, or the watchdog finds the connection dead."""
        reading = asyncio.create_task(self._read(client, index))
        watchdog = asyncio.create_task(self._watch(client))
        self._subscription_live(index)
        try:
            done, _ = await asyncio.wait((reading, watchdog), return_when=asyncio.FIRST_COMPLETED)
            if watchdog in done:
                reading.cancel()
                await asyncio.gather(reading, return_exceptions=True)
                watchdog.result()  # raises ConnectionLost: it ends no other way
            reading.result()
        finally:
            for task in (reading, watchdog):
                task.cancel()
            await asyncio.gather(reading, watchdog, return_exceptions=True)

    async def _read(self, client: ClientT, index: int) -> None:
        async for message in self.open_stream(client, index, self._stopping):
            # The sender's timeout runs from now, not from when a slot frees up.
            received = time.monotonic()
            await self._slots.acquire()
            task = asyncio.create_task(self._serve(index, message, received))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _watch(self, client: ClientT) -> None:
        """Ping KubeMQ on the subscription's connection; raise ``ConnectionLost`` when it stops answering."""
        timeout = self.properties.keepalive_timeout_seconds
        while True:
            await asyncio.sleep(self.properties.keepalive_interval_seconds)
            try:
                async with asyncio.timeout(timeout):
                    await client.ping()  # type: ignore[attr-defined]
            except TimeoutError:
                raise ConnectionLost(f"KubeMQ did not answer a ping within {timeout} s") from None
            except Exception as exc:
                raise ConnectionLost(f"KubeMQ ping failed: {describe(exc)}") from exc

    # What /ready and the logs say -------------------------------------------------

    def _subscription_live(self, index: int) -> None:
        self._down.pop(index, None)
        if self._down:
            return
        self.status.connected = True
        if self.status.down_since is not None:
            log.info(
                "connection to KubeMQ back" if self._ever_live else "connected to KubeMQ",
                binding=self.binding,
                source=self.kind,
                address=self.properties.address,
                down_seconds=round(time.monotonic() - self.status.down_since, 1),
                attempts=self.status.attempts,
            )
        self.status.down_since = None
        self.status.attempts = 0
        self._ever_live = True

    def _subscription_down(self, index: int, reason: str, failures: int) -> None:
        """Record a subscription that is not live; the first one of an outage logs a warning, the retries debug lines."""
        self._down[index] = reason
        self.status.connected = False
        self.status.last_error = reason
        self.status.attempts += 1
        if self.status.down_since is None:
            self.status.down_since = time.monotonic()
            event = "connection to KubeMQ lost; reconnecting" if self._ever_live else "cannot connect to KubeMQ; retrying"
            log.warning(event, binding=self.binding, source=self.kind, address=self.properties.address, error=reason)
        else:
            log.debug("reconnect attempt failed", binding=self.binding, source=self.kind, error=reason, attempt=failures)

    async def _backoff(self, failures: int, since: float) -> None:
        """Wait until one backoff period after ``since``: attempts start at most once per period."""
        base = self.properties.reconnect_interval_seconds or 1.0
        cap = max(base, self.properties.reconnect_max_interval_seconds)
        period = min(cap, base * 2 ** max(failures - 1, 0)) * random.uniform(0.5, 1.0)
        delay = period - (time.monotonic() - since)
        if delay > 0:
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
        except CONNECTION_FAILURES as exc:
            self.outcome_lost(message, exc)
            return
        except Exception as exc:  # noqa: BLE001 - the sender still gets an answer, the subscription goes on
            reason = describe(exc)
            log.error("could not deliver outcome; answering with an error instead", binding=self.binding, source=self.kind, error=reason)
        error = RequestError(f"the reply could not be sent: {reason}")
        try:
            await self.answer_instead(index, message, Outcome(Response.failure(error), error, method=outcome.method))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the transport itself is failing: counted and logged, the subscription goes on
            self.outcome_lost(message, exc)

    def outcome_lost(self, message: MessageT, exc: Exception) -> None:
        """A reply that cannot reach KubeMQ: counted and logged once, never retried (its sender has timed out or soon will).

        Kinds whose messages come back by themselves (queues) say so instead.
        """
        self.on_undelivered()
        log.warning("reply not delivered", binding=self.binding, source=self.kind, request_id=self.describe(message)[0], error=describe(exc))

    async def answer_instead(self, index: int, message: MessageT, outcome: Outcome) -> None:
        """Deliver an error outcome in place of one whose delivery failed.

        KubeMQ keeps the first reply to a request, so a second one cannot
        answer twice. Kinds that settle a failed delivery themselves override this.
        """
        await self._on_live_connection(index, message, outcome)

    async def _on_live_connection(self, index: int, message: MessageT, outcome: Outcome) -> None:
        """Deliver on the subscription's newest connection (the one the message came on may have been replaced).

        A send on a connection that went silent would wait for its own
        timeout; it is cancelled as soon as the watchdog condemns that
        connection, and ``ConnectionLost`` raised instead.
        """
        client, deliveries = self._clients.get(index), self._deliveries.get(index)
        if client is None or deliveries is None:
            raise ConnectionLost("the connection to KubeMQ was lost and is not back yet")
        # A cut-off without a deadline, which ``_drop_client`` fires: no task or wait per delivery.
        cut_off = asyncio.timeout(None)
        task = asyncio.current_task()
        cancelling = task.cancelling() if task is not None else 0
        try:
            async with cut_off:
                deliveries.add(cut_off)
                try:
                    await self.deliver(client, message, outcome)
                finally:
                    deliveries.discard(cut_off)
        except TimeoutError:
            if cut_off.expired():
                raise ConnectionLost("the connection to KubeMQ was lost before the outcome was delivered") from None
            raise
        except asyncio.CancelledError:
            # gRPC raises CancelledError when the SDK closes the channel under a call (its reconnect):
            # the connection is gone, not this task; only a cancellation of the task itself goes on.
            if task is None or task.cancelling() > cancelling:
                raise
            raise ConnectionLost("the connection to KubeMQ was lost before the outcome was delivered") from None
