"""Requests: the connector against kubemq-targets itself and against the few lines anyone could write instead, in the same run.

The development broker, SeaweedFS, the connector (default settings: request
logging, metrics, retry), ``minimal_responder.py`` and kubemq-targets' own
``aws.s3`` target behind its ``kubemq.query`` source (built from its Go
sources in ``../shared/anchors/kubemq-targets-s3`` by its ``build.sh``; left
out, saying so, where they are absent) each run in their own process, with
``floor_responder.py``: the SDK's subscription and reply with no S3 call, the
floor under any Python responder, and ``floor_http_responder.py``: the same
around one bare aiohttp exchange with the store (presigned, nothing parsed),
the floor under any Python responder that calls S3; this
process is the sender (the official SDK). Each round sends the same requests
to each responder in turn (the order rotating), for ``get_item`` and
``upload_item`` of 1 KiB at concurrency 1 and 32 and a 1 MiB ``get_item`` at
8, and prints per case each responder's throughput, median latency and the
CPU seconds its process spent per 1,000 requests, then the connector's ratios
to the others.

    .venv/bin/python benchmarks/bench_requests.py [--requests 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

from kubemq import AsyncCQClient, QueryMessage  # noqa: E402

logging.getLogger("kubemq").setLevel(logging.ERROR)  # one TLS-is-off warning per connection

from benchmarks.support import connector_config, cpu_seconds, free_port  # noqa: E402
from bindings.wire import Request, Response  # noqa: E402
from connector.s3.embedded import EmbeddedS3  # noqa: E402
from tests.fixtures.anchor import ANCHOR_SOURCES, build_anchor  # noqa: E402

BUCKET = "bench-requests"
KIB, MIB = 1024, 1024 * 1024
PAYLOADS = {KIB: os.urandom(KIB), MIB: os.urandom(MIB)}
OBJECTS = {KIB: "small", MIB: "large"}
# (method, object size, requests in flight)
CASES = [("get_item", KIB, 1), ("get_item", KIB, 32), ("upload_item", KIB, 1), ("upload_item", KIB, 32), ("get_item", MIB, 8)]


@dataclass
class Responder:
    name: str
    channel: str
    process: subprocess.Popen[bytes]
    throughput: dict[str, list[float]] = field(default_factory=dict)
    latency: dict[str, list[float]] = field(default_factory=dict)
    cpu_per_1000: dict[str, list[float]] = field(default_factory=dict)


def request_for(method: str, size: int, n: int) -> bytes:
    if method == "get_item":
        return Request({"method": "get_item", "bucket_name": BUCKET, "item_name": OBJECTS[size]}).to_json()
    return Request({"method": "upload_item", "bucket_name": BUCKET, "item_name": f"up/{n % 64}"}, PAYLOADS[size]).to_json()


def case_name(method: str, size: int, concurrency: int) -> str:
    return f"{method} {'1 KiB' if size == KIB else '1 MiB'} c={concurrency}"


async def run_case(client: AsyncCQClient, responder: Responder, method: str, size: int, concurrency: int, count: int) -> None:
    """Send ``count`` requests with ``concurrency`` in flight; record throughput, median latency and CPU."""
    latencies: list[float] = []
    next_index = 0

    async def lane() -> None:
        nonlocal next_index
        while next_index < count:
            n, next_index = next_index, next_index + 1
            started = time.perf_counter()
            reply = await client.send_query(QueryMessage(channel=responder.channel, body=request_for(method, size, n), timeout_in_seconds=30))
            latencies.append(time.perf_counter() - started)
            response = Response.from_json(reply.body)
            if response.is_error:
                raise RuntimeError(f"{responder.name}: {response.error}")

    cpu_before = cpu_seconds(responder.process.pid)
    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    case = case_name(method, size, concurrency)
    responder.throughput.setdefault(case, []).append(count / elapsed)
    responder.latency.setdefault(case, []).append(statistics.median(latencies))
    responder.cpu_per_1000.setdefault(case, []).append((cpu_seconds(responder.process.pid) - cpu_before) * 1000 / count)


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError("responder did not come up")
        await asyncio.sleep(0.2)


def start_anchor(broker: str, s3: EmbeddedS3, quiet: dict[str, Any]) -> Responder | None:
    """kubemq-targets' aws.s3 target, built from its sources (with the connector's retry attempts); None where they are absent."""
    binary = build_anchor()
    if binary is None:
        print(f"kubemq-targets is left out: its sources are not at {ANCHOR_SOURCES}")
        return None
    command = [str(binary), "-address", broker, "-aws-key", s3.access_key, "-aws-secret-key", s3.secret_key]
    command += ["-channel", "bench.go", "-client-id", "bench-go", "-binding-prop", "retry_attempts=3"]
    return Responder("kubemq-targets", "bench.go", subprocess.Popen(command, env={**os.environ, "S3_ENDPOINT": s3.endpoint}, **quiet))


async def main(requests: int, rounds: int) -> None:
    broker_port = free_port()
    broker_address = f"127.0.0.1:{broker_port}"
    processes: list[subprocess.Popen[bytes]] = []
    quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": ROOT}
    async with EmbeddedS3() as s3:
        with tempfile.TemporaryDirectory() as directory:
            try:
                processes.append(subprocess.Popen([sys.executable, "-m", "connector", "broker", "--host", "127.0.0.1", "--port", str(broker_port)], **quiet))
                config = Path(directory) / "config.yaml"
                config.write_text(connector_config(broker_address, s3, "bench.connector", middleware='\n    properties:\n      retry_attempts: "3"'))
                connector = Responder("connector", "bench.connector", subprocess.Popen([sys.executable, "-m", "connector", "run", "-c", str(config)], **quiet))
                minimal = Responder(
                    "minimal",
                    "bench.minimal",
                    subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "minimal_responder.py"), broker_address, "bench.minimal", s3.endpoint, s3.access_key, s3.secret_key], **quiet),
                )
                await wait_until(lambda: _listening(broker_port), 30)
                sizes = ",".join(f"{name}={size}" for size, name in OBJECTS.items())
                floor = Responder("floor", "bench.floor", subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "floor_responder.py"), broker_address, "bench.floor", sizes], **quiet))
                floor_http = Responder(
                    "floor+HTTP",
                    "bench.floor-http",
                    subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "floor_http_responder.py"), broker_address, "bench.floor-http", s3.endpoint, s3.access_key, s3.secret_key], **quiet),
                )
                anchor = start_anchor(broker_address, s3, quiet)
                responders = [connector, minimal, floor, floor_http] + ([anchor] if anchor else [])
                processes += [responder.process for responder in responders]
                async with AsyncCQClient(address=broker_address, client_id="bench-sender") as client:
                    await wait_until(lambda: _create_bucket(client), 60)
                    for size, name in OBJECTS.items():
                        body = Request({"method": "upload_item", "bucket_name": BUCKET, "item_name": name}, PAYLOADS[size]).to_json()
                        await client.send_query(QueryMessage(channel=connector.channel, body=body, timeout_in_seconds=30))
                    for responder in responders:

                        async def answers(responder: Responder = responder) -> bool:
                            try:
                                await client.send_query(QueryMessage(channel=responder.channel, body=request_for("get_item", KIB, 0), timeout_in_seconds=2))
                                return True
                            except Exception:  # noqa: BLE001 - not subscribed yet
                                return False

                        await wait_until(answers, 60)
                    for responder in responders:  # warm-up: connections, caches
                        for method, size, concurrency in CASES:
                            await run_case(client, responder, method, size, concurrency, max(100, requests // 10))
                        responder.throughput.clear(), responder.latency.clear(), responder.cpu_per_1000.clear()
                    for round_number in range(rounds):
                        order = responders[round_number % len(responders) :] + responders[: round_number % len(responders)]
                        for method, size, concurrency in CASES:
                            count = requests if concurrency > 1 and size == KIB else max(200, requests // 5)
                            for responder in order:
                                await run_case(client, responder, method, size, concurrency, count)
                report(responders, rounds)
            finally:
                for process in processes:
                    process.terminate()
                for process in processes:
                    process.wait(30)


async def _listening(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True


async def _create_bucket(client: AsyncCQClient) -> bool:
    try:
        reply = await client.send_query(QueryMessage(channel="bench.connector", body=Request({"method": "create_bucket", "bucket_name": BUCKET}).to_json(), timeout_in_seconds=2))
    except Exception:  # noqa: BLE001 - not subscribed yet
        return False
    response = Response.from_json(reply.body)
    return not response.is_error or "BucketAlreadyOwnedByYou" in response.error


def report(responders: list[Responder], rounds: int) -> None:
    """Each responder's figures per case (medians of the rounds), then the connector's ratios to each other responder."""
    median = statistics.median
    print(f"medians of {rounds} rounds, the order rotating; CPU = seconds of the responder process per 1,000 requests")
    print("| case | " + " | ".join(f"{r.name} req/s, median ms, CPU" for r in responders) + " |")
    print("|---|" + "---|" * len(responders))
    for case in responders[0].throughput:
        cells = [f"{median(r.throughput[case]):.0f}, {median(r.latency[case]) * 1000:.2f}, {median(r.cpu_per_1000[case]):.2f}" for r in responders]
        print(f"| {case} | " + " | ".join(cells) + " |")
    connector, others = responders[0], responders[1:]
    print()
    print("| case | " + " | ".join(f"connector / {other.name}: throughput, median latency, CPU" for other in others) + " |")
    print("|---|" + "---|" * len(others))
    for case in connector.throughput:
        cells = []
        for other in others:
            throughput = median(connector.throughput[case]) / median(other.throughput[case])
            latency = median(connector.latency[case]) / median(other.latency[case])
            cpu = median(connector.cpu_per_1000[case]) / median(other.cpu_per_1000[case])
            cells.append(f"{throughput:.2f}x, {latency:.2f}x, {cpu:.2f}x")
        print(f"| {case} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per case at concurrency 32 (a fifth of it at 1)")
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.requests, arguments.rounds))
