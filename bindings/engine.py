"""Bindings and the engine that runs them.

A binding joins one source to one target through its middleware chain. It
starts in the background: the target is initialised (retried with backoff, as
kubemq-targets retries a failing binding) and then the source subscribes. The
engine owns the set of bindings and applies a new config binding by binding:
unchanged bindings keep running untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from bindings import middleware
from bindings.config import ResolvedBinding, ResolvedConfig
from bindings.context import RequestContext, TargetContext
from bindings.devservices import Acquired, DevelopmentService
from bindings.errors import InvalidRequestError, RequestError, describe
from bindings.metrics import Metrics
from bindings.redaction import redact
from bindings.registry import Registry
from bindings.source import Outcome, Source
from bindings.target import Call, Target
from bindings.wire import KUBEMQ_TARGETS, Body, Request, Response, parse_request

log = structlog.get_logger("bindings.engine")
INIT_RETRY_MAX_SECONDS = 30.0
HANDOVER_POLL_SECONDS = 0.05
HANDOVER_SETTLE_SECONDS = 0.25


class Binding:
    """One running binding: source -> middleware -> target."""

    def __init__(self, spec: ResolvedBinding, registry: Registry, metrics: Metrics, services: Sequence[DevelopmentService] = ()) -> None:
        self.spec = spec
        self.metrics = metrics
        self.source: Source = registry.sources[spec.source.kind](spec.source.properties, spec.name)
        self.source.on_settled = metrics.settlements(spec.name)
        self.source.on_undelivered = metrics.undelivered_replies.labels(spec.name).inc
        self.source.item_counts = metrics.item_counts(spec.name)
        self.target: Target = registry.targets[spec.target.kind]()
        self.source.target_answers = self.target.answers
        self.target_ready = False
        self.last_error: str | None = None
        self._starter: asyncio.Task[None] | None = None
        # The development servers this binding's config names (``embedded``), pointed at once they run.
        self._services = Acquired(list(services))
        self._source_pointed = False
        self._target_properties: Any = None
        self._labels = {"binding": spec.name, "source_kind": spec.source.kind, "target_kind": spec.target.kind}
        self._request_log = middleware.RequestLog(spec.name, spec.middleware.log_level)
        self._chain = middleware.build(self.target.handle, spec.middleware, metrics, self._labels, self._request_log)
        self._parse: Callable[[Body], Request] = (lambda body: Request(data=bytes(body))) if self.source.raw_payload else parse_request
        self._style = spec.middleware.reply_style

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def ready(self) -> bool:
        return self.target_ready and self.source.ready

    def not_ready_reason(self) -> str:
        if not self.target_ready:
            return f"target not initialised: {self.last_error or 'starting'}"
        if self.source.status.failed:
            return f"source gave up: {self.source.status.last_error}"
        if not self.source.ready:
            return f"source not subscribed: {self.source.status.not_connected_reason()}"
        return ""

    async def prepare(self) -> None:
        """Try once to initialise the target now; ``start`` retries in the background if this failed."""
        if not self.target_ready:
            await self._init_target_once()

    async def start(self) -> None:
        """Begin starting in the background; readiness tells when it is done."""
        self._starter = asyncio.create_task(self._start_when_possible(), name=f"start-{self.name}")

    async def _init_target_once(self) -> bool:
        context = TargetContext(
            binding=self.name,
            max_concurrency=self.source.max_concurrency,
            log=log.bind(binding=self.name),
            max_reply_data=self.source.max_reply_data,
            reply_style=self._style,
        )
        try:
            # First the development servers the config names: both sides are pointed at them before use,
            # each once (a side already pointed is not acquired again when a later step failed).
            if not self._source_pointed:
                self.source.point_at(await self._services.resolve(self.spec.source.properties))
                self._source_pointed = True
            if self._target_properties is None:
                self._target_properties = await self._services.resolve(self.spec.target.properties)
            await self.target.init(self._target_properties, context)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported on /ready and /bindings, retried
            self.last_error = str(exc) or type(exc).__name__
            log.error("target init failed", binding=self.name, error=self.last_error)
            with contextlib.suppress(Exception):
                await self.target.close()
            return False
        self.target_ready = True
        self.last_error = None
        return True

    async def _start_when_possible(self) -> None:
        attempt = 0
        while not self.target_ready and not await self._init_target_once():
            attempt += 1
            await asyncio.sleep(min(INIT_RETRY_MAX_SECONDS, 2 ** min(attempt - 1, 5)))
        await self.source.start(self.process)
        log.info("binding started", binding=self.name, source=self.spec.source.kind, target=self.spec.target.kind)

    async def stop(self, drain_timeout: float) -> None:
        """Stop receiving, let in-flight requests finish (up to ``drain_timeout``), close the target."""
        if self._starter is not None:
            self._starter.cancel()
            try:
                await self._starter
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # this stop itself is being cancelled, not just the starter
            except Exception:  # noqa: BLE001, S110 - the starter reports its own failures
                pass
        await self.source.stop(drain_timeout)
        with contextlib.suppress(Exception):
            await self.target.close()
        with contextlib.suppress(Exception):
            await self._services.release()
        self.target_ready = False
        self.metrics.forget(self.name)
        log.info("binding stopped", binding=self.name)

    async def process(self, body: Body, context: RequestContext) -> Outcome:
        """Parse and resolve once, run the chain, and turn every failure into an error reply; never raises but ``CancelledError``."""
        request: Request | None = None
        call: Call | None = None
        try:
            request = self._parse(body)
            call = self.target.resolve(request)
            self.target.authorize(call)
        except Exception as exc:  # noqa: BLE001 - refusals are RequestErrors; anything else is still the input's fault
            error = exc if isinstance(exc, RequestError) else InvalidRequestError(f"invalid request format, {describe(exc)}")
            # Refused before the chain: still counted and logged like any failed request, under its method once known.
            method = call.name if call else ""
            self.metrics.count_refused(self._labels, len(body), error, method or "invalid")
            self._request_log.failed(method or (request.metadata.get("method", "") if request else ""), context, error)
            # A body that cannot be read is refused by kubemq-targets' source, before its middleware: never listed as attempts.
            return Outcome(Response.failure(error) if request is None else self._failure(error), error, method=method)
        try:
            return Outcome(call.method.styled(await self._chain(call, context), self._style), method=call.name)
        except RequestError as exc:
            return Outcome(self._failure(exc), exc, method=call.name)
        except Exception as exc:  # a bug must not end the subscription: logged, answered
            log.exception("unexpected error", binding=self.name, request_id=context.request_id)
            error = RequestError(f"internal error: {describe(exc)}")
            return Outcome(self._failure(error), error, method=call.name)

    def _failure(self, error: RequestError) -> Response:
        """The error reply for a request that reached the target: every attempt listed, as kubemq-targets' retry middleware does, or the last alone."""
        if self._style == KUBEMQ_TARGETS:
            return Response.attempts_failed([*error.earlier_attempts, str(error)])
        return Response.failure(error)

    def status(self) -> dict[str, Any]:
        """What ``/bindings`` shows: state and config, every secret redacted."""
        source_status = self.source.status
        return {
            "binding": self.name,
            "ready": self.ready,
            "reason": self.not_ready_reason() or None,
            "source_type": self.spec.source.kind,
            "source_name": self.spec.source.name,
            "source_connection": source_status.connection,
            "source_connected": source_status.connected,
            "source_last_error": source_status.last_error,
            "target_type": self.spec.target.kind,
            "target_name": self.spec.target.name,
            "target_last_error": self.last_error,
            "in_flight": self.source.in_flight,
            "source_config": redact(self.spec.source.properties),
            "target_config": redact(self.spec.target.properties),
            "properties": redact(self.spec.middleware),
        }


class Engine:
    """Owns the running bindings and applies configs to them."""

    def __init__(self, registry: Registry, metrics: Metrics, services: Sequence[DevelopmentService] = ()) -> None:
        self.registry = registry
        self.metrics = metrics
        self.services = list(services)
        self.bindings: dict[str, Binding] = {}
        self.config: ResolvedConfig | None = None
        self.closing = False
        self._retiring: set[Binding] = set()  # replaced or removed, still draining
        self._stopping: dict[Binding, asyncio.Task[None]] = {}

    async def apply(self, config: ResolvedConfig, drain_timeout: float) -> dict[str, list[str]]:
        """Make the running bindings match ``config``; returns what changed.

        Unchanged bindings keep running untouched; removed ones drain and stop;
        new ones start; changed ones are replaced (see ``_replace``). Every
        binding of the new config is built before anything is touched, so a
        binding that cannot even be built leaves the running set as it was.
        All changes proceed at once, so one slow drain does not delay the rest.
        """
        wanted = {spec.name: spec for spec in config.bindings}
        changes: dict[str, list[str]] = {"started": [], "restarted": [], "stopped": [], "unchanged": []}
        built: dict[str, Binding] = {}
        for name, spec in wanted.items():
            running = self.bindings.get(name)
            if running is not None and spec.fingerprint == running.spec.fingerprint:
                changes["unchanged"].append(name)
            else:
                built[name] = Binding(spec, self.registry, self.metrics, self.services)
                changes["restarted" if running is not None else "started"].append(name)
        jobs = []
        for name, running in list(self.bindings.items()):
            if name not in wanted:
                del self.bindings[name]
                changes["stopped"].append(name)
                jobs.append(self._retire(running, drain_timeout))
        for name, binding in built.items():
            running = self.bindings.get(name)
            jobs.append(self._launch(binding) if running is None else self._replace(running, binding, drain_timeout))
        await asyncio.gather(*jobs)
        self.config = config
        return changes

    async def _launch(self, binding: Binding) -> None:
        if self.closing:
            return
        self.bindings[binding.name] = binding
        await binding.start()

    async def _replace(self, old: Binding, new: Binding, drain_timeout: float) -> None:
        """Swap a changed binding without failing a request.

        With the same ``group`` on both, the broker gives each request to one
        member, so the new binding subscribes first and the old one leaves
        once the new one is ready: the channel never has zero subscribers.
        Without a shared group both would get every request (and run it
        twice), so the old one drains first and the new one starts after.
        Either way the old one's in-flight requests finish before it stops.
        """
        new.source.inherit(old.source)
        if _shared_group(old, new):
            self._retiring.add(old)
            await self._launch(new)
            await self._handover(new, drain_timeout)
            await self._retire(old, drain_timeout, replaced=True)
        else:
            # The new target comes up before the old one closes: shared resources it
            # holds (a connection pool, the embedded store) are never dropped in between.
            await new.prepare()
            await self._retire(old, drain_timeout, replaced=True)
            if self.closing:  # shut down during the drain: the prepared target must not leak
                await new.stop(0)
                return
            await self._launch(new)

    async def _handover(self, new: Binding, timeout: float) -> None:
        """Wait until ``new`` serves (or shutdown, or ``timeout``: the config is applied regardless)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not new.ready and not self.closing and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(HANDOVER_POLL_SECONDS)
        if new.ready:
            # Ready flips when the subscribe call is sent; the broker registers it a moment later.
            await asyncio.sleep(HANDOVER_SETTLE_SECONDS)
        elif not self.closing:
            log.warning("replacement binding not ready; stopping the old one as configured", binding=new.name, reason=new.not_ready_reason(), waited_seconds=timeout)

    async def _retire(self, binding: Binding, drain_timeout: float, *, replaced: bool = False) -> None:
        """Stop ``binding`` after its in-flight requests; one stop shared by every caller (reload, shutdown)."""
        self._retiring.add(binding)
        task = self._stopping.get(binding)
        if task is None:
            task = self._stopping[binding] = asyncio.create_task(self._stop_binding(binding, drain_timeout, replaced), name=f"stop-{binding.name}")
        await asyncio.shield(task)

    async def _stop_binding(self, binding: Binding, drain_timeout: float, replaced: bool) -> None:
        totals = self.metrics.stats.get(binding.name)
        try:
            await binding.stop(drain_timeout)
        finally:
            self._stopping.pop(binding, None)
            self._retiring.discard(binding)
            if self.bindings.get(binding.name) is binding:
                del self.bindings[binding.name]
            if replaced and totals is not None:
                # stop() forgets the name's /bindings/stats totals; the successor was built sharing them.
                self.metrics.stats[binding.name] = totals

    async def stop(self, drain_timeout: float) -> None:
        """Stop every binding at once, running or being replaced, each draining its in-flight requests.

        Sets ``closing`` first, so a reload in progress starts nothing more.
        """
        self.closing = True
        everything = {*self.bindings.values(), *self._retiring}
        await asyncio.gather(*(self._retire(binding, drain_timeout) for binding in everything))
        self.bindings.clear()

    def readiness(self) -> tuple[bool, dict[str, str]]:
        """Ready when every binding is; otherwise the reason of each one that is not."""
        # A binding being replaced make-before-break still serves while its successor subscribes.
        serving = {binding.name for binding in self._retiring if binding.ready}
        reasons = {name: binding.not_ready_reason() for name, binding in self.bindings.items() if not binding.ready and name not in serving}
        for name, binding in self.bindings.items():
            self.metrics.binding_ready.labels(name).set(1 if binding.ready else 0)
        return not reasons, reasons


def _shared_group(old: Binding, new: Binding) -> bool:
    """Whether the broker load-balances between the two sources instead of copying requests to both."""
    group = new.source.load_group
    return bool(group) and group == old.source.load_group and old.spec.source.kind == new.spec.source.kind
