"""Tracing when it is on: the OpenTelemetry side of ``bindings.tracing``.

Imported only when tracing is turned on, so a connector without tracing
never loads the OpenTelemetry SDK. The tracer provider stays private to the
connector (never the global one, never the kubemq SDK's: see
``bindings.tracing`` for the SDK 4.1.5 defect this avoids); components that
trace their own calls get it from ``Tracing.provider``.

Span attributes follow the OpenTelemetry messaging conventions where they
fit (``messaging.system=kubemq``, ``messaging.destination.name`` ...); what is
the product's own is under its metric prefix (``kubemq_s3.binding`` ...).
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import structlog
from opentelemetry import context as otel_context
from opentelemetry.propagate import get_global_textmap
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, set_span_in_context

from bindings.context import RequestContext
from bindings.errors import TargetError
from bindings.registry import Identity
from bindings.source import Outcome
from bindings.wire import Body

# An error's text on a span is cut here: a status is a summary, the logs have the rest.
MAX_STATUS_CHARS = 1024
# At stop, how long buffered spans may take to reach the collector: one that is down must not
# hold up the exit (its exporter would retry for up to OTEL_EXPORTER_OTLP_TIMEOUT).
FLUSH_ON_CLOSE_SECONDS = 2.0

log = structlog.get_logger("bindings.tracing")

# The span of the request being served in this task (and the tasks it starts).
_request_span: contextvars.ContextVar[Span | None] = contextvars.ContextVar("bindings_request_span", default=None)


class Tracing:
    """A running tracer: makes request spans, carries their context into outgoing tags, exports."""

    def __init__(self, provider: TracerProvider, identity: Identity, exporters: Sequence[SpanExporter] = ()) -> None:
        self.provider = provider
        self.identity = identity
        self.exporters = exporters  # stopped at once if the last spans take too long to export
        self.tracer = provider.get_tracer(identity.name)
        self.prefix = identity.metric_prefix
        # OTEL_PROPAGATORS decides, as for any OpenTelemetry program; W3C trace context (and baggage) by default.
        self.propagator = get_global_textmap()
        self._closers: list[Callable[[], object]] = []

    @classmethod
    def exporting(cls, exporters: list[str], identity: Identity, service_name: str, endpoint: str | None = None) -> Tracing:
        """Tracing that exports to ``exporters`` (``otlp``, ``console``) as ``service_name``.

        Sampling follows ``OTEL_TRACES_SAMPLER`` (parent-based, always on by
        default: a sender's sampling decision is kept).
        """
        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
        made = [_exporter(name, endpoint) for name in exporters]
        for exporter in made:
            # The console's lines are written at once; OTLP sends batches in the background.
            provider.add_span_processor(SimpleSpanProcessor(exporter) if isinstance(exporter, ConsoleSpanExporter) else BatchSpanProcessor(exporter))
        return cls(provider, identity, made)

    def on_close(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` when tracing stops (a component undoing its instrumentation)."""
        self._closers.append(callback)

    async def close(self) -> None:
        """Stop tracing (``tracing.stop`` first turns it off for new requests): instrumentations undone, spans still buffered exported (for a bounded time)."""
        for callback in reversed(self._closers):
            callback()
        self._closers.clear()
        # Exporting blocks (network round trips, retries): in a thread, not on the event loop.
        flushing = asyncio.ensure_future(asyncio.to_thread(self.provider.shutdown))
        try:
            await asyncio.wait_for(asyncio.shield(flushing), FLUSH_ON_CLOSE_SECONDS)
        except TimeoutError:
            log.warning("spans not exported at stop; dropped", waited_seconds=FLUSH_ON_CLOSE_SECONDS)
            for exporter in self.exporters:
                exporter.shutdown()  # ends an export's retries
            await flushing

    def consume(self, source: Any, message: Any) -> SpanTrace:
        """A CONSUMER span for one received message, child of the sender's span when its tags carry one."""
        channel = source.properties.channel
        attributes: dict[str, Any] = {
            "messaging.system": "kubemq",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": channel,
            f"{self.prefix}.binding": source.binding,
            f"{self.prefix}.source.kind": source.kind,
        }
        if group := getattr(source.properties, "group", ""):
            attributes["messaging.consumer.group.name"] = group
        parent = self.propagator.extract(source.tags(message))
        return SpanTrace(self.tracer.start_span(f"process {channel}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes), self.prefix)

    async def run(self, handler: Callable[[Body, RequestContext], Awaitable[Outcome]], body: Body, context: RequestContext) -> Outcome:
        """Run the handler with the request's span current, so the target's calls become its children."""
        span = _request_span.get()
        if span is None:  # called outside ``consume``: no message being served
            return await handler(body, context)
        span.set_attributes({"messaging.message.id": context.request_id, "messaging.message.body.size": len(body)})
        token = otel_context.attach(set_span_in_context(span))
        try:
            return await handler(body, context)
        finally:
            # Detached before the source replies: the SDK's sends fail with a span current.
            otel_context.detach(token)

    def inject(self, tags: dict[str, str]) -> dict[str, str]:
        """Write the current request span's context into ``tags`` (left as they are outside a request)."""
        span = _request_span.get()
        if span is not None:
            self.propagator.inject(tags, context=set_span_in_context(span))
        return tags

    def annotate(self, attributes: Mapping[str, Any]) -> None:
        span = _request_span.get()
        if span is not None:
            span.set_attributes(attributes)


class SpanTrace:
    """A traced message: its span covers handling and settling; it is current only while the handler runs (``Tracing.run``)."""

    def __init__(self, span: Span, prefix: str) -> None:
        self.span = span
        self.prefix = prefix
        self._token: contextvars.Token[Span | None] | None = None

    def __enter__(self) -> SpanTrace:
        self._token = _request_span.set(self.span)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None) -> None:
        if self._token is not None:
            _request_span.reset(self._token)
        if isinstance(exc, asyncio.CancelledError):
            self.span.set_status(Status(StatusCode.ERROR, "cancelled: the connector stopped before the request was settled"))
        elif exc is not None:
            self.span.record_exception(exc)
            self.span.set_status(Status(StatusCode.ERROR, _cut(f"not settled: {type(exc).__name__}: {exc}")))
        self.span.end()

    def record(self, outcome: Outcome) -> None:
        span, prefix = self.span, self.prefix
        if outcome.method:
            span.set_attribute(f"{prefix}.method", outcome.method)
        error = outcome.error
        if error is None:
            span.set_attributes({f"{prefix}.outcome": "ok", f"{prefix}.response.data.size": len(outcome.response.data or b"")})
            return
        code = error.code if isinstance(error, TargetError) and error.code else type(error).__name__
        span.set_attributes({f"{prefix}.outcome": "error", "error.type": code})
        if isinstance(error, TargetError) and error.status:
            span.set_attribute(f"{prefix}.error.status", error.status)
        span.set_status(Status(StatusCode.ERROR, _cut(str(error))))


def _exporter(name: str, endpoint: str | None) -> SpanExporter:
    if name == "console":
        # One JSON line per span: readable next to the logs (on stderr), parseable by a collector.
        return ConsoleSpanExporter(out=sys.stdout, formatter=lambda span: span.to_json(indent=None) + "\n")
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    # endpoint None: the exporter reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, headers, certificate ... itself.
    return OTLPSpanExporter(endpoint=endpoint)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_STATUS_CHARS else text[: MAX_STATUS_CHARS - 3] + "..."
