"""A 75 MiB object (the broker's 100 MiB body limit after base64) up and down through the target, with bounded memory.

The measurement runs in a fresh interpreter so its RSS high-water mark
(``ru_maxrss``) belongs to this transfer alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

MIB = 1024 * 1024
SIZE = 75 * MIB

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, resource, sys, time
    from bindings.context import RequestContext, TargetContext
    from bindings.wire import Request
    from connector.s3 import S3Properties, S3Target

    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    async def main(endpoint, key, secret, bucket, size):
        target = S3Target()
        await target.init(S3Properties(endpoint=endpoint, aws_key=key, aws_secret_key=secret), TargetContext(binding="t", max_concurrency=8))
        context = RequestContext(binding="t", request_id="big")
        await target.handle(target.resolve(Request({"method": "list_buckets"})), context)  # load the SDK's lazy parts first
        before_payload = peak()
        payload = bytes(range(256)) * (size // 256)
        with_payload = peak()
        started = time.monotonic()
        up = await target.handle(target.resolve(Request({"method": "upload_item", "bucket_name": bucket, "item_name": "big.bin"}, payload)), context)
        upload_seconds = time.monotonic() - started
        after_upload = peak()
        started = time.monotonic()
        down = await target.handle(target.resolve(Request({"method": "get_item", "bucket_name": bucket, "item_name": "big.bin"})), context)
        download_seconds = time.monotonic() - started
        after_download = peak()
        assert down.data == payload, "content differs"
        wire = down.to_json()
        after_wire = peak()
        await target.close()
        print(json.dumps({
            "before_payload": before_payload, "with_payload": with_payload, "after_upload": after_upload,
            "after_download": after_download, "after_wire": after_wire, "wire_bytes": len(wire),
            "upload_id": json.loads(up.data)["UploadID"], "upload_seconds": upload_seconds, "download_seconds": download_seconds,
        }))

    asyncio.run(main(*sys.argv[1:5], int(sys.argv[5])))
    """
)


@pytest.mark.slow
async def test_a_75_mib_object_round_trips_within_a_small_multiple_of_its_size(seaweed: Any, bucket: str) -> None:
    command = [sys.executable, "-c", SCRIPT, seaweed.endpoint, seaweed.access_key, seaweed.secret_key, bucket, str(SIZE)]
    done = subprocess.run(command, capture_output=True, cwd=Path(__file__).parents[2], timeout=170, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    figures = json.loads(done.stdout.decode().strip().splitlines()[-1])
    print({name: (f"{value / MIB:.0f} MiB" if isinstance(value, int) else value) for name, value in figures.items()})
    assert figures["upload_id"] != ""  # multipart above the 16 MiB threshold
    # Upload: parts are slices of the payload, so the payload is not copied.
    assert figures["after_upload"] - figures["with_payload"] <= SIZE // 2
    # Download: one buffer of the object's size, not chunks plus their join.
    assert figures["after_download"] - figures["with_payload"] <= 1.5 * SIZE
    # The whole round trip, from before the payload existed to the reply's bytes: payload + download buffer + small overhead.
    assert figures["after_download"] - figures["before_payload"] <= 2.5 * SIZE
