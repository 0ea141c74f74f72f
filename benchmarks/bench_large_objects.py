"""Large objects through the whole path: SDK sender -> broker -> connector process -> SeaweedFS.

Measures, per object size, the time of ``upload_item`` and ``get_item`` and the
connector process's resident-memory high-water mark (``VmHWM``) above its idle
size. The connector runs as its own process (``python -m connector run``) so
its memory is not mixed with the sender's or the broker's.

    .venv/bin/python benchmarks/bench_large_objects.py [--sizes 10,50,74] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

from devbroker import EmbeddedBroker  # noqa: E402
from bindings.client import query  # noqa: E402
from bindings.wire import Request  # noqa: E402
from connector.s3.embedded import EmbeddedS3  # noqa: E402

MIB = 1024 * 1024
CHANNEL = "bench.aws.s3"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found for pid {pid}")


def reset_high_water(pid: int) -> None:
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def config(broker: str, s3: EmbeddedS3, api_port: int) -> str:
    return f"""
apiPort: {api_port}
apiHost: 127.0.0.1
logLevel: warning
bindings:
  - name: bench
    source:
      kind: kubemq.query
      properties:
        address: "{broker}"
        channel: "{CHANNEL}"
        max_concurrency: "4"
    target:
      kind: aws.s3
      properties:
        endpoint: "{s3.endpoint}"
        aws_key: "{s3.access_key}"
        aws_secret_key: "{s3.secret_key}"
        region: "us-east-1"
"""


async def send(broker: EmbeddedBroker, metadata: dict[str, str], data: bytes = b"") -> tuple[float, bytes | None]:
    started = time.perf_counter()
    response = await query(broker.address, CHANNEL, Request(metadata=metadata, data=data), timeout=300)
    if response.is_error:
        raise RuntimeError(response.error)
    return time.perf_counter() - started, response.data


async def wait_subscribed(broker: EmbeddedBroker) -> None:
    await broker.wait_for_subscribers(CHANNEL, 1, kind="queries", timeout=60)


async def main(sizes: list[int], rounds: int) -> None:
    async with EmbeddedS3() as s3, EmbeddedBroker(host="127.0.0.1", port=0) as broker:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "config.yaml"
            path.write_text(config(broker.address, s3, free_port()))
            process = subprocess.Popen([sys.executable, "-m", "connector", "run", "-c", str(path)], cwd=ROOT, stdout=subprocess.DEVNULL)
            try:
                await wait_subscribed(broker)
                await send(broker, {"method": "create_bucket", "bucket_name": "bench"})
                idle = memory_kib(process.pid, "VmRSS")
                print(f"connector idle RSS: {idle / 1024:.0f} MiB")
                print("| object | upload s | get s | connector peak RSS above idle (upload / get) | ratio to object (upload / get) |")
                print("|---|---|---|---|---|")
                for size in sizes:
                    payload = os.urandom(size * MIB)
                    for _ in range(rounds):
                        reset_high_water(process.pid)
                        base = memory_kib(process.pid, "VmRSS")
                        upload_s, _ = await send(broker, {"method": "upload_item", "bucket_name": "bench", "item_name": f"obj-{size}"}, payload)
                        upload_peak = memory_kib(process.pid, "VmHWM") - base
                        reset_high_water(process.pid)
                        base = memory_kib(process.pid, "VmRSS")
                        get_s, data = await send(broker, {"method": "get_item", "bucket_name": "bench", "item_name": f"obj-{size}"})
                        get_peak = memory_kib(process.pid, "VmHWM") - base
                        assert data == payload, "downloaded object differs"
                        print(
                            f"| {size} MiB | {upload_s:.2f} | {get_s:.2f} | {upload_peak / 1024:.0f} / {get_peak / 1024:.0f} MiB "
                            f"| {upload_peak / 1024 / size:.1f}x / {get_peak / 1024 / size:.1f}x |"
                        )
                await send(broker, {"method": "delete_all_items_from_bucket", "bucket_name": "bench"})
                await send(broker, {"method": "delete_bucket", "bucket_name": "bench"})
            finally:
                process.terminate()
                process.wait(30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,50,74", help="object sizes in MiB, comma separated")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main([int(s) for s in args.sizes.split(",")], args.rounds))
