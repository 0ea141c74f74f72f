"""Request metrics: Prometheus series for scraping, and per-binding totals for ``/bindings/stats``.

The ``method`` label comes from the target's method table (the resolved
``Call``), never from raw request metadata, so a sender cannot blow up label
cardinality; a request refused before it was resolved is counted as ``invalid``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from bindings import logs
from bindings.context import RequestContext
from bindings.errors import TargetError
from bindings.source import ItemCounts
from bindings.target import Call, CallHandler
from bindings.wire import Response

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

    def __init__(self, prefix: str = "bindings") -> None:
        """Series named ``<prefix>_...`` (the product's metric prefix)."""
        self.prefix = prefix
        self.registry = CollectorRegistry()
        self.requests = Counter(f"{prefix}_requests", "Requests handled.", LABELS, registry=self.registry)
        self.errors = Counter(f"{prefix}_errors", "Requests that ended in an error reply.", (*LABELS, "code"), registry=self.registry)
        self.duration = Histogram(f"{prefix}_request_duration_seconds", "Time from receipt to reply.", LABELS, buckets=DURATION_BUCKETS, registry=self.registry)
        self.request_bytes = Counter(f"{prefix}_request_bytes", "Payload bytes received.", LABELS, registry=self.registry)
        self.response_bytes = Counter(f"{prefix}_response_bytes", "Payload bytes replied.", LABELS, registry=self.registry)
        self.in_flight = Gauge(f"{prefix}_in_flight_requests", "Requests being handled now.", ("binding",), registry=self.registry)
        self.binding_ready = Gauge(f"{prefix}_binding_ready", "1 when the binding is subscribed and its target initialised.", ("binding",), registry=self.registry)
        self.queue_outcomes = Counter(
            f"{prefix}_queue_outcomes", "How queue messages were settled: acked, rejected (redelivered) or dead_lettered.", ("binding", "method", "outcome"), registry=self.registry
        )
        self.undelivered_replies = Counter(
            f"{prefix}_replies_undelivered", "Replies that could not reach KubeMQ because the connection was lost (their senders time out).", ("binding",), registry=self.registry
        )
        self.source_items = Counter(
            f"{prefix}_source_items",
            "Items a polling source found (new), delivered, failed to deliver (tried again later), found gone, or whose after-delivery step failed.",
            ("binding", "outcome"),
            registry=self.registry,
        )
        self.source_pending = Gauge(f"{prefix}_source_pending_items", "Items a polling source found and has not delivered yet.", ("binding",), registry=self.registry)
        self.source_oldest_pending = Gauge(f"{prefix}_source_oldest_pending_seconds", "How long the oldest undelivered item of a polling source has waited.", ("binding",), registry=self.registry)
        self.registry.register(_DroppedLogLines(prefix))
        self.stats: dict[str, BindingStats] = {}

    def settlements(self, binding: str) -> Callable[[str, str], None]:
        """The callback a binding's source reports each settled message to: ``(method, outcome)``."""

        def count(method: str, outcome: str) -> None:
            self.queue_outcomes.labels(binding, method or "unknown", outcome).inc()

        return count

    def item_counts(self, binding: str) -> ItemCounts:
        """What a binding's polling source reports, as this binding's series."""
        return _BindingItemCounts(self, binding)

    def forget(self, binding: str) -> None:
        """Drop a removed binding's readiness series (its counters stay: they are history)."""
        for gauge in (self.binding_ready, self.source_pending, self.source_oldest_pending):
            with contextlib.suppress(KeyError):
                gauge.remove(binding)
        self.stats.pop(binding, None)

    def _stats(self, labels: dict[str, str]) -> BindingStats:
        binding = labels["binding"]
        return self.stats.setdefault(binding, BindingStats(binding, labels["source_kind"], labels["target_kind"]))

    def count_refused(self, labels: dict[str, str], size: int, error: Exception, method: str) -> None:
        """Record a request refused before the chain: unparsable or unresolvable (method label ``invalid``), or not allowed (its method)."""
        stats = self._stats(labels)
        stats.request_count += 1
        stats.request_volume += size
        stats.errors_count += 1
        series = self._series(labels, method)
        series.requests.inc()
        series.request_bytes.inc(size)
        self.errors.labels(labels["binding"], labels["source_kind"], labels["target_kind"], method, error_code(error)).inc()

    def _series(self, labels: dict[str, str], method: str) -> _MethodSeries:
        return _MethodSeries(
            *(metric.labels(labels["binding"], labels["source_kind"], labels["target_kind"], method) for metric in (self.requests, self.duration, self.request_bytes, self.response_bytes))
        )

    def middleware(self, labels: dict[str, str]) -> Callable[[CallHandler], CallHandler]:
        """A middleware recording each request once, whatever its outcome; series are looked up once per method."""
        binding = labels["binding"]
        stats = self._stats(labels)
        in_flight = self.in_flight.labels(binding)
        by_method: dict[str, _MethodSeries] = {}

        def wrap(call_next: CallHandler) -> CallHandler:
            async def handle(call: Call, context: RequestContext) -> Response:
                in_flight.inc()
                started = time.monotonic()
                size = call.request.size  # base64 data is measured, not decoded
                stats.request_count += 1
                stats.request_volume += size
                series = by_method.get(call.name) or by_method.setdefault(call.name, self._series(labels, call.name))
                try:
                    response = await call_next(call, context)
                except Exception as exc:
                    stats.errors_count += 1
                    self.errors.labels(binding, labels["source_kind"], labels["target_kind"], call.name, error_code(exc)).inc()
                    raise
                else:
                    replied = len(response.data or b"")
                    stats.response_count += 1
                    stats.response_volume += replied
                    series.response_bytes.inc(replied)
                    return response
                finally:
                    in_flight.dec()
                    series.requests.inc()
                    series.duration.observe(time.monotonic() - started)
                    series.request_bytes.inc(size)

            return handle

        return wrap


class _BindingItemCounts(ItemCounts):
    """A binding's item series; the gauges are looked up at each report, so a binding replaced by a reload keeps them."""

    def __init__(self, metrics: Metrics, binding: str) -> None:
        self._metrics, self._binding = metrics, binding
        self._outcomes = {outcome: metrics.source_items.labels(binding, outcome) for outcome in ("found", "delivered", "failed", "gone", "after_send_failed")}

    def found(self, count: int) -> None:
        self._outcomes["found"].inc(count)

    def delivered(self) -> None:
        self._outcomes["delivered"].inc()

    def failed(self) -> None:
        self._outcomes["failed"].inc()

    def gone(self) -> None:
        self._outcomes["gone"].inc()

    def after_send_failed(self) -> None:
        self._outcomes["after_send_failed"].inc()

    def backlog(self, pending: int, oldest_since: float | None) -> None:
        self._metrics.source_pending.labels(self._binding).set(pending)
        # The age grows between scans: computed when scraped.
        self._metrics.source_oldest_pending.labels(self._binding).set_function(lambda: 0.0 if oldest_since is None else max(0.0, time.time() - oldest_since))


@dataclass(frozen=True, slots=True)
class _MethodSeries:
    """The labelled series of one binding and method, resolved once instead of per request."""

    requests: Any
    duration: Any
    request_bytes: Any
    response_bytes: Any


def error_code(error: BaseException) -> str:
    """The ``code`` label of an error: the backend's own code (``NoSuchKey`` ...) or the error's type, at most 64 characters."""
    code = error.code if isinstance(error, TargetError) and error.code else type(error).__name__
    return code[:64]


class _DroppedLogLines(Collector):
    """Log lines the sink could not write (a closed pipe, a full disk): the process went on without them."""

    def __init__(self, prefix: str) -> None:
        self.name = f"{prefix}_log_lines_dropped"

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self.name, "Log lines dropped because the log output failed.", value=logs.dropped_lines)
