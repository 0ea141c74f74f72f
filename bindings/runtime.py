"""The process: config in, bindings and API running, live reloads, clean shutdown on a signal.

``Runtime.start``/``stop`` are separate from ``run`` so tests (and embedders)
can run a whole connector inside their own event loop.

A reload (file change, ``SIGHUP``) validates the whole file first; an invalid
one is refused with every problem listed (the same text as ``validate``),
logged, shown on ``GET /config/status``, and the running config keeps
serving. A valid one is applied binding by binding (see ``Engine.apply``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from aiohttp import web
from pydantic import BaseModel, SecretStr

from bindings import logs, tracing
from bindings.api import start_api
from bindings.config import Config, ResolvedConfig, load_config
from bindings.engine import Engine
from bindings.errors import ConfigError
from bindings.internals import check_all
from bindings.metrics import Metrics
from bindings.redaction import MASK, redact
from bindings.registry import Registry
from bindings.reload import ConfigStatus, ConfigWatcher, file_digest

if TYPE_CHECKING:
    from bindings.otel import Tracing  # imported only when tracing is on

log = structlog.get_logger("bindings.runtime")


class Runtime:
    """One connector process: engine, HTTP API, config watcher, and the development services a config names."""

    def __init__(self, config_path: str | Path, registry: Registry, *, configure_logging: bool = True, watch: bool = False) -> None:
        self.config_path = Path(config_path)
        self.registry = registry
        self.configure_logging = configure_logging
        self.watch = watch
        self.metrics = Metrics(registry.identity.metric_prefix)
        self.engine = Engine(registry, self.metrics)
        self.config: ResolvedConfig | None = None
        self.status = ConfigStatus(str(self.config_path))
        self.status.track(self.metrics.registry, registry.identity.metric_prefix)
        self.api_port: int | None = None
        self._api: web.AppRunner | None = None
        self._api_address: tuple[str, int] | None = None
        self._tracing: Tracing | None = None  # the tracing this runtime turned on, to close at stop
        self._watcher: ConfigWatcher | None = None
        self._seen_digest: str | None = None  # content last tried, applied or refused
        self._signal_reloads: set[asyncio.Task[bool]] = set()
        self._stop = asyncio.Event()
        self._reload_lock = asyncio.Lock()

    async def start(self) -> None:
        """Check the libraries' private parts (``IncompatibleLibrary``), load and validate the config (``ConfigError`` if invalid), then start everything."""
        check_all(self.registry.private_parts)
        # Hashed before reading: an edit in between is seen as a change later, never missed.
        digest = file_digest(self.config_path)
        self.config = load_config(self.config_path, self.registry)
        logs.protect(secret_values(self.config))
        settings = self.config.settings
        if self.configure_logging:
            logs.configure(settings.logLevel, settings.logFormat)
        self._tracing = tracing.start(settings.tracing, self.registry.identity)  # before the targets open: they trace their calls
        # The development servers the product offers, set up from this config's settings; each starts only when a binding names it.
        self.engine.services = [offer(settings) for offer in self.registry.development_services]
        await self._serve_api(settings)
        async with self._reload_lock:  # a SIGHUP during start-up waits for it instead of applying alongside
            changes = await self.engine.apply(self.config, settings.drainTimeoutSeconds)
        self._seen_digest = digest
        self.status.applied(digest, changes["started"], changes, "start")
        if self.watch:
            self._watcher = ConfigWatcher(self.config_path, self.reload_if_changed)
            self._watcher.start()
        log.info("connector started", config=str(self.config_path), bindings=changes["started"])

    async def reload(self, trigger: str = "SIGHUP") -> bool:
        """Apply the config file again; an invalid one is refused and the old one keeps serving."""
        async with self._reload_lock:
            return await self._reload(trigger)

    async def reload_if_changed(self) -> bool | None:
        """The watcher's entry: reload only when the file's content differs from the last one tried (None: unchanged)."""
        async with self._reload_lock:
            if file_digest(self.config_path) == self._seen_digest:
                return None
            return await self._reload("file change")

    async def _reload(self, trigger: str) -> bool:
        if self.engine.closing or self.config is None:
            return False
        digest = self._seen_digest = file_digest(self.config_path)
        try:
            config = load_config(self.config_path, self.registry)
        except ConfigError as exc:
            self.status.refused(str(exc), trigger)
            log.error("config reload refused; the previous config keeps serving", path=str(self.config_path), trigger=trigger, problems=[str(p) for p in exc.problems])
            return False
        logs.protect(secret_values(config))
        previous, settings = self.config.settings, config.settings
        try:
            await self._serve_api(settings)
            changes = await self.engine.apply(config, settings.drainTimeoutSeconds)
        except Exception as exc:  # noqa: BLE001 - a reload must never take a serving connector down
            error = f"{type(exc).__name__}: {exc}"
            self.status.refused(error, trigger)
            log.error("config reload failed; the previous config keeps serving", path=str(self.config_path), trigger=trigger, error=error)
            return False
        self.config = config
        if self.configure_logging and (settings.logLevel, settings.logFormat) != (previous.logLevel, previous.logFormat):
            logs.configure(settings.logLevel, settings.logFormat)
        for model in self.registry.settings:  # the development services read theirs once, at start
            for name in model.model_fields:
                if getattr(settings, name) != getattr(previous, name):
                    log.warning(f"{name} changes take effect on restart", running=getattr(previous, name))
        if settings.tracing != previous.tracing:
            log.warning("tracing changes take effect on restart")
        self.status.applied(digest, [b.name for b in config.bindings], changes, trigger)
        log.info("config reloaded", trigger=trigger, **changes)
        return True

    async def stop(self) -> None:
        """Stop taking requests, let in-flight ones finish (``drainTimeoutSeconds``), release everything."""
        drain = self.config.settings.drainTimeoutSeconds if self.config else 0
        await self.engine.stop(drain)  # first: it also halts a reload in progress
        if self._watcher is not None:
            await self._watcher.stop()
            self._watcher = None
        await asyncio.gather(*self._signal_reloads, return_exceptions=True)
        if self._api is not None:
            await self._api.cleanup()
            self._api, self._api_address, self.api_port = None, None, None
        if self._tracing is not None:  # last: the drained requests' spans are exported
            await tracing.stop(self._tracing)
            self._tracing = None
        if self.config is not None:
            log.info("connector stopped")

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT, then drain; SIGHUP reloads the config. Returns the exit code.

        The handlers go in before anything starts, so a signal during start-up
        still means a clean stop, not an abrupt death.
        """
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_stop_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, self._on_reload_signal)
        try:
            await self.start()
            await self._stop.wait()
        finally:
            # The handlers stay during the drain: the default action of a second
            # signal would kill the process and drop the requests still in flight.
            await self.stop()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
        return 0

    def _requests_enabled(self) -> bool:
        return bool(self.config and self.config.settings.apiRequests)

    def _on_stop_signal(self, sig: signal.Signals) -> None:
        drain = self.config.settings.drainTimeoutSeconds if self.config else 0
        if self._stop.is_set():
            # A second signal while draining is an operator insisting (Ctrl-C twice): leave now.
            log.warning("second stop signal while draining; exiting without waiting for in-flight requests", signal=sig.name)
            os._exit(128 + sig.value)
        # The stop first: nothing that follows (a log line to a dead pipe) may keep it from happening.
        self.request_stop()
        log.info("shutdown requested; draining in-flight requests", signal=sig.name, drain_timeout_seconds=drain)

    def _on_reload_signal(self) -> None:
        if self._stop.is_set():
            log.info("reload ignored: shutting down")
            return
        task = asyncio.create_task(self.reload("SIGHUP"), name="reload-sighup")
        self._signal_reloads.add(task)
        task.add_done_callback(self._signal_reloads.discard)

    async def _serve_api(self, settings: Config) -> None:
        """Listen where ``settings`` say; on a reload, move only if the address changed (new one first)."""
        wanted = (settings.apiHost, settings.apiPort) if settings.apiPort else None
        if wanted == self._api_address:
            return
        runner = await start_api(self.engine, settings.apiHost, settings.apiPort, self.status.as_dict, self._requests_enabled) if wanted else None
        if self._api is not None:
            await self._api.cleanup()
        self._api, self._api_address = runner, wanted
        self.api_port = _bound_port(runner) if runner is not None else None
        if runner is not None:
            log.info("http api listening", host=settings.apiHost, port=self.api_port)


def secret_values(config: ResolvedConfig) -> list[str]:
    """The values ``/bindings`` masks, in clear: what the logs must never print."""
    values: list[str] = []
    for binding in config.bindings:
        for properties in (binding.source.properties, binding.target.properties, binding.middleware):
            values.extend(_masked_values(properties))
    return values


def _masked_values(properties: BaseModel) -> list[str]:
    values = []
    for name, shown in redact(properties).items():
        value = getattr(properties, name, None)
        if shown == MASK and isinstance(value, SecretStr):
            value = value.get_secret_value()
        if shown == MASK and isinstance(value, str):
            values.append(value)
    return values


def _bound_port(runner: web.AppRunner) -> int | None:
    """The port the API listens on (the one the system chose, for ``apiPort: 0`` in tests)."""
    addresses = runner.addresses
    return int(addresses[0][1]) if addresses else None
