"""Large objects through the whole path: SDK sender -> broker -> connector process -> SeaweedFS.

Measures ``upload_item`` and ``get_item`` of one object, each on its own: its
time, and the responder process's resident-memory high-water mark (``VmHWM``,
reset through ``clear_refs``) above its RSS just before. The responder runs as
its own process so its memory is not mixed with the sender's or the broker's,
and a fresh one serves each measured request (after a small warm-up round
trip): memory a large request freed stays resident for a while and would
otherwise count as the next one's idle. The object a ``get_item`` reads is
stored behind the responder's back. With ``--at-once N``, N uploads of the
object are also sent at the same time.

Each is measured for the connector (``python -m connector run``) and, in the
same rounds, for ``minimal_responder.py``, the few lines anyone could write
instead. The last rows are the floor under both: what gRPC alone holds to
receive the upload's message and to send the get's reply (``grpc_floor.py``).

``--multipart N`` also sends an N MiB file through the command line, as a user
would (``kubemq-s3 send --data-file FILE --part-size 16MiB``: a multipart upload
through the bus), and fetches it back with ``--output`` (in ranges).

    .venv/bin/python benchmarks/bench_large_objects.py [--sizes 64] [--rounds 3] [--at-once 3] [--multipart 300]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

import aioboto3  # noqa: E402

from benchmarks.support import connector_config, memory_kib, reset_high_water  # noqa: E402
from bindings.kubemq.client import query  # noqa: E402
from bindings.wire import Request, Response  # noqa: E402
from connector.s3.embedded import EmbeddedS3  # noqa: E402
from devbroker import EmbeddedBroker  # noqa: E402

MIB = 1024 * 1024
BUCKET = "bench"
PART_SIZE = "16MiB"
WARM_UP = os.urandom(MIB)
CONNECTOR, MINIMAL, GRPC = "connector", "minimal responder", "gRPC alone"
# An operation, who served it, its object's size in MiB, and each round's (seconds, peak RSS growth in MiB).
Row = tuple[str, str, int, list[tuple[float, float]]]
_channels = itertools.count(1)


class Responder:
    """A responder process of its own, on a channel of its own, warmed up by a small round trip."""

    def __init__(self, broker: EmbeddedBroker, pid: int, channel: str) -> None:
        self.broker, self.pid, self.channel = broker, pid, channel

    async def send(self, metadata: dict[str, str], data: bytes = b"") -> bytes | None:
        response = await query(self.broker.address, self.channel, Request(metadata=metadata, data=data), timeout=300)
        if response.is_error:
            raise RuntimeError(response.error)
        return response.data

    async def measure(self, work: Awaitable[Any]) -> tuple[float, float, Any]:
        """Seconds ``work`` took, the responder's peak RSS growth meanwhile in MiB, and what ``work`` returned."""
        reset_high_water(self.pid)
        base = memory_kib(self.pid, "VmRSS")
        started = time.perf_counter()
        result = await work
        seconds = time.perf_counter() - started
        return seconds, (memory_kib(self.pid, "VmHWM") - base) / 1024, result


@contextlib.asynccontextmanager
async def responder(who: str, broker: EmbeddedBroker, s3: EmbeddedS3, directory: Path) -> AsyncIterator[Responder]:
    """The connector or the minimal responder (``who``), started and warmed up."""
    channel = f"bench.{next(_channels)}.aws.s3"
    if who == CONNECTOR:
        path = directory / f"{channel}.yaml"
        path.write_text(connector_config(broker.address, s3, channel, top="\nlogLevel: warning", source='\n        max_concurrency: "4"'))
        command = ["-m", "connector", "run", "-c", str(path)]
    else:
        command = ["benchmarks/minimal_responder.py", broker.address, channel, s3.endpoint, s3.access_key, s3.secret_key]
    process = subprocess.Popen([sys.executable, *command], cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        await broker.wait_for_subscribers(channel, 1, kind="queries", timeout=60)
        running = Responder(broker, process.pid, channel)
        where = {"bucket_name": BUCKET, "item_name": "warm-up"}
        await running.send({"method": "upload_item", **where}, WARM_UP)
        assert await running.send({"method": "get_item", **where}) == WARM_UP
        yield running
    finally:
        process.terminate()
        process.wait(30)


def report(rows: list[Row]) -> None:
    print("| operation | object | responder | time s (median) | peak RSS growth (median) | ratio to object | rounds (s, MiB) |")
    print("|---|---|---|---|---|---|---|")
    for operation, who, size, rounds in rows:
        seconds = statistics.median(s for s, _ in rounds)
        peak = statistics.median(p for _, p in rounds)
        shown = ", ".join(f"{_seconds(s)}/{p:.0f}" for s, p in rounds)
        print(f"| {operation} | {size} MiB | {who} | {_seconds(seconds)} | {peak:.0f} MiB | {peak / size:.2f}x | {shown} |")


def _seconds(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


async def one_message(broker: EmbeddedBroker, s3: EmbeddedS3, store: Any, directory: Path, size: int, rounds: int, at_once: int) -> list[Row]:
    """``upload_item`` and ``get_item`` of ``size`` MiB (and ``at_once`` uploads together), in turn, each in a fresh responder."""
    payload = os.urandom(size * MIB)
    upload = {"method": "upload_item", "bucket_name": BUCKET, "item_name": f"up-{size}"}
    get = {"method": "get_item", "bucket_name": BUCKET, "item_name": f"down-{size}"}
    await store.put_object(Bucket=BUCKET, Key=get["item_name"], Body=payload)
    request_size, reply_size = len(Request(metadata=upload, data=payload).to_json()), len(Response.ok(payload).to_json())
    measured: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(rounds):
        for who in (CONNECTOR, MINIMAL):
            async with responder(who, broker, s3, directory) as running:
                seconds, peak, _ = await running.measure(running.send(upload, payload))
                measured.setdefault(("upload_item", who), []).append((seconds, peak))
            async with responder(who, broker, s3, directory) as running:
                seconds, peak, data = await running.measure(running.send(get))
                assert data == payload, "downloaded object differs"
                measured.setdefault(("get_item", who), []).append((seconds, peak))
            if at_once > 1:
                async with responder(who, broker, s3, directory) as running:
                    sends = (running.send({**upload, "item_name": f"at-once-{n}"}, payload) for n in range(at_once))
                    seconds, peak, _ = await running.measure(asyncio.gather(*sends))
                    measured.setdefault((f"{at_once} upload_item at once", who), []).append((seconds, peak))
        measured.setdefault(("upload_item", GRPC), []).append((math.nan, await grpc_floor("receive", request_size)))
        measured.setdefault(("get_item", GRPC), []).append((math.nan, await grpc_floor("send", reply_size)))
    operations = list(dict.fromkeys(operation for operation, _ in measured))
    order = sorted(measured, key=lambda key: (operations.index(key[0]), (CONNECTOR, MINIMAL, GRPC).index(key[1])))
    return [(operation, who, size, measured[operation, who]) for operation, who in order]


async def grpc_floor(direction: str, message_size: int) -> float:
    """``grpc_floor.py``'s peak growth in MiB for one message of ``message_size`` bytes."""
    process = await asyncio.create_subprocess_exec(sys.executable, "benchmarks/grpc_floor.py", direction, str(message_size), cwd=ROOT, stdout=subprocess.PIPE)
    out, _ = await process.communicate()
    if process.returncode:
        raise RuntimeError(f"grpc_floor.py {direction} failed")
    return float(out)


async def command_line(broker: EmbeddedBroker, s3: EmbeddedS3, directory: Path, size: int, rounds: int) -> list[Row]:
    """A ``size`` MiB file up through ``kubemq-s3 send --data-file`` (in parts) and back with ``--output`` (in ranges)."""
    file, copy = directory / "large.bin", directory / "large.copy"
    digest = hashlib.sha256()
    with file.open("wb") as out:
        for _ in range(size):
            chunk = os.urandom(MIB)
            digest.update(chunk)
            out.write(chunk)
    ups: list[tuple[float, float]] = []
    downs: list[tuple[float, float]] = []
    for _ in range(rounds):
        for command, results in ((["--data-file", str(file), "-m", "method=upload_item"], ups), (["--output", str(copy), "-m", "method=get_item"], downs)):
            async with responder(CONNECTOR, broker, s3, directory) as running:
                args = ["send", "--address", broker.address, "--channel", running.channel, "-m", f"bucket_name={BUCKET}", "-m", "item_name=cli.bin"]
                seconds, peak, _ = await running.measure(kubemq_s3(*args, *command, "--part-size", PART_SIZE, "--timeout", "300"))
                results.append((seconds, peak))
        assert hashlib.sha256(copy.read_bytes()).digest() == digest.digest(), "downloaded file differs"
    return [(f"send --data-file (parts of {PART_SIZE})", CONNECTOR, size, ups), (f"send --output (ranges of {PART_SIZE})", CONNECTOR, size, downs)]


async def kubemq_s3(*args: str) -> None:
    """The command line in a child process: this process's event loop keeps serving the broker meanwhile."""
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "connector", *args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, stderr = await process.communicate()
    if process.returncode:
        raise RuntimeError(f"kubemq-s3 {args[0]} failed: {stderr.decode()}")


async def main(sizes: list[int], rounds: int, at_once: int, multipart: int | None) -> None:
    async with EmbeddedS3() as s3, EmbeddedBroker(host="127.0.0.1", port=0) as broker:
        session = aioboto3.Session(aws_access_key_id=s3.access_key, aws_secret_access_key=s3.secret_key, region_name="us-east-1")
        async with session.client("s3", endpoint_url=s3.endpoint) as store:
            await store.create_bucket(Bucket=BUCKET)
            with tempfile.TemporaryDirectory() as directory:
                rows: list[Row] = []
                for size in sizes:
                    rows += await one_message(broker, s3, store, Path(directory), size, rounds, at_once)
                if multipart:
                    rows += await command_line(broker, s3, Path(directory), multipart, rounds)
    report(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64", help="object sizes in MiB, comma separated, or empty for none (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each operation; medians are reported (default: %(default)s)")
    parser.add_argument("--at-once", type=int, default=1, metavar="N", help="also send N uploads of each size at the same time (default: no)")
    parser.add_argument("--multipart", type=int, metavar="MIB", help="also send a file this large through kubemq-s3 send (default: no)")
    args = parser.parse_args()
    asyncio.run(main([int(s) for s in args.sizes.split(",") if s], args.rounds, args.at_once, args.multipart))
