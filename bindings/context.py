"""What the engine tells a component about where it runs and what it handles."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import structlog

from bindings.wire import KUBEMQ_TARGETS, ReplyStyle


@dataclass(frozen=True, slots=True)
class TargetContext:
    """Given to a target at init.

    ``max_concurrency`` is how many requests the binding may run at once, so a
    target can size its connection pool to it (a pool smaller than the
    concurrency starves requests; see the S3 target).
    """

    binding: str
    max_concurrency: int
    log: Any = field(default_factory=structlog.get_logger)
    # Largest ``data`` a reply can carry through the source (base64 and the reply
    # envelope included); None when the source has no limit. A target refuses
    # to build a bigger reply instead of reading it all and failing to send it.
    max_reply_data: int | None = None
    # How the binding writes replies: a target adds its richer metadata only in the ``extended`` style.
    reply_style: ReplyStyle = KUBEMQ_TARGETS


@dataclass(slots=True)
class RequestContext:
    """One request's identity and deadline, passed through the middleware chain.

    ``deadline`` is a ``time.monotonic()`` instant after which the sender has
    given up; None means no deadline is known.
    """

    binding: str
    request_id: str
    source_kind: str = ""
    deadline: float | None = None
    started: float = field(default_factory=time.monotonic)

    def remaining(self) -> float | None:
        """Seconds left before the deadline, or None if there is none."""
        return None if self.deadline is None else self.deadline - time.monotonic()
