"""Small requests: the connector against the few lines anyone could write instead, in the same run.

The development broker, SeaweedFS, the connector (default settings: request
logging, metrics, retry) and ``minimal_responder.py`` each run in their own
process; this process is the sender (the official SDK). Each round sends the
same requests to one responder, then the other (order alternating), for
``get_item`` and ``upload_item`` of 1 KiB at concurrency 1 and 32, and prints
per case the throughput ratio, the median-latency ratio, and the CPU seconds
each responder process spent per 1,000 requests.

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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

from kubemq import AsyncCQClient, QueryMessage  # noqa: E402

logging.getLogger("kubemq").setLevel(logging.ERROR)  # one TLS-is-off warning per connection

from benchmarks.support import connector_config, free_port  # noqa: E402
from bindings.wire import Request, Response  # noqa: E402
from connector.s3.embedded import EmbeddedS3  # noqa: E402

BUCKET = "bench-requests"
PAYLOAD = os.urandom(1024)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Responder:
    name: str
    channel: str
    process: subprocess.Popen[bytes]
    throughput: dict[str, list[float]] = field(default_factory=dict)
    latency: dict[str, list[float]] = field(default_factory=dict)
    cpu_per_1000: dict[str, list[float]] = field(default_factory=dict)


def request_for(method: str, n: int) -> bytes:
    if method == "get_item":
        return Request({"method": "get_item", "bucket_name": BUCKET, "item_name": "small"}).to_json()
    return Request({"method": "upload_item", "bucket_name": BUCKET, "item_name": f"up/{n % 64}"}, PAYLOAD).to_json()


async def run_case(client: AsyncCQClient, responder: Responder, method: str, concurrency: int, count: int) -> None:
    """Send ``count`` requests with ``concurrency`` in flight; record throughput, median latency and CPU."""
    latencies: list[float] = []
    next_index = 0

    async def lane() -> None:
        nonlocal next_index
        while next_index < count:
            n, next_index = next_index, next_index + 1
            started = time.perf_counter()
            reply = await client.send_query(QueryMessage(channel=responder.channel, body=request_for(method, n), timeout_in_seconds=30))
            latencies.append(time.perf_counter() - started)
            response = Response.from_json(reply.body)
            if response.is_error:
                raise RuntimeError(f"{responder.name}: {response.error}")

    cpu_before = cpu_seconds(responder.process.pid)
    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    case = f"{method} c={concurrency}"
    responder.throughput.setdefault(case, []).append(count / elapsed)
    responder.latency.setdefault(case, []).append(statistics.median(latencies))
    responder.cpu_per_1000.setdefault(case, []).append((cpu_seconds(responder.process.pid) - cpu_before) * 1000 / count)


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError("responder did not come up")
        await asyncio.sleep(0.2)


async def main(requests: int, rounds: int) -> None:
    broker_port = free_port()
    broker_address = f"127.0.0.1:{broker_port}"
    processes: list[subprocess.Popen[bytes]] = []
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": ROOT}
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
                processes += [connector.process, minimal.process]
                await wait_until(lambda: _listening(broker_port), 30)
                async with AsyncCQClient(address=broker_address, client_id="bench-sender") as client:
                    for responder in (connector, minimal):

                        async def answers(responder: Responder = responder) -> bool:
                            try:
                                await client.send_query(QueryMessage(channel=responder.channel, body=request_for("upload_item", 0), timeout_in_seconds=2))
                                return True
                            except Exception:  # noqa: BLE001 - not subscribed yet
                                return False

                        if responder is connector:
                            await wait_until(lambda: _create_bucket(client), 60)
                        await wait_until(answers, 60)
                    await client.send_query(
                        QueryMessage(channel=connector.channel, body=Request({"method": "upload_item", "bucket_name": BUCKET, "item_name": "small"}, PAYLOAD).to_json(), timeout_in_seconds=10)
                    )
                    cases = [(method, concurrency) for method in ("get_item", "upload_item") for concurrency in (1, 32)]
                    for responder in (connector, minimal):  # warm-up: connections, caches
                        for method, concurrency in cases:
                            await run_case(client, responder, method, concurrency, max(100, requests // 10))
                        responder.throughput.clear(), responder.latency.clear(), responder.cpu_per_1000.clear()
                    for round_number in range(rounds):
                        order = (connector, minimal) if round_number % 2 == 0 else (minimal, connector)
                        for method, concurrency in cases:
                            count = requests if concurrency > 1 else max(200, requests // 5)
                            for responder in order:
                                await run_case(client, responder, method, concurrency, count)
                report(connector, minimal, rounds)
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


def report(connector: Responder, minimal: Responder, rounds: int) -> None:
    print(f"medians of {rounds} alternating rounds; ratio = connector / minimal responder")
    print("| case | connector req/s | minimal req/s | throughput ratio | median latency ratio | CPU s per 1000 req (connector / minimal) |")
    print("|---|---|---|---|---|---|")
    for case in connector.throughput:
        ours, theirs = statistics.median(connector.throughput[case]), statistics.median(minimal.throughput[case])
        latency = statistics.median(connector.latency[case]) / statistics.median(minimal.latency[case])
        cpu = f"{statistics.median(connector.cpu_per_1000[case]):.2f} / {statistics.median(minimal.cpu_per_1000[case]):.2f}"
        print(f"| {case} | {ours:.0f} | {theirs:.0f} | {ours / theirs:.2f}x | {latency:.2f}x | {cpu} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per case at concurrency 32 (a fifth of it at 1)")
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.requests, arguments.rounds))
