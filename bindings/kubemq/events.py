"""Sources ``kubemq.events`` and ``kubemq.events-store``: fire-and-forget requests.

The sender gets no reply. When ``response_channel`` is set, each request's
response (the kubemq-targets Response JSON, success or error) is published
there, as an event or as an events-store message respectively, serialized
once (see ``sdk.py``) and sent with the unary ``SendEvent`` (a stored one too).

An events-store subscription resumes where it stopped: the source remembers
the last sequence it finished and re-subscribes at the next one, so a
dropped connection, a reload (the new source takes over the old one's
progress) or, with ``state_file``, a restart neither repeats nor skips
events; only one cut off by the drain timeout runs again, as it did not
finish. Only a first start uses ``start_position``.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import ClassVar, Literal

import structlog
from kubemq import AsyncPubSubClient, ClientConfig, EventMessage, EventStoreMessage, KubeMQError
from kubemq.grpc import kubemq_pb2 as pb
from pydantic import model_validator

from bindings import tracing
from bindings.kubemq.connection import ReplyProperties, SubscriptionProperties
from bindings.kubemq.sdk import Received, send_serialized_event, serialized_reply, subscribe_message, subscription_stream
from bindings.kubemq.subscription import SubscriptionSource
from bindings.properties import field
from bindings.source import Outcome, Source
from bindings.wire import Body

log = structlog.get_logger("bindings.kubemq")

StartPosition = Literal["new_only", "first", "last", "sequence", "time_delta"]
_START_TYPES: dict[str, int] = {
    "new_only": pb.Subscribe.StartNewOnly,
    "first": pb.Subscribe.StartFromFirst,
    "last": pb.Subscribe.StartFromLast,
    "sequence": pb.Subscribe.StartAtSequence,
    "time_delta": pb.Subscribe.StartAtTimeDelta,
}
# Positions counted from the moment of subscribing: a later subscription must not count from its own.
_NOW_RELATIVE = ("new_only", "last", "time_delta")
# How often a stopping source looks whether its claimed events have started.
HANDOVER_POLL_SECONDS = 0.02


class EventsProperties(ReplyProperties, SubscriptionProperties):
    """``kubemq.events``: the subscription plus where to publish responses."""


class EventsStoreProperties(EventsProperties):
    """``kubemq.events-store``: also where a first start begins and where progress is kept."""

    start_position: StartPosition = field(
        "new_only",
        description="Where a first start begins: `new_only` (as kubemq-targets), `first`, `last`, `sequence` (`start_sequence`) or `time_delta` (`start_time_delta_seconds` ago). Later subscriptions resume after the last event handled.",
        example="first",
    )
    start_sequence: int = field(0, ge=0, description="First sequence to read when `start_position: sequence`.", example=1)
    start_time_delta_seconds: int = field(0, ge=0, description="How far back to start when `start_position: time_delta`, in seconds.", example=3600)
    state_file: str = field(
        "",
        description="File where the last handled sequence is kept, so a restarted connector resumes instead of using `start_position`; empty: kept in memory only.",
        example="/var/lib/kubemq-s3/events-store.state",
    )

    @model_validator(mode="after")
    def _start_value_given(self) -> EventsStoreProperties:
        if self.start_position == "sequence" and self.start_sequence < 1:
            raise ValueError("start_position 'sequence' needs start_sequence >= 1")
        if self.start_position == "time_delta" and self.start_time_delta_seconds < 1:
            raise ValueError("start_position 'time_delta' needs start_time_delta_seconds >= 1")
        return self


class EventsSource(SubscriptionSource[AsyncPubSubClient, Received[pb.EventReceive]]):
    """Fire-and-forget: handle each event, publish its response if asked to."""

    kind = "kubemq.events"
    aliases = ("source.events",)
    summary = "Receives KubeMQ events (fire-and-forget); publishes responses to response_channel if set."
    properties: EventsProperties
    properties_model = EventsProperties
    # What a response is published as.
    response_type: ClassVar[type[EventMessage] | type[EventStoreMessage]] = EventMessage

    def new_client(self, config: ClientConfig) -> AsyncPubSubClient:
        return AsyncPubSubClient(config=config)

    @property
    def max_reply_data(self) -> int | None:
        """No limit without ``response_channel``: nothing is published back, so no object is too big to reply with."""
        return super().max_reply_data if self.properties.response_channel else None

    @property
    def load_group(self) -> str:
        return self.properties.group

    def subscribe(self, client: AsyncPubSubClient) -> pb.Subscribe:
        return subscribe_message(client, self.properties, pb.Subscribe.Events)

    def open_stream(self, client: AsyncPubSubClient, index: int, stop: asyncio.Event) -> AsyncIterator[Received[pb.EventReceive]]:
        return subscription_stream(client, self.subscribe(client), stop)

    def describe(self, message: Received[pb.EventReceive]) -> tuple[str, Body, float | None]:
        return message.fields.EventID, message.body, None

    def tags(self, message: Received[pb.EventReceive]) -> Mapping[str, str]:
        tags: Mapping[str, str] = message.fields.Tags  # the protobuf map, read in place
        return tags

    async def deliver(self, client: AsyncPubSubClient, message: Received[pb.EventReceive], outcome: Outcome) -> None:
        if not self.properties.response_channel:
            return
        tags = tracing.inject({"request_id": message.fields.EventID})
        header = self.response_type(channel=self.properties.response_channel, tags=tags).encode(client.config.client_id or "")
        self.check_published(await send_serialized_event(client, serialized_reply(header, outcome.response)))

    def check_published(self, result: pb.Result) -> None:
        """Raise if KubeMQ refused the response, as ``send_event_unary`` does."""
        if not result.Sent and result.Error:
            raise KubeMQError(result.Error)


class EventsStoreSource(EventsSource):
    """Events-store: like events, plus resuming by sequence."""

    kind = "kubemq.events-store"
    aliases = ("source.events-store",)
    summary = "Receives KubeMQ events-store messages and resumes after the last one handled; publishes responses to response_channel if set."
    properties: EventsStoreProperties
    properties_model = EventsStoreProperties
    response_type = EventStoreMessage

    def __init__(self, properties: EventsStoreProperties, binding: str) -> None:
        super().__init__(properties, binding)
        state = Path(properties.state_file) if properties.state_file else None
        self.progress = SequenceProgress(properties.channel, state, binding)
        # Claimed and handed to a subscription loop that has not started them yet (it waits for a free slot).
        self._waiting: set[int] = set()
        # On a reload, when the binding first subscribed: where to start while nothing was received yet.
        self._predecessor_since: float | None = None

    def inherit(self, previous: Source) -> None:
        """On a reload, resume where the replaced source is instead of at ``start_position``.

        The progress is shared, not copied: the old source is still draining (or,
        with a shared group, still receiving), and what it finishes or still runs
        must count for this one. A ``state_file`` of the new config takes over.
        """
        if not isinstance(previous, EventsStoreSource) or previous.properties.channel != self.properties.channel:
            return
        previous.progress.keep_in(self.progress.state_file)
        self.progress = previous.progress
        self._predecessor_since = previous.progress.since

    def subscribe(self, client: AsyncPubSubClient) -> pb.Subscribe:
        subscribe = subscribe_message(client, self.properties, pb.Subscribe.EventsStore)
        subscribe.EventsStoreTypeData, subscribe.EventsStoreTypeValue = self._start()  # type: ignore[assignment]
        return subscribe

    def _start(self) -> tuple[int, int]:
        """Where a subscription begins: after what was handled, else where the replaced source began, else ``start_position``."""
        props = self.properties
        if resume := self.progress.resume_at:
            return pb.Subscribe.StartAtSequence, resume
        if self._predecessor_since is not None and props.start_position in _NOW_RELATIVE:
            # Nothing came since the replaced source subscribed: start where it did, so the swap loses nothing.
            # Rounded up to whole seconds: repeating a fraction of a second beats a gap.
            seconds = math.ceil(time.time() - self._predecessor_since)
            return pb.Subscribe.StartAtTimeDelta, max(1, seconds) + (props.start_time_delta_seconds if props.start_position == "time_delta" else 0)
        if self.progress.since is None:
            self.progress.since = time.time()
        value = {"sequence": props.start_sequence, "time_delta": props.start_time_delta_seconds}.get(props.start_position, 0)
        return _START_TYPES[props.start_position], value

    async def open_stream(self, client: AsyncPubSubClient, index: int, stop: asyncio.Event) -> AsyncIterator[Received[pb.EventReceive]]:
        """Subscribe at ``resume_at``; re-subscribe there whenever events are handed back.

        A live subscription is already past the events a draining predecessor
        hands back (``release``), and a group's broker does not send them again,
        so only a new subscription from ``resume_at`` reads them.
        """
        while not stop.is_set():
            released = self.progress.released
            ended = asyncio.Event()
            watcher = asyncio.create_task(_set_on_first(ended, stop, released))
            try:
                async for event in subscription_stream(client, self.subscribe(client), ended):
                    # A replay after re-subscribing may repeat events handled or still running.
                    if self.progress.claim(event.fields.Sequence):
                        self._waiting.add(event.fields.Sequence)
                        yield event
                        self._waiting.discard(event.fields.Sequence)  # the loop asks for the next one only once this one runs
            finally:
                watcher.cancel()
            if not released.is_set():
                return  # stopped, or the server ended the stream: the subscription loop decides

    async def settle(self, index: int, message: Received[pb.EventReceive], outcome: Outcome) -> None:
        try:
            await super().settle(index, message, outcome)
        finally:
            self.progress.finish(message.fields.Sequence)

    async def _settle_cut_off(self, index: int, message: Received[pb.EventReceive]) -> None:
        """Hand back an event cut off by the drain timeout: it did not finish, so the successor (or a restart) runs it again."""
        if self._stopping.is_set():
            log.warning("event cut off by the drain timeout; handed back", binding=self.binding, sequence=message.fields.Sequence)
            self.progress.release({message.fields.Sequence})

    async def stop(self, drain_timeout: float) -> None:
        """Stop, but first let the events already claimed start, so they drain like the others.

        Cancelled while waiting for a slot, they would stay "running" for good and a
        successor sharing the progress would skip them. Any still waiting when
        ``drain_timeout`` ends are handed back, for the next subscription to read again.
        """
        deadline = time.monotonic() + drain_timeout
        self._stopping.set()  # ends the streams: nothing new is claimed
        while self._waiting and time.monotonic() < deadline:
            await asyncio.sleep(HANDOVER_POLL_SECONDS)
        await super().stop(max(0.0, deadline - time.monotonic()))
        self.progress.release(self._waiting)
        self._waiting.clear()

    def check_published(self, result: pb.Result) -> None:
        """Raise unless KubeMQ stored the response."""
        if not result.Sent:
            raise RuntimeError(f"events-store response to {self.properties.response_channel} was not stored: {result.Error}")


class SequenceProgress:
    """Which events-store sequences a binding has handled, so a re-subscribe neither repeats nor skips.

    Events are handled concurrently, so "the last one handled" is ``floor``:
    every event received up to it is finished. Events finished above it are
    remembered, so a replay from ``floor + 1`` skips them; events still in
    flight are skipped too. Events handed back unfinished (``release``) hold
    the floor below them until a replay brings them again. Sequences never
    received (another group member's, or older than the start) count as not ours.
    """

    def __init__(self, channel: str, state_file: Path | None, binding: str) -> None:
        self.channel = channel
        self.state_file = state_file
        self.binding = binding
        self.floor = self._load()
        self._running: set[int] = set()
        self._released: set[int] = set()
        self._finished: set[int] = set()
        self._highest = self.floor
        # Wall-clock time of the first subscription at ``start_position``.
        self.since: float | None = None
        # Set (and replaced by a fresh one) each time events are handed back.
        self.released = asyncio.Event()

    @property
    def resume_at(self) -> int:
        """The first sequence a re-subscription must read; 0 when nothing was received (``start_position`` applies)."""
        if unfinished := self._running | self._released:
            return min(unfinished)
        return self.floor + 1 if self._highest else 0

    def claim(self, sequence: int) -> bool:
        """True if the event is new to this binding; it then counts as running."""
        if sequence <= self.floor or sequence in self._running or sequence in self._finished:
            return False
        self._released.discard(sequence)
        self._running.add(sequence)
        self._highest = max(self._highest, sequence)
        return True

    def release(self, sequences: set[int]) -> None:
        """Hand back claimed events that did not finish: not running, not finished, read again on the next replay.

        Sets ``released`` so that a successor sharing this progress, whose live
        subscription is already past them, re-subscribes at ``resume_at``.
        """
        if not sequences:
            return
        self._running -= sequences
        self._released |= sequences
        released, self.released = self.released, asyncio.Event()
        released.set()

    def finish(self, sequence: int) -> None:
        """Mark an event handled and move the floor as far as every older one is."""
        self._running.discard(sequence)
        self._finished.add(sequence)
        unfinished = self._running | self._released
        floor = min(unfinished) - 1 if unfinished else self._highest
        if floor <= self.floor:
            return
        self.floor = floor
        self._finished = {s for s in self._finished if s > floor}
        self._save()

    def keep_in(self, state_file: Path | None) -> None:
        """Keep the position in ``state_file`` from now on (a reload may name another file, or none)."""
        if state_file != self.state_file:
            self.state_file = state_file
            self._save()

    def _load(self) -> int:
        if self.state_file is None or not self.state_file.exists():
            return 0
        try:
            state = json.loads(self.state_file.read_text())
            if state.get("channel") != self.channel:
                log.warning("events-store state is for another channel; using start_position", binding=self.binding, state_file=str(self.state_file), state_channel=state.get("channel"))
                return 0
            return max(0, int(state["sequence"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("events-store state unreadable; using start_position", binding=self.binding, state_file=str(self.state_file), error=str(exc))
            return 0

    def _save(self) -> None:
        if self.state_file is None:
            return
        temporary = self.state_file.with_name(self.state_file.name + ".tmp")
        try:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps({"channel": self.channel, "sequence": self.floor}))
            os.replace(temporary, self.state_file)  # atomic: a crash never leaves half a file
        except OSError as exc:
            log.error("could not save events-store state", binding=self.binding, state_file=str(self.state_file), error=str(exc))


async def _set_on_first(target: asyncio.Event, *sources: asyncio.Event) -> None:
    """Set ``target`` once any of ``sources`` is set (a stream stops for any of several reasons)."""
    waits = [asyncio.create_task(source.wait()) for source in sources]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        target.set()
    finally:
        for wait in waits:
            wait.cancel()
