"""Request metrics: Prometheus series for scraping, and per-binding totals for ``/bindings/stats``.

The ``method`` label comes from the target's method table (``context.method``),
never from raw request metadata, so a sender cannot blow up label cardinality.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from bindings import logs
from bindings.context import RequestContext
from bindings.errors import RequestError, TargetError
from bindings.wire import Request, Response

LABELS = ("binding", "source_kind", "target_kind", "method")
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


@dataclass
class BindingStats:
    """kubemq-targets' ``/bindings/stats`` report for one binding."""

    binding: str
    source_kind: str
    target_kind: str
    request_count: int = 0
    request_volume: int = 0
    response_count: int = 0
    response_volume: int = 0
    errors_count: int = 0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class Metrics:
    """One process-wide set of series, in its own registry (tests can create many)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("kubemq_s3_requests", "Requests handled.", LABELS, registry=self.registry)
        self.errors = Counter("kubemq_s3_errors", "Requests that ended in an error reply.", (*LABELS, "code"), registry=self.registry)
        self.duration = Histogram("kubemq_s3_request_duration_seconds", "Time from receipt to reply.", LABELS, buckets=DURATION_BUCKETS, registry=self.registry)
        self.request_bytes = Counter("kubemq_s3_request_bytes", "Payload bytes received.", LABELS, registry=self.registry)
        self.response_bytes = Counter("kubemq_s3_response_bytes", "Payload bytes replied.", LABELS, registry=self.registry)
        self.in_flight = Gauge("kubemq_s3_in_flight_requests", "Requests being handled now.", ("binding",), registry=self.registry)
        self.binding_ready = Gauge("kubemq_s3_binding_ready", "1 when the binding is subscribed and its target initialised.", ("binding",), registry=self.registry)
        self.queue_outcomes = Counter(
            "kubemq_s3_queue_outcomes", "How queue messages were settled: acked, rejected (redelivered) or dead_lettered.", ("binding", "method", "outcome"), registry=self.registry
        )
        self.registry.register(_DroppedLogLines())
        self.stats: dict[str, BindingStats] = {}

    def settlements(self, binding: str) -> Callable[[str, str], None]:
        """The callback a binding's source reports each settled message to: ``(method, outcome)``."""

        def count(method: str, outcome: str) -> None:
            self.queue_outcomes.labels(binding, method or "unknown", outcome).inc()

        return count

    def forget(self, binding: str) -> None:
        """Drop a removed binding's readiness series (its counters stay: they are history)."""
        with contextlib.suppress(KeyError):
            self.binding_ready.remove(binding)
        self.stats.pop(binding, None)

    def _stats(self, labels: dict[str, str]) -> BindingStats:
        binding = labels["binding"]
        return self.stats.setdefault(binding, BindingStats(binding, labels["source_kind"], labels["target_kind"]))

    def count_unparsed(self, labels: dict[str, str], size: int, error: RequestError) -> None:
        """Record a request refused before the chain (its body could not be parsed)."""
        stats = self._stats(labels)
        stats.request_count += 1
        stats.request_volume += size
        stats.errors_count += 1
        series = (labels["binding"], labels["source_kind"], labels["target_kind"], "invalid")
        self.requests.labels(*series).inc()
        self.request_bytes.labels(*series).inc(size)
        self.errors.labels(*series, type(error).__name__).inc()

    def middleware(self, labels: dict[str, str]):  # type: ignore[no-untyped-def]
        """A middleware recording each request once, whatever its outcome."""
        binding = labels["binding"]
        stats = self._stats(labels)
        in_flight = self.in_flight.labels(binding)

        def wrap(call_next):  # type: ignore[no-untyped-def]
            async def handle(request: Request, context: RequestContext) -> Response:
                in_flight.inc()
                started = time.monotonic()
                stats.request_count += 1
                stats.request_volume += len(request.data)
                code = ""
                response: Response | None = None
                try:
                    response = await call_next(request, context)
                    stats.response_count += 1
                    stats.response_volume += len(response.data or b"")
                    return response
                except Exception as exc:
                    stats.errors_count += 1
                    code = exc.code if isinstance(exc, TargetError) and exc.code else type(exc).__name__
                    raise
                finally:
                    in_flight.dec()
                    series = (binding, labels["source_kind"], labels["target_kind"], context.method or "unknown")
                    self.requests.labels(*series).inc()
                    self.duration.labels(*series).observe(time.monotonic() - started)
                    self.request_bytes.labels(*series).inc(len(request.data))
                    if code:
                        self.errors.labels(*series, code[:64]).inc()
                    elif response is not None:
                        self.response_bytes.labels(*series).inc(len(response.data or b""))

            return handle

        return wrap


class _DroppedLogLines(Collector):
    """Log lines the sink could not write (a closed pipe, a full disk): the process went on without them."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily("kubemq_s3_log_lines_dropped", "Log lines dropped because the log output failed.", value=logs.dropped_lines)
