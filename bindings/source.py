"""The source interface: where a binding's requests come from.

A source receives messages (from KubeMQ), hands each message body to the
binding's ``RequestHandler`` and delivers the outcome the way its pattern
wants (a query reply, a command ack, a queue ack or reject ...). The handler
never raises: failures come back as an ``Outcome`` whose response is an error
reply, with the original error kept for sources that must decide on it.
"""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import structlog

from bindings.context import RequestContext
from bindings.errors import RequestError
from bindings.properties import Properties
from bindings.target import Target
from bindings.wire import Body, Response


@dataclass(frozen=True, slots=True)
class Outcome:
    """What handling one request produced."""

    response: Response
    error: RequestError | None = None
    # The target's method that ran (empty when the request never reached one), for per-method outcome metrics.
    method: str = ""

    @property
    def failed(self) -> bool:
        return self.error is not None


RequestHandler = Callable[[Body, RequestContext], Awaitable[Outcome]]
log = structlog.get_logger("bindings.source")
# Room kept in a reply message for the JSON envelope and metadata around the base64 data.
REPLY_ENVELOPE_ALLOWANCE = 64 * 1024


def _ignore_settlement(method: str, outcome: str) -> None:
    """The default settlement observer: nothing is counted."""


def _ignore_undelivered() -> None:
    """The default observer of replies that could not be delivered: nothing is counted."""


class ItemCounts:
    """What a polling source (one that looks for items instead of receiving messages) reports about them.

    The engine hands each source one whose methods feed its metrics; this
    default counts nothing.
    """

    def found(self, count: int) -> None:
        """``count`` items seen by one scan."""

    def delivered(self) -> None:
        """One item's message was confirmed."""

    def failed(self) -> None:
        """One item's message could not be delivered; it is tried again later."""

    def gone(self) -> None:
        """One item changed or disappeared before it could be delivered; the next scan sees what is there."""

    def after_send_failed(self) -> None:
        """What follows a confirmed delivery (deleting, moving, recording the item) failed; that step is tried again later."""

    def backlog(self, pending: int, oldest_since: float | None) -> None:
        """Items waiting to be delivered, and since when (epoch seconds) the oldest has waited; None when none waits."""


@dataclass(slots=True)
class SourceStatus:
    """What ``/ready`` and ``/bindings`` show about a source."""

    connection: str = ""
    connected: bool = False
    last_error: str | None = None
    failed: bool = False
    # Since when (monotonic) the source has not been connected, while it tries again; None when connected or never tried.
    down_since: float | None = None
    # Connection attempts that failed since then.
    attempts: int = 0

    def not_connected_reason(self) -> str:
        """Why the source is not connected, for ``/ready``: how long, how many attempts, the last error."""
        if self.down_since is None:
            return self.last_error or "connecting"
        down = time.monotonic() - self.down_since
        return f"not connected for {down:.0f} s, reconnecting (failed attempts: {self.attempts}): {self.last_error}"


async def drain(tasks: set[asyncio.Task[Any]], timeout: float, binding: str) -> None:
    """Let ``tasks`` (the requests in flight) finish for up to ``timeout`` seconds, then cancel the rest and wait for them."""
    if not tasks:
        return
    _, pending = await asyncio.wait(set(tasks), timeout=timeout)
    for task in pending:
        task.cancel()
    if pending:
        log.warning("drain timed out", binding=binding, cancelled=len(pending))
        await asyncio.gather(*pending, return_exceptions=True)


class Source(abc.ABC):
    """A binding's origin of requests. Subclasses set ``kind`` and ``properties_model``."""

    kind: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    properties_model: ClassVar[type[Properties]]
    summary: ClassVar[str] = ""

    def __init__(self, properties: Any, binding: str) -> None:
        self.properties = properties
        self.binding = binding
        self.status = SourceStatus()
        # Told how each message was settled, ``(method, outcome)``, by kinds that settle (queues); the engine counts it.
        self.on_settled: Callable[[str, str], None] = _ignore_settlement
        # Told of each reply that could not reach KubeMQ (the connection was lost); the engine counts it.
        self.on_undelivered: Callable[[], None] = _ignore_undelivered
        # Told what a polling source finds and delivers; the engine counts it.
        self.item_counts = ItemCounts()
        # Whether the binding's target brings the destination's answers back (``Target.answers``); set by the engine.
        self.target_answers = True

    @classmethod
    def target_problem(cls, target: type[Target]) -> str | None:
        """Why this source kind cannot feed ``target`` (checked with the config), or None: any target by default."""
        return None

    # What the engine needs of every source, declared here with defaults so that a kind
    # which does not have one of these still behaves as documented (never read by name).

    @property
    def max_concurrency(self) -> int:
        """How many requests this source may run at once (sizes the target's pool)."""
        return 1

    @property
    def max_reply_data(self) -> int | None:
        """Largest reply ``data`` this source can send back, or None if it sends none or has no limit."""
        return None

    @property
    def raw_payload(self) -> bool:
        """Whether the whole message body is the request's data, unparsed (kubemq-targets' ``do_not_parse_payload``)."""
        return False

    @property
    def load_group(self) -> str:
        """A name shared with other sources of its kind that split the messages between them (a subscription group); empty: none.

        On a reload, a binding keeping its group is replaced make-before-break.
        """
        return ""

    @property
    def in_flight(self) -> int:
        """Requests received and not yet settled."""
        return 0

    def point_at(self, properties: Any) -> None:
        """Use ``properties`` from now on: the same config, pointed at a development server (before ``start``)."""
        self.properties = properties

    def inherit(self, previous: Source) -> None:
        """Take over state from the source this one replaces on a reload (e.g. a resume position).

        Called before ``start``; the default keeps nothing.
        """

    @abc.abstractmethod
    async def start(self, handler: RequestHandler) -> None:
        """Begin receiving in the background; return promptly (connection retries go on)."""

    @abc.abstractmethod
    async def stop(self, drain_timeout: float) -> None:
        """Stop taking new messages, let in-flight ones finish (up to ``drain_timeout``), release all."""

    @property
    def ready(self) -> bool:
        return self.status.connected and not self.status.failed
