"""Binding middleware: composable wrappers around the target's ``handle``.

Each middleware takes the next handler and returns a handler, so the chain is
plain function composition, built once per binding. The order, outermost
first, is: log -> metrics -> deadline -> retry -> rate limit -> target. Logging
and metrics see each request once; the deadline covers every attempt; the rate
limit spaces every attempt, as kubemq-targets does.

Properties use kubemq-targets' names; ``rate_per_seconds`` (the key its code
reads) is accepted beside ``rate_per_second`` (the key its README writes).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import structlog
from pydantic import AliasChoices

from bindings import logs
from bindings.context import RequestContext
from bindings.errors import RequestError, RequestTimeoutError
from bindings.metrics import Metrics
from bindings.properties import Properties, field
from bindings.wire import Request, Response

Handler = Callable[[Request, RequestContext], Awaitable[Response]]
Middleware = Callable[[Handler], Handler]

log = structlog.get_logger("bindings.requests")


class MiddlewareProperties(Properties):
    """A binding's own ``properties``: per-binding logging, retry and rate limiting."""

    log_level: Literal["debug", "info", "warning", "error"] | None = field(
        None, description="Per-request log level of this binding (`debug` also logs metadata of replies); unset: the global `logLevel`.", example="info"
    )
    retry_attempts: int = field(1, ge=1, le=100, description="Attempts per request, first included; only errors that can succeed on retry are retried.", example=3)
    retry_delay_milliseconds: int = field(100, ge=0, le=600_000, description="Delay before the first retry (`back-off` doubles it each time).", example=200)
    retry_max_jitter_milliseconds: int = field(100, ge=0, le=600_000, description="Random extra delay added to each retry, up to this much.", example=100)
    retry_max_delay_milliseconds: int = field(
        10_000, ge=0, le=600_000, description="Cap on one `back-off` delay, so many attempts cannot add up to hours.", example=5000
    )
    retry_delay_type: Literal["back-off", "fixed", "random"] = field(
        "back-off", description="`back-off`: doubling delays; `fixed`: the same delay; `random`: uniform up to the delay.", example="back-off"
    )
    rate_per_second: float = field(
        0,
        ge=0,
        description="Most requests started per second by this binding (0: unlimited). Also read as `rate_per_seconds`.",
        example=50,
        validation_alias=AliasChoices("rate_per_second", "rate_per_seconds"),
    )


def chain(handler: Handler, *middleware: Middleware) -> Handler:
    """Wrap ``handler`` so the first middleware given is the outermost."""
    for wrap in reversed(middleware):
        handler = wrap(handler)
    return handler


def build(target: Handler, props: MiddlewareProperties, metrics: Metrics, labels: dict[str, str]) -> Handler:
    """The binding's full chain around ``target``."""
    layers: list[Middleware] = [logging_middleware(props.log_level), metrics.middleware(labels), deadline_middleware()]
    if props.retry_attempts > 1:
        layers.append(retry_middleware(props))
    if props.rate_per_second > 0:
        layers.append(rate_limit_middleware(props.rate_per_second))
    return chain(target, *layers)


def logging_middleware(level: str | None) -> Middleware:
    """One line per request with binding, method, request id and duration.

    ``level`` is the binding's ``log_level`` (unset: the global ``logLevel``):
    ``info`` logs every request, ``warning``/``error`` only failures (logged
    at error, as kubemq-targets does), ``debug`` adds the request and reply
    metadata. Data is never logged.
    """
    logger = logs.request_logger(level)

    def wrap(call_next: Handler) -> Handler:
        async def handle(request: Request, context: RequestContext) -> Response:
            try:
                response = await call_next(request, context)
            except RequestError as exc:
                _request_line(logger, request, context).error("request failed", error=str(exc))
                raise
            line = _request_line(logger, request, context)
            line.info("request done")
            line.debug("request detail", request_metadata=request.metadata, reply_metadata=response.metadata, reply_bytes=len(response.data or b""))
            return response

        return handle

    return wrap


def _request_line(logger: Any, request: Request, context: RequestContext) -> Any:
    method = context.method or request.metadata.get("method", "")[:64]
    return logger.bind(binding=context.binding, method=method, request_id=context.request_id, duration_ms=_elapsed_ms(context))


def deadline_middleware() -> Middleware:
    """Do not start work the sender no longer waits for; stop reads it gave up on.

    A request whose deadline has passed is refused before reaching the target.
    When the deadline passes while a read-only method runs, the read is
    cancelled (its reply could not be delivered anyway). A write is left to
    finish: cutting an upload or a delete half-way helps nobody, and a sender
    that retries must find the write done.
    """

    def wrap(call_next: Handler) -> Handler:
        async def handle(request: Request, context: RequestContext) -> Response:
            remaining = context.remaining()
            if remaining is None:
                return await call_next(request, context)
            if remaining <= 0:
                raise RequestTimeoutError("request deadline passed before it was started; the sender has given up")
            work = asyncio.ensure_future(call_next(request, context))
            try:
                done, _ = await asyncio.wait({work}, timeout=remaining)
            except asyncio.CancelledError:
                # Cancelled from outside (drain timeout): the work must not outlive this request.
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
                raise
            if done or not context.read_only:
                return await work
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            raise RequestTimeoutError(f"request deadline passed after {_elapsed_ms(context):.0f} ms; the sender has given up")

        return handle

    return wrap


def ensure_wanted(context: RequestContext, waited_for: str) -> None:
    """Refuse to start (or restart) work after the sender's deadline, e.g. after a wait."""
    remaining = context.remaining()
    if remaining is not None and remaining <= 0:
        raise RequestTimeoutError(f"request deadline passed while waiting for {waited_for}; the sender has given up")


def retry_middleware(props: MiddlewareProperties) -> Middleware:
    """Retry only errors marked retryable (throttling, 5xx, timeouts, connection resets).

    The error the sender sees is the last attempt's, unwrapped: no
    ``All attempts fail:`` noise as in kubemq-targets.
    """

    def wrap(call_next: Handler) -> Handler:
        async def handle(request: Request, context: RequestContext) -> Response:
            for attempt in range(1, props.retry_attempts + 1):
                try:
                    return await call_next(request, context)
                except RequestError as exc:
                    if not exc.retryable or attempt == props.retry_attempts:
                        raise
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
        delay = min(base * 2 ** (attempt - 1), props.retry_max_delay_milliseconds / 1000)
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

    def wrap(call_next: Handler) -> Handler:
        async def handle(request: Request, context: RequestContext) -> Response:
            nonlocal next_slot
            async with lock:
                now = time.monotonic()
                wait = next_slot - now
                next_slot = max(now, next_slot) + interval
            if wait > 0:
                await asyncio.sleep(wait)
                ensure_wanted(context, "the rate limit")
            return await call_next(request, context)

        return handle

    return wrap


def _elapsed_ms(context: RequestContext) -> float:
    return round((time.monotonic() - context.started) * 1000, 2)
