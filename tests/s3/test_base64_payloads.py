"""upload_item of data still in the message as base64: decoded a part at a time, never whole next to its encoding."""

from __future__ import annotations

import base64
import hashlib
import os
import tracemalloc
from typing import Any

import pytest

from bindings.errors import TargetError
from bindings.wire import Request, parse_request
from connector.s3.transfer import PayloadReader
from tests.fixtures.s3_targets import MakeTarget
from tests.s3.support import body, handle

MIB = 1024 * 1024


def received(data: bytes, **metadata: str) -> Request:
    """The request as the engine parses it from a message body (a large one keeps its data as base64)."""
    return parse_request(Request(metadata={"method": "upload_item", **metadata}, data=data).to_json())


def digest(algorithm: Any, data: bytes) -> str:
    return base64.b64encode(algorithm(data).digest()).decode()


async def stored(s3_client: Any, bucket: str, key: str) -> bytes:
    return await (await s3_client.get_object(Bucket=bucket, Key=key))["Body"].read()  # type: ignore[no-any-return]


@pytest.mark.parametrize("data", [bytes(range(256)) * 40 + b"xy", b"", b"a"])
@pytest.mark.parametrize(("start", "size"), [(0, None), (7, 4000), (3000, 9999), (20000, 5)])
def test_a_payload_reader_reads_its_slice_in_any_steps_and_again_after_a_seek(data: bytes, start: int, size: int | None) -> None:
    expected = data[start:] if size is None else data[start : start + size]
    for request in (Request(data=data), Request.with_base64_data({}, memoryview(base64.b64encode(data)))):
        reader = PayloadReader(request, start, size)
        assert len(reader) == len(expected)
        steps = []
        while step := reader.read(1000):
            steps.append(step)
        assert b"".join(steps) == expected
        reader.seek(-5, os.SEEK_END)
        assert reader.read() == expected[-5:]
        reader.seek(0)
        assert reader.read(3) == expected[:3]


async def test_parts_decoded_from_base64_store_the_object_and_match_its_digest(make_target: MakeTarget, s3_client: Any, bucket: str) -> None:
    target = await make_target(multipart_threshold_mib="5", multipart_part_size_mib="5", multipart_concurrency="2")
    payload = os.urandom(12 * MIB + 1)  # 5 MiB parts start inside 3-byte base64 groups (5 MiB is not a multiple of 3)
    request = received(payload, bucket_name=bucket, item_name="big.bin", checksum_sha256=digest(hashlib.sha256, payload), content_md5=digest(hashlib.md5, payload))
    output = body(await handle(target, request))
    assert output["ETag"].endswith('-3"') and await stored(s3_client, bucket, "big.bin") == payload


async def test_a_single_put_from_base64_is_checked_and_stored(target: Any, s3_client: Any, bucket: str) -> None:
    payload = os.urandom(MIB + 2)
    request = received(payload, bucket_name=bucket, item_name="one.bin", content_md5=digest(hashlib.md5, payload))
    assert "-" not in body(await handle(target, request))["ETag"] and await stored(s3_client, bucket, "one.bin") == payload


async def test_a_wrong_digest_of_base64_data_is_refused_and_nothing_is_stored(make_target: MakeTarget, s3_client: Any, bucket: str) -> None:
    target = await make_target(multipart_threshold_mib="5", multipart_part_size_mib="5")
    payload = os.urandom(6 * MIB)
    request = received(payload, bucket_name=bucket, item_name="bad.bin", checksum_sha256=digest(hashlib.sha256, payload[:-1] + b"x"))
    with pytest.raises(TargetError, match=f"BadDigest: the checksum_sha256 given .* of the {6 * MIB} bytes received"):
        await handle(target, request)
    assert (await s3_client.list_objects_v2(Bucket=bucket)).get("KeyCount") == 0


async def test_a_multipart_upload_holds_the_parts_in_flight_not_the_object(make_target: MakeTarget, bucket: str) -> None:
    """Python's allocations while a 24 MiB object goes up in 5 MiB parts, two at a time: a few reads, not the parts nor the object."""
    target = await make_target(multipart_threshold_mib="5", multipart_part_size_mib="5", multipart_concurrency="2")
    payload = os.urandom(24 * MIB)
    request = received(payload, bucket_name=bucket, item_name="held.bin", checksum_sha256=digest(hashlib.sha256, payload))
    tracemalloc.start()
    try:
        await handle(target, request)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MIB, f"{peak / MIB:.1f} MiB allocated at the peak"
