"""The ``aws.s3`` source under load: objects waiting in a bucket, each delivered to a KubeMQ queue, then deleted.

What a user of the source wants to know: how many objects per second it
drains from a bucket, and how much memory the connector takes on top of its
idle footprint while doing so. Both are measured here for many 1 KiB objects
and for fewer 1 MiB ones, on the path a user runs: SeaweedFS and the
development broker (in this process), the connector as a process of its own
(``python -m connector run``, one ``aws.s3`` source binding to a
``kubemq.queue`` target), and a reader of the queue (the official SDK, here).

Each case gets a fresh bucket and a fresh connector. The objects must all be
in place before the clock starts, and the connector's idle memory must be
read in the very process that then does the work; so this benchmark first
takes the binding's lease in the bucket (``state.Lease``, as a second replica
would) and uploads the objects. The connector then starts as a standby,
ready and idle; its RSS is read (idle), its peak mark reset (``clear_refs``),
and the lease released: the clock starts. The connector takes the lease at
its next scan (within ``scan_interval``, shown as "takeover") and sends. The
clock stops once the reader has received every object's message and the
bucket holds nothing but the source's own state.

Per case: objects/s and MiB/s over that time (takeover included, as a user
would see it; objects/s also from the takeover on), the connector's CPU
seconds per 1,000 objects (``utime`` + ``stime``), its peak RSS growth over
idle (``VmHWM`` minus idle ``VmRSS``), and the messages that came twice while
the reader waited for the last one: medians of ``--rounds`` rounds, the
cases alternating. SeaweedFS, the broker and the reader share the machine
with the connector.

    .venv/bin/python benchmarks/bench_bucket_source.py [--small 2000] [--large 200] [--concurrency 8] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

import aioboto3  # noqa: E402
import structlog  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from kubemq import AsyncQueuesClient  # noqa: E402

logging.getLogger("kubemq").setLevel(logging.ERROR)  # one TLS-is-off warning per connection
structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # SeaweedFS's and the broker's lines: stdout is for the figures

from benchmarks.support import cpu_seconds, free_port, memory_kib, reset_high_water  # noqa: E402
from bindings.limits import SERVER_MESSAGE_LIMIT  # noqa: E402
from connector.s3.embedded import EmbeddedS3  # noqa: E402
from connector.s3_source.state import Lease  # noqa: E402
from devbroker import EmbeddedBroker  # noqa: E402
from tests.fixtures.configs import config  # noqa: E402
from tests.ops.support import connector_process, write_config  # noqa: E402
from tests.s3_source.support import STATE_PREFIX, carried, keys_in, put_objects, source_binding  # noqa: E402

KIB, MIB = 1024, 1024 * 1024
BINDING, CHANNEL = "bench", "bench.bucket-source"
# The source's lease key (source.py: ``<state_prefix><binding>/lease``); held here for as long as the uploads and the idle reading take.
LEASE_KEY, LEASE_SECONDS = f"{STATE_PREFIX}{BINDING}/lease", 3600
SETTLE_SECONDS = 2.0  # after /ready, before idle RSS is read: start-up allocations done
POLL_BYTES = 32 * MIB  # at most about this much message data per receive poll: one gRPC reply, under its size limit
TIMEOUT_SECONDS = 600.0
ITEM_NAME = re.compile(rb'"item_name":"([^"]+)"')  # metadata comes first in the body: no need to parse a MiB of JSON


@dataclass
class Result:
    """One case's figures."""

    case: str
    objects: int
    object_bytes: int
    seconds: float
    takeover_seconds: float
    objects_per_second: float
    objects_per_second_after_takeover: float
    mib_per_second: float
    cpu_seconds_per_1000: float
    idle_rss_mib: float
    peak_rss_growth_mib: float
    duplicates: int


def item_name(body: bytes) -> str:
    found = ITEM_NAME.search(body, 0, 1024)
    if found is None:
        raise RuntimeError(f"no item_name in a message: {body[:200]!r}")
    return found.group(1).decode()


async def receive_all(broker: EmbeddedBroker, keys: set[str], size: int) -> tuple[int, bytes]:
    """Receive (and ack) until every key's message came; how many messages came (more than keys: some twice) and the first one's body."""
    missing, received, first = set(keys), 0, b""
    per_poll = max(1, min(1000, POLL_BYTES // (size * 4 // 3 + 256)))  # base64 makes the data a third bigger
    async with AsyncQueuesClient(address=broker.address, client_id="bench-reader", max_receive_size=SERVER_MESSAGE_LIMIT) as client, asyncio.timeout(TIMEOUT_SECONDS):
        while missing:
            # A poll returns once it holds max_messages or after a second: asking for just what is missing ends it on the last one.
            polled = await client.receive_queue_messages(CHANNEL, max_messages=min(per_poll, len(missing)), wait_timeout_seconds=1, auto_ack=True)
            if polled.is_error:
                raise RuntimeError(polled.error)
            for message in polled.messages:
                received += 1
                first = first or message.body
                missing.discard(item_name(message.body))
    return received, first


async def taken_over(store: Any, bucket: str, released: Lease) -> float:
    """When (``perf_counter``) the connector had written the lease this benchmark released: it scans from then on."""
    while True:
        try:
            found = await store.get_object(Bucket=bucket, Key=LEASE_KEY)
            async with found["Body"] as body:
                if json.loads(await body.read()).get("owner") != released.owner:
                    return time.perf_counter()
        except ClientError:
            pass  # released, not taken yet
        await asyncio.sleep(0.02)


async def bucket_drained(store: Any, bucket: str) -> None:
    """Until only the source's own state is left in ``bucket``."""
    async with asyncio.timeout(TIMEOUT_SECONDS):
        while await keys_in(store, bucket):
            await asyncio.sleep(0.05)


async def run_case(name: str, count: int, size: int, concurrency: int, broker: EmbeddedBroker, s3: EmbeddedS3, store: Any, directory: Path) -> Result:
    """``count`` objects of ``size`` bytes in a fresh bucket, drained by a fresh connector; see the module's docstring."""
    bucket = f"bench-source-{uuid.uuid4().hex[:12]}"
    await store.create_bucket(Bucket=bucket)
    held = Lease(store, bucket, LEASE_KEY, LEASE_SECONDS)
    if not await held.refresh():
        raise RuntimeError("could not take the lease of a fresh bucket")
    payload = os.urandom(size)
    objects = {f"in/{n:06d}.bin": payload for n in range(count)}
    await put_objects(store, bucket, objects)

    api_port = free_port()
    path = directory / f"{name.replace(' ', '-')}.yaml"
    write_config(path, config(source_binding(BINDING, s3, bucket, "kubemq.queue", CHANNEL, {"concurrency": concurrency, "scan_interval": 1})), broker, api_port)
    async with connector_process(path) as child:
        assert child.process is not None
        pid = child.process.pid
        await child.wait_ready(f"http://127.0.0.1:{api_port}", timeout=60)
        await asyncio.sleep(SETTLE_SECONDS)
        idle_kib = memory_kib(pid, "VmRSS")
        reset_high_water(pid)
        cpu_before = cpu_seconds(pid)

        reader = asyncio.create_task(receive_all(broker, set(objects), size))
        await asyncio.sleep(0.1)  # the reader's first poll is waiting
        started = time.perf_counter()
        await held.release()
        takeover = asyncio.create_task(taken_over(store, bucket, held))
        received, first = await reader
        await bucket_drained(store, bucket)
        seconds = time.perf_counter() - started

        peak_kib = memory_kib(pid, "VmHWM")
        cpu = cpu_seconds(pid) - cpu_before
        took_over = await takeover
    metadata, data = carried(first)
    if metadata["item_name"] not in objects or data != payload:
        raise RuntimeError(f"a message does not carry its object: {metadata}")
    return Result(
        case=name,
        objects=count,
        object_bytes=size,
        seconds=round(seconds, 3),
        takeover_seconds=round(took_over - started, 3),
        objects_per_second=round(count / seconds, 1),
        objects_per_second_after_takeover=round(count / (started + seconds - took_over), 1),
        mib_per_second=round(count * size / MIB / seconds, 2),
        cpu_seconds_per_1000=round(cpu * 1000 / count, 3),
        idle_rss_mib=round(idle_kib / 1024, 1),
        peak_rss_growth_mib=round((peak_kib - idle_kib) / 1024, 1),
        duplicates=received - count,
    )


def median_of(rounds: list[Result]) -> Result:
    """Each figure's median over the rounds; duplicates summed (one is one too many)."""
    medians = {f.name: statistics.median(getattr(r, f.name) for r in rounds) for f in fields(Result) if f.type == "float"}
    return replace(rounds[0], **medians, duplicates=sum(r.duplicates for r in rounds))


def report(results: dict[str, list[Result]], concurrency: int) -> None:
    rounds = len(next(iter(results.values()), []))
    print(f"aws.s3 source -> kubemq.queue, concurrency {concurrency}, scan_interval 1 s, {os.cpu_count()} CPUs; medians of {rounds} rounds; CPU and RSS are the connector process's")
    print("| case | time s | takeover s | objects/s | objects/s after takeover | MiB/s | CPU s / 1,000 objects | idle RSS MiB | peak RSS growth MiB | duplicates | objects/s per round |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for each in results.values():
        r = median_of(each)
        per_round = ", ".join(f"{one.objects_per_second:.0f}" for one in each)
        print(
            f"| {r.case} | {r.seconds:.2f} | {r.takeover_seconds:.2f} | {r.objects_per_second:.0f} | {r.objects_per_second_after_takeover:.0f} | {r.mib_per_second:.2f} "
            f"| {r.cpu_seconds_per_1000:.2f} | {r.idle_rss_mib:.0f} | {r.peak_rss_growth_mib:.0f} | {r.duplicates} | {per_round} |"
        )


async def main(small: int, large: int, concurrency: int, rounds: int, as_json: bool) -> None:
    cases = [(f"{count} x {unit}", count, size) for count, size, unit in ((small, KIB, "1 KiB"), (large, MIB, "1 MiB")) if count > 0]
    results: dict[str, list[Result]] = {name: [] for name, _, _ in cases}
    async with EmbeddedS3() as s3, EmbeddedBroker(host="127.0.0.1", port=0) as broker:
        session = aioboto3.Session(aws_access_key_id=s3.access_key, aws_secret_access_key=s3.secret_key, region_name="us-east-1")
        async with session.client("s3", endpoint_url=s3.endpoint, config=Config(max_pool_connections=64)) as store:
            with tempfile.TemporaryDirectory() as directory:
                for _ in range(rounds):  # the cases alternate, so that a slow spell of the machine is spread over both
                    for name, count, size in cases:
                        results[name].append(await run_case(name, count, size, concurrency, broker, s3, store, Path(directory)))
    if as_json:
        summary = [{**asdict(median_of(each)), "rounds": [asdict(r) for r in each]} for each in results.values()]
        print(json.dumps({"concurrency": concurrency, "scan_interval": 1, "cpus": os.cpu_count(), "rounds": rounds, "cases": summary}, indent=2))
    else:
        report(results, concurrency)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2000, metavar="N", help="1 KiB objects; 0 skips the case (default: %(default)s)")
    parser.add_argument("--large", type=int, default=200, metavar="M", help="1 MiB objects; 0 skips the case (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=8, help="the source's concurrency: objects sent at once (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each case, each with a fresh connector; medians are reported (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON (medians, and each round) instead of a table")
    args = parser.parse_args()
    asyncio.run(main(args.small, args.large, args.concurrency, args.rounds, args.json))
