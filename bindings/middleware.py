"""Binding middleware: composable wrappers around the target's ``handle``.

Each middleware takes the next handler and returns a handler, so the chain is
plain function composition, built once per binding. A handler gets the
resolved ``Call`` (the operation and its checked metadata), so no layer parses
or validates the request again and none writes into shared state. The order,
outermost first, is: log -> metrics -> deadline -> retry -> rate limit ->
target. Logging and metrics see each request once; the deadline covers every
attempt; the rate limit spaces every attempt, as kubemq-targets does.

Properties use kubemq-targets' names; ``rate_per_seconds`` (the key its code
reads) is accepted beside ``rate_per_second`` (the key its README writes).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Literal

import structlog
from pydantic import AliasChoices

from bindings import logs
from bindings.context import RequestContext
from bindings.errors import RequestError, RequestTimeoutError
from bindings.metrics import Metrics
from bindings.properties import Properties, field
from bindings.target import Call, CallHandler
from bindings.wire import KUBEMQ_TARGETS, ReplyStyle, Response

Middleware = Callable[[CallHandler], CallHandler]

log = structlog.get_logger("bindings.requests")


class MiddlewareProperties(Properties):
    """A binding's own ``properties``: per-binding logging, retry and rate limiting."""

    log_level: Literal["debug", "info", "warning", "error"] | None = field(
        None, description="Per-request log level of this binding (`debug` also logs metadata of replies); unset: the global `logLevel`.", example="info"
    )
    retry_attempts: int = field(1, ge=1, le=100, description="Attempts per request, first included; only errors that can succeed on retry are retried.", example=3)
    retry_delay_milliseconds: int = field(100, ge=0, le=600_000, description="Delay before the first retry (`back-off` doubles it each time).", example=200)
    retry_max_jitter_milliseconds: int = field(100, ge=0, le=600_000, description="Random extra delay added to each retry, up to this much.", example=100)
    retry_max_delay_milliseconds: int = field(10_000, ge=0, le=600_000, description="Cap on one `back-off` delay, so many attempts cannot add up to hours.", example=5000)
    retry_delay_type: Literal["back-off", "fixed", "random"] = field(
        "back-off", description="`back-off`: doubling delays; `fixed`: the same delay; `random`: uniform up to the delay.", example="back-off"
    )
    reply_style: ReplyStyle = field(
        KUBEMQ_TARGETS,
        description="`kubemq-targets`: every reply to a method kubemq-targets has is byte for byte what kubemq-targets sends "
        "(its metadata only, its error texts, each error listed as `All attempts fail:\\n#1: ...`). "
        "`extended`: richer reply metadata (sizes, ETags, checksums, counts), every problem of a bad request with a suggestion, "
        "and the last attempt's error alone.",
        example="extended",
    )
    rate_per_second: float = field(
        0,
        ge=0,
        description="Most requests started per second by this binding (0: unlimited). Also read as `rate_per_seconds`.",
        example=50,
        validation_alias=AliasChoices("rate_per_second", "rate_per_seconds"),
    )


def chain(handler: CallHandler, *middleware: Middleware) -> CallHandler:
    """Wrap ``handler`` so the first middleware given is the outermost."""
    for wrap in reversed(middleware):
        handler = wrap(handler)
    return handler


def build(target: CallHandler, props: MiddlewareProperties, metrics: Metrics, labels: dict[str, str], request_log: RequestLog) -> CallHandler:
    """The binding's full chain around ``target``."""
    layers: list[Middleware] = [logging_middleware(request_log), metrics.middleware(labels), deadline_middleware()]
    if props.retry_attempts > 1:
        layers.append(retry_middleware(props))
    if props.rate_per_second > 0:
        layers.append(rate_limit_middleware(props.rate_per_second))
    return chain(target, *layers)


class RequestLog:
    """A binding's request lines: one per request with binding, method, request id and duration.

    ``level`` is the binding's ``log_level`` (unset: the global ``logLevel``):
    ``info`` logs every request, ``warning``/``error`` only failures (logged
    at error, as kubemq-targets does), ``debug`` adds the request and reply
    metadata. Data is never logged. The binding is bound once, not per request.
    """

    def __init__(self, binding: str, level: str | None) -> None:
        self._log = logs.request_logger(level).bind(binding=binding)

    def done(self, call: Call, context: RequestContext, response: Response) -> None:
        duration = _elapsed_ms(context)
        self._log.info("request done", method=call.name, request_id=context.request_id, duration_ms=duration)
        self._log.debug(
            "request detail",
            method=call.name,
            request_id=context.request_id,
            duration_ms=duration,
            request_metadata=call.request.metadata,
            reply_metadata=response.metadata,
            reply_bytes=len(response.data or b""),
        )

    def failed(self, method: str, context: RequestContext, error: BaseException) -> None:
        self._log.error("request failed", method=method[:64], request_id=context.request_id, duration_ms=_elapsed_ms(context), error=str(error))


def logging_middleware(request_log: RequestLog) -> Middleware:
    """Log each request once, when it is done or has failed."""

    def wrap(call_next: CallHandler) -> CallHandler:
        async def handle(call: Call, context: RequestContext) -> Response:
            try:
                response = await call_next(call, context)
            except RequestError as exc:
                request_log.failed(call.name, context, exc)
                raise
            request_log.done(call, context, response)
            return response

        return handle

    return wrap


def deadline_middleware() -> Middleware:
    """Do not start work the sender no longer waits for; stop reads it gave up on.

    A request whose deadline has passed is refused before reaching the target.
    When the deadline passes while a read-only method runs, the read is
    cancelled (its reply could not be delivered anyway). A write is left to
    finish: cutting an upload or a delete half-way helps nobody, and a sender
    that retries must find the write done. No task is made per request: a read
    runs under ``asyncio.timeout`` in the request's own task.
    """

    def wrap(call_next: CallHandler) -> CallHandler:
        async def handle(call: Call, context: RequestContext) -> Response:
            remaining = context.remaining()
            if remaining is None:
                return await call_next(call, context)
            if remaining <= 0:
                raise RequestTimeoutError("request deadline passed before it was started; the sender has given up")
            if not call.read_only:
                return await call_next(call, context)
            try:
                async with asyncio.timeout(remaining):
                    return await call_next(call, context)
            except TimeoutError:
                raise RequestTimeoutError(f"request deadline passed after {_elapsed_ms(context):.0f} ms; the sender has given up") from None

        return handle

    return wrap


def ensure_wanted(context: RequestContext, waited_for: str) -> None:
    """Refuse to start (or restart) work after the sender's deadline, e.g. after a wait."""
    remaining = context.remaining()
    if remaining is not None and remaining <= 0:
        raise RequestTimeoutError(f"request deadline passed while waiting for {waited_for}; the sender has given up")


def retry_middleware(props: MiddlewareProperties) -> Middleware:
    """Retry only errors marked retryable (throttling, 5xx, timeouts, connection resets).

    The last attempt's error is raised, carrying the texts of the attempts
    before it (``earlier_attempts``) for the reply style that lists them all.
    """

    def wrap(call_next: CallHandler) -> CallHandler:
        async def handle(call: Call, context: RequestContext) -> Response:
            failed: list[str] = []
            for attempt in range(1, props.retry_attempts + 1):
                try:
                    return await call_next(call, context)
                except RequestError as exc:
                    if not exc.retryable or attempt == props.retry_attempts:
                        exc.earlier_attempts = (*failed, *exc.earlier_attempts)
                        raise
                    failed.append(str(exc))
                    delay = retry_delay(props, attempt)
                    log.info("retrying request", binding=context.binding, request_id=context.request_id, attempt=attempt, delay_ms=round(delay * 1000), error=str(exc))
                    await asyncio.sleep(delay)
                    ensure_wanted(context, "a retry")
            raise AssertionError("unreachable: the loop returns or raises")

        return handle

    return wrap


def retry_delay(props: MiddlewareProperties, attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    base = props.retry_delay_milliseconds / 1000
    if props.retry_delay_type == "back-off":
        delay = min(base * 2.0 ** (attempt - 1), props.retry_max_delay_milliseconds / 1000)
    elif props.retry_delay_type == "random":
        delay = random.uniform(0, base)
    else:
        delay = base
    return delay + random.uniform(0, props.retry_max_jitter_milliseconds / 1000)


def rate_limit_middleware(rate_per_second: float) -> Middleware:
    """Start at most ``rate_per_second`` calls per second, evenly spaced (no bursts)."""
    interval = 1.0 / rate_per_second
    lock = asyncio.Lock()
    next_slot = 0.0

    def wrap(call_next: CallHandler) -> CallHandler:
        async def handle(call: Call, context: RequestContext) -> Response:
            nonlocal next_slot
            async with lock:
                now = time.monotonic()
                wait = next_slot - now
                next_slot = max(now, next_slot) + interval
            if wait > 0:
                await asyncio.sleep(wait)
                ensure_wanted(context, "the rate limit")
            return await call_next(call, context)

        return handle

    return wrap


def _elapsed_ms(context: RequestContext) -> float:
    return round((time.monotonic() - context.started) * 1000, 2)
