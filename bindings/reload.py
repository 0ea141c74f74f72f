"""Hot reload: notice edits of the config file, including Kubernetes ConfigMap swaps.

A ConfigMap volume never edits the file in place: the kubelet writes a new
timestamped directory, points a ``..data_tmp`` symlink at it and renames that
over ``..data``, while ``config.yaml`` itself stays a symlink to
``..data/config.yaml``. Nothing happens to the file itself, so the watcher
watches its *directory*; after a quiet moment (the debounce, which also
covers editors that save by delete-and-rename) the runtime compares the
file's content hash with the last one it tried, and reloads only when it
differs. ``SIGHUP`` reloads without looking at the hash.

What an operator sees of it lives in ``ConfigStatus`` (``GET /config/status``)
and two gauges modelled on Prometheus' own ``*_config_last_reload_*``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
import watchfiles
from prometheus_client import CollectorRegistry, Gauge

log = structlog.get_logger("bindings.reload")

QUIET_MS = 200  # events closer together than this are one change
MAX_BATCH_MS = 2000  # but a change is acted on at most this long after it began
RETRY_SECONDS = 5.0


def file_digest(path: Path) -> str | None:
    """sha256 of the file's content (symlinks followed); None when it cannot be read."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ConfigStatus:
    """The config being served and how the last reload went: ``GET /config/status``."""

    path: str
    sha256: str | None = None
    loaded_at: datetime | None = None
    bindings: list[str] = field(default_factory=list)
    last_reload_at: datetime | None = None
    last_reload_trigger: str | None = None
    last_reload_result: str | None = None  # "applied" or "refused"
    last_reload_error: str | None = None
    last_reload_changes: dict[str, list[str]] = field(default_factory=dict)
    _gauges: tuple[Gauge, Gauge] | None = field(default=None, repr=False)

    def track(self, registry: CollectorRegistry, prefix: str) -> None:
        """Publish the reload outcome as gauges ``<prefix>_config_...`` in ``registry`` (one per process)."""
        self._gauges = (
            Gauge(f"{prefix}_config_last_reload_successful", "1 when the last config (re)load was applied, 0 when it was refused.", registry=registry),
            Gauge(f"{prefix}_config_last_reload_success_timestamp_seconds", "When the config being served was loaded.", registry=registry),
        )

    def applied(self, digest: str | None, bindings: list[str], changes: dict[str, list[str]], trigger: str) -> None:
        now = _now()
        self.sha256, self.loaded_at, self.bindings = digest, now, bindings
        self._record(now, trigger, "applied", None)
        self.last_reload_changes = changes
        if self._gauges is not None:
            self._gauges[0].set(1)
            self._gauges[1].set(now.timestamp())

    def refused(self, error: str, trigger: str) -> None:
        self._record(_now(), trigger, "refused", error)
        self.last_reload_changes = {}
        if self._gauges is not None:
            self._gauges[0].set(0)

    def _record(self, at: datetime, trigger: str, result: str, error: str | None) -> None:
        self.last_reload_at, self.last_reload_trigger, self.last_reload_result, self.last_reload_error = at, trigger, result, error

    def as_dict(self) -> dict[str, Any]:
        def stamp(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "path": self.path,
            "sha256": self.sha256,
            "loaded_at": stamp(self.loaded_at),
            "bindings": self.bindings,
            "last_reload": {
                "at": stamp(self.last_reload_at),
                "trigger": self.last_reload_trigger,
                "result": self.last_reload_result,
                "error": self.last_reload_error,
                "changes": self.last_reload_changes,
            },
        }


class ConfigWatcher:
    """Calls ``on_change`` after each burst of file events in the config's directory."""

    def __init__(self, path: Path, on_change: Callable[[], Awaitable[object]]) -> None:
        self.directory = path.absolute().parent
        self.on_change = on_change
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="config-watcher")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _watch(self) -> None:
        log.info("watching config for changes", directory=str(self.directory))
        # Whatever changed while the watch was being set up (or down) is caught by the first check.
        await self._check()
        while not self._stop.is_set():
            try:
                async for _ in watchfiles.awatch(self.directory, watch_filter=None, step=QUIET_MS, debounce=MAX_BATCH_MS, stop_event=self._stop, recursive=False):
                    await self._check()
            except Exception as exc:  # noqa: BLE001 - a broken watch must not take the connector down
                log.error("config watch failed; retrying (SIGHUP still reloads)", directory=str(self.directory), error=str(exc) or type(exc).__name__)
                try:
                    await asyncio.wait_for(self._stop.wait(), RETRY_SECONDS)
                except TimeoutError:
                    await self._check()

    async def _check(self) -> None:
        """Run the change handler; its failure is logged, never the end of the watch."""
        try:
            await self.on_change()
        except Exception as exc:  # noqa: BLE001 - the next change gets its own chance
            log.error("config change could not be handled", directory=str(self.directory), error=str(exc) or type(exc).__name__)
