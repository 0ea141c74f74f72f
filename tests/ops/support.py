"""Helpers for the operations tests: a connector in-process with its config watcher, one in a child process, a steady sender."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bindings.kubemq.client import query
from bindings.registry import Registry
from bindings.runtime import Runtime
from bindings.wire import Request, Response
from devbroker import EmbeddedBroker
from tests.fixtures.kubemq import RunningConnector
from tests.fixtures.waiting import eventually

REPO = Path(__file__).resolve().parents[2]


def write_config(path: Path, text: str, broker: EmbeddedBroker, api_port: int) -> None:
    """Write a config, ``{broker}`` and ``{api_port}`` substituted, atomically (as editors and kubelet do)."""
    body = textwrap.dedent(text).replace("{broker}", broker.address).replace("{api_port}", str(api_port))
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(body)
    temporary.replace(path)


@contextlib.asynccontextmanager
async def watched_connector(path: Path, registry: Registry, broker: EmbeddedBroker) -> AsyncIterator[RunningConnector]:
    """A connector watching ``path`` for edits, as ``kubemq-s3 run`` does; stopped on exit."""
    runtime = Runtime(path, registry, configure_logging=False, watch=True)
    await runtime.start()
    try:
        running = RunningConnector(runtime, path)
        await running.wait_ready()
        await wait_subscribed(runtime, broker)
        yield running
    finally:
        await runtime.stop()


async def wait_subscribed(runtime: Runtime, broker: EmbeddedBroker) -> None:
    """Until the broker knows every query binding's subscriptions (ready flips a moment before)."""
    for binding in runtime.engine.bindings.values():
        if binding.spec.source.kind == "kubemq.query":
            properties = binding.spec.source.properties
            await broker.wait_for_subscribers(properties.channel, properties.sources, kind="queries")


async def get_json(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, json.loads(await resp.text())


async def get_text(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.text()


@dataclass
class SteadySender:
    """Keeps ``concurrency`` requests in flight until stopped; every reply and failure is kept."""

    broker: EmbeddedBroker
    channel: str
    metadata: dict[str, str]
    concurrency: int = 4
    replies: list[Response] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _workers: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self._workers = [asyncio.create_task(self._work(n)) for n in range(self.concurrency)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._workers)

    async def _work(self, worker: int) -> None:
        sent = 0
        while not self._stop.is_set():
            sent += 1
            try:
                reply = await query(self.broker.address, self.channel, Request(metadata=self.metadata, data=f"{worker}-{sent}".encode()), timeout=10)
            except Exception as exc:  # noqa: BLE001 - a failed send is what the test counts
                self.failures.append(f"{type(exc).__name__}: {exc}")
                continue
            if reply.is_error:
                self.failures.append(reply.error)
            self.replies.append(reply)


class ConnectorProcess:
    """``python -m connector run -c CONFIG`` as a child process; its stderr (the logs) is collected line by line."""

    def __init__(self, config: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> None:
        self.config = config
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.lines: list[str] = []
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "connector", "run", "-c", str(self.config), *self.args, cwd=REPO, env=self.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for line in self.process.stdout:
            self.lines.append(line.decode(errors="replace").rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def events(self) -> list[dict[str, Any]]:
        """Every log line, parsed: the process must write nothing but JSON lines."""
        return [json.loads(line) for line in self.lines if line]

    def send_signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    async def wait_ready(self, api_url: str, timeout: float = 30.0) -> None:
        async def ready() -> bool:
            assert self.process is not None
            if self.process.returncode is not None:
                raise AssertionError(f"connector exited with {self.process.returncode}:\n{self.output}")
            with contextlib.suppress(aiohttp.ClientError):
                return (await get_text(f"{api_url}/ready"))[0] == 200
            return False

        await eventually(ready, timeout, interval=0.1)

    async def wait(self, timeout: float) -> int:
        assert self.process is not None and self._reader is not None
        code = await asyncio.wait_for(self.process.wait(), timeout)
        await self._reader
        return code

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        if self._reader is not None:
            await self._reader


@contextlib.asynccontextmanager
async def connector_process(config: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> AsyncIterator[ConnectorProcess]:
    """A started child connector, killed on exit if the test left it running."""
    child = ConnectorProcess(config, env, args)
    await child.start()
    try:
        yield child
    finally:
        await child.kill()


class PeakGrowth:
    """A process's peak resident memory above where it stood at the last reset (Linux: VmHWM, reset by writing 5 to clear_refs)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.reset()

    def reset(self) -> None:
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        self.baseline = self._status("VmRSS")

    def since_reset(self) -> int:
        return self._status("VmHWM") - self.baseline

    def _status(self, field: str) -> int:
        return status_field(Path(f"/proc/{self.pid}/status").read_text(), field)


def status_field(status: str, field: str) -> int:
    """A size in bytes from the text of /proc/PID/status (``VmHWM:   123456 kB``)."""
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0]) * 1024
    raise AssertionError(f"no {field} in {status!r}")
