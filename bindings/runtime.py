"""The process: config in, bindings and API running, clean shutdown on a signal.

``Runtime.start``/``stop`` are separate from ``run`` so tests (and embedders)
can run a whole connector inside their own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from bindings import logs
from bindings.api import start_api
from bindings.config import ResolvedConfig, load_config
from bindings.engine import EMBEDDED, Engine
from bindings.errors import ConfigError
from bindings.metrics import Metrics
from bindings.registry import Registry

log = structlog.get_logger("bindings.runtime")


class Runtime:
    """One connector process: engine, HTTP API and, for development, the embedded broker."""

    def __init__(self, config_path: str | Path, registry: Registry, *, configure_logging: bool = True) -> None:
        self.config_path = Path(config_path)
        self.registry = registry
        self.configure_logging = configure_logging
        self.metrics = Metrics()
        self.engine = Engine(registry, self.metrics)
        self.config: ResolvedConfig | None = None
        self.last_reload_error: str | None = None
        self.api_port: int | None = None
        self._api: web.AppRunner | None = None
        self._broker: Any = None
        self._stop = asyncio.Event()
        self._reload_lock = asyncio.Lock()

    async def start(self) -> None:
        """Load and validate the config (``ConfigError`` if invalid), then start everything."""
        self.config = load_config(self.config_path, self.registry)
        settings = self.config.settings
        if self.configure_logging:
            logs.configure(settings.logLevel, settings.logFormat)
        await self._ensure_embedded_broker(self.config)
        if settings.apiPort:
            self._api = await start_api(self.engine, settings.apiHost, settings.apiPort)
            self.api_port = _bound_port(self._api)
            log.info("http api listening", host=settings.apiHost, port=self.api_port)
        changes = await self.engine.apply(self.config, settings.drainTimeoutSeconds)
        log.info("connector started", config=str(self.config_path), bindings=changes["started"])

    async def reload(self) -> bool:
        """Apply the config file again; an invalid one is refused and the old one keeps serving."""
        async with self._reload_lock:
            try:
                config = load_config(self.config_path, self.registry)
            except ConfigError as exc:
                self.last_reload_error = str(exc)
                log.error("config reload refused; the previous config keeps serving", problems=[str(p) for p in exc.problems])
                return False
            await self._ensure_embedded_broker(config)
            changes = await self.engine.apply(config, config.settings.drainTimeoutSeconds)
            self.config = config
            self.last_reload_error = None
            log.info("config reloaded", **changes)
            return True

    async def stop(self) -> None:
        """Stop taking requests, let in-flight ones finish, release everything."""
        drain = self.config.settings.drainTimeoutSeconds if self.config else 0
        await self.engine.stop(drain)
        if self._api is not None:
            await self._api.cleanup()
            self._api = None
        if self._broker is not None:
            await self._broker.stop()
            self._broker = None
        log.info("connector stopped")

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT; SIGHUP reloads the config. Returns the exit code."""
        await self.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        try:
            await self._stop.wait()
            log.info("shutdown requested; draining in-flight requests")
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
            await self.stop()
        return 0

    async def _ensure_embedded_broker(self, config: ResolvedConfig) -> None:
        """Start the development broker once, if some binding asks for ``address: embedded``."""
        wanted = any(getattr(b.source.properties, "address", None) == EMBEDDED for b in config.bindings)
        if not wanted or self._broker is not None:
            return
        from bindings.broker import EmbeddedBroker  # only development configs need it

        self._broker = EmbeddedBroker(host="127.0.0.1", port=config.settings.embeddedBrokerPort)
        await self._broker.start()
        self.engine.embedded_address = self._broker.address
        log.warning("embedded development broker started; use a real KubeMQ in production", address=self._broker.address)


def _bound_port(runner: web.AppRunner) -> int | None:
    for site in runner.sites:
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            return int(server.sockets[0].getsockname()[1])
    return None
