"""Generated keys, contents and far-side behaviours (hypothesis): every object ends in exactly one outcome, nothing is lost.

The first law, for a source that finds its own work: each object the scan
finds is delivered (then deleted), or failed (left in the bucket, tried again
later), or found gone; whatever the target answers or raises, the scan goes
on, and an object leaves the bucket only once its message was confirmed.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pybase64
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bindings.context import RequestContext
from bindings.errors import TargetError
from bindings.source import ItemCounts, Outcome
from bindings.wire import Body, Response
from connector.s3.embedded import EmbeddedS3
from connector.s3_source.messages import Found, request_metadata, targets_request
from connector.s3_source.properties import S3SourceProperties
from connector.s3_source.source import S3Source
from tests.fixtures.s3 import empty_bucket, unique_bucket_name
from tests.s3_source.support import keys_in, put_objects

# Any text S3 takes in a key (no lone surrogates, which are not text), control characters included.
KEYS = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=200)
TARGET_TYPES = st.sampled_from(["aws", "minio", "gcp", "azure", "filesystem", "hdfs", "pass-through"])


@settings(max_examples=500, deadline=None)
@given(key=KEYS, data=st.binary(max_size=2048), target_type=TARGET_TYPES)
def test_a_message_body_carries_the_key_and_the_bytes_intact_for_every_target_type(key: str, data: bytes, target_type: str) -> None:
    found = Found(key, '"etag"', len(data), None)  # type: ignore[arg-type]
    body = json.loads(targets_request(request_metadata(target_type, found, "dst", "src"), data))
    assert pybase64.b64decode(body.get("data", "")) == data
    assert ("data" in body) == bool(data)  # Go's omitempty leaves an empty object's data out
    names = body["metadata"]
    if target_type in ("gcp", "filesystem", "pass-through"):
        folder, name = names["path"], names.get("object") or names.get("filename")
        assert folder == key.rpartition("/")[0]
        assert (f"{folder}/{name}" if "/" in key else name) == key
    else:
        named = {"aws": "item_name", "minio": "param2", "azure": "service_url", "hdfs": "file_path"}[target_type]
        assert names[named] == ("src/" + key if target_type == "hdfs" else key)


class Counted(ItemCounts):
    def __init__(self) -> None:
        self.found_total = self.delivered_total = self.failed_total = 0

    def found(self, count: int) -> None:
        self.found_total += count

    def delivered(self) -> None:
        self.delivered_total += 1

    def failed(self) -> None:
        self.failed_total += 1


@pytest_asyncio.fixture(scope="module")
async def watched(seaweed: EmbeddedS3, s3_client: Any) -> AsyncIterator[str]:
    name = unique_bucket_name("hostile")
    await s3_client.create_bucket(Bucket=name)
    yield name
    await empty_bucket(s3_client, name)
    await s3_client.delete_bucket(Bucket=name)


# Names S3 stores as given (SeaweedFS keeps keys as file paths: no empty or dot-only segments there).
NAMES = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"), min_size=1, max_size=30).filter(lambda name: name.strip(".") != "")
BEHAVIOURS = st.sampled_from(["confirm", "refuse", "raise", "slow-confirm"])


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(objects=st.dictionaries(NAMES, st.tuples(st.binary(max_size=512), BEHAVIOURS), min_size=1, max_size=8), concurrency=st.integers(1, 4))
async def test_whatever_the_target_does_each_object_ends_in_one_outcome_and_only_confirmed_ones_leave(
    seaweed: EmbeddedS3, s3_client: Any, watched: str, objects: dict[str, tuple[bytes, str]], concurrency: int
) -> None:
    folder = f"run-{uuid.uuid4().hex[:8]}"
    keys = {f"{folder}/{name}": value for name, value in objects.items()}
    await put_objects(s3_client, watched, {key: data for key, (data, _) in keys.items()})

    async def far_side(body: Body, context: RequestContext) -> Outcome:
        request = json.loads(bytes(body))
        data, behaviour = keys[request["metadata"]["item_name"]]
        assert pybase64.b64decode(request.get("data", "")) == data
        if behaviour == "raise":
            raise RuntimeError("a bug in the target")
        if behaviour == "refuse":
            error = TargetError("NoSuchBucket: the far side has no such bucket")
            return Outcome(Response.failure(error), error)
        if behaviour == "slow-confirm":
            await asyncio.sleep(0.05)
        return Outcome(Response.ok())

    properties = S3SourceProperties(
        aws_key=seaweed.access_key, aws_secret_key=seaweed.secret_key, endpoint=seaweed.endpoint, bucket_name=watched, folders=folder, target_type="aws", concurrency=concurrency, scan_interval=60
    )
    source = S3Source(properties, f"hostile-{folder}")
    counts = source.item_counts = Counted()
    await source.start(far_side)
    try:
        async with asyncio.timeout(30):
            while counts.delivered_total + counts.failed_total < len(keys):
                await asyncio.sleep(0.02)
    finally:
        await source.stop(5)
    confirmed = {key for key, (_, behaviour) in keys.items() if behaviour in ("confirm", "slow-confirm")}
    assert (counts.found_total, counts.delivered_total, counts.failed_total) == (len(keys), len(confirmed), len(keys) - len(confirmed))
    assert sorted(await keys_in(s3_client, watched, folder + "/")) == sorted(set(keys) - confirmed)
