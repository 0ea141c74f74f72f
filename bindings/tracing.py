"""Distributed tracing with OpenTelemetry: off by default, and free when off.

When on (``tracing:`` in ``config.yaml``, or the standard ``OTEL_*``
variables), each request a source takes gets a CONSUMER span that continues
the W3C trace context the sender's KubeMQ SDK put in the message tags
(``traceparent``/``tracestate``), or starts a new trace when there is none;
responses and dead-letter copies the connector publishes carry that span's
context in their tags. Targets add child spans for their backend calls
(``active().provider``) and describe the request on its span (``annotate``).

This module imports nothing from OpenTelemetry: ``bindings.otel`` holds
everything that does and is imported only when tracing is turned on. Off,
each request costs one global lookup and a shared do-nothing object
(``UNTRACED``).

The kubemq SDK 4.1.5 traces its own sends badly: whenever a span is current
(or its ``ClientConfig`` has a ``tracer_provider``) its send paths inject the
context through a carrier that cannot be written to, and the send fails with
``'KubeMQTagsCarrier' object does not support item assignment``. So the
connector never hands the SDK a tracer provider or sets the global one, the
request's span is current only while the handler runs (never while the source
replies or publishes), and the trace context goes into outgoing tags here.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol

import structlog
from pydantic import BaseModel, ConfigDict, Field

from bindings.context import RequestContext

if TYPE_CHECKING:
    from bindings.otel import Tracing
    from bindings.registry import Identity
    from bindings.source import Outcome
    from bindings.wire import Body

log = structlog.get_logger("bindings.tracing")

Exporter = Literal["otlp", "console"]
EXPORTERS: tuple[str, ...] = ("otlp", "console")


class TracingSettings(BaseModel):
    """The ``tracing`` block: where spans go. Unset keys fall back to the standard ``OTEL_*`` variables."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool | None = Field(
        None,
        description="`true` turns tracing on, `false` keeps it off whatever the environment says; unset: on when `OTEL_TRACES_EXPORTER` names `otlp` or `console`.",
    )
    exporter: Exporter | None = Field(None, description="Where spans go: `otlp` (OTLP over gRPC) or `console` (one JSON line per span on stdout); unset: `OTEL_TRACES_EXPORTER`, else `otlp`.")
    endpoint: str = Field(
        "",
        description="OTLP gRPC endpoint, e.g. `http://otel-collector.observability:4317` (`http://`: no TLS); empty: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`, else `http://localhost:4317`.",
    )
    serviceName: str = Field("", description="`service.name` of the spans; empty: `OTEL_SERVICE_NAME`, else the program's name.")


def wanted_exporters(settings: TracingSettings, environ: Mapping[str, str] = os.environ) -> list[str]:
    """The exporters to send spans to; empty when tracing is off.

    ``OTEL_SDK_DISABLED=true`` turns tracing off, as in every OpenTelemetry SDK.
    Unlike them, an unset ``OTEL_TRACES_EXPORTER`` means off, not ``otlp``:
    tracing is opt-in.
    """
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true" or settings.enabled is False:
        return []
    if settings.exporter:
        return [settings.exporter]
    named = [name.strip().lower() for name in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if name.strip()]
    unknown = [name for name in named if name not in EXPORTERS and name != "none"]
    if unknown:
        log.warning("OTEL_TRACES_EXPORTER names exporters this connector does not ship; ignored", ignored=unknown, supported=list(EXPORTERS))
    chosen = [name for name in dict.fromkeys(named) if name in EXPORTERS]
    if settings.enabled and not chosen:
        return ["otlp"]
    return chosen


class RequestTrace(Protocol):
    """One message's trace, as a source uses it.

    A source wraps its handling of a message in it::

        with tracing.consume(self, message) as trace:
            outcome = await tracing.run(handler, body, context)  # the span current only in here
            trace.record(outcome)
            await self.settle(...)  # reply, ack, publish: the SDK sends with no span current
    """

    def __enter__(self) -> RequestTrace: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None) -> None: ...

    def record(self, outcome: Outcome) -> None:
        """Note how the request ended (method, success or error code) on its span."""


class Untraced:
    """The trace of a message while tracing is off: it does nothing."""

    def __enter__(self) -> Untraced:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None) -> None:
        return None

    def record(self, outcome: Outcome) -> None:
        """Nothing to note."""


UNTRACED = Untraced()
_active: Tracing | None = None


def active() -> Tracing | None:
    """The running tracing, or None when tracing is off."""
    return _active


def consume(source: Any, message: Any) -> RequestTrace:
    """The trace of one message ``source`` received (its ``tags(message)`` give the sender's context)."""
    tracing = _active
    return UNTRACED if tracing is None else tracing.consume(source, message)


def run(handler: Callable[[Body, RequestContext], Awaitable[Outcome]], body: Body, context: RequestContext) -> Awaitable[Outcome]:
    """Run a request's handler, its span current while it runs (so a target's calls are its children)."""
    tracing = _active
    return handler(body, context) if tracing is None else tracing.run(handler, body, context)


def inject(tags: dict[str, str]) -> dict[str, str]:
    """Put the current request's trace context into the tags of a message it publishes; returns ``tags``."""
    tracing = _active
    return tags if tracing is None else tracing.inject(tags)


def annotate(attributes: Mapping[str, Any]) -> None:
    """Describe the current request on its span (a target's bucket and key, say); nothing when off."""
    tracing = _active
    if tracing is not None:
        tracing.annotate(attributes)


def install(tracing: Tracing | None) -> Tracing | None:
    """Make ``tracing`` the running one (None: off); returns the one it replaces."""
    global _active
    previous, _active = _active, tracing
    return previous


async def stop(running: Tracing) -> None:
    """Turn ``running`` off for new requests (if it is the one installed) and close it: the spans still buffered are exported."""
    if _active is running:
        install(None)
    await running.close()


def start(settings: TracingSettings, identity: Identity, environ: Mapping[str, str] = os.environ) -> Tracing | None:
    """Turn tracing on if the config or the environment asks for it; returns what the caller must ``close``.

    ``identity`` names the spans' service (unless configured) and the
    namespace of the product's own span attributes.

    None when tracing stays off, when it is already on (an embedder or a test
    installed its own), or when the OpenTelemetry packages are missing: tracing
    is for watching requests and never stops them from being served.
    """
    exporters = wanted_exporters(settings, environ)
    if not exporters or _active is not None:
        return None
    try:
        from bindings import otel
    except ImportError as exc:
        log.error("tracing is on but OpenTelemetry is not installed; running without tracing", error=str(exc), hint=f"pip install '{identity.name}[tracing]'")
        return None
    service = settings.serviceName or environ.get("OTEL_SERVICE_NAME", "") or identity.name
    tracing = otel.Tracing.exporting(exporters, identity, service, settings.endpoint or None)
    install(tracing)
    log.info("tracing on", exporters=exporters, service_name=service)
    return tracing
