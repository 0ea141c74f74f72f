"""What goes wrong between the listing and the end of a delivery, against SeaweedFS: each object still ends in one outcome."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pybase64
import pytest

from bindings.context import RequestContext
from bindings.errors import TargetError
from bindings.metrics import Metrics
from bindings.source import Outcome
from bindings.wire import Body, Response
from connector.s3.embedded import EmbeddedS3
from connector.s3_source.delivery import Delivery
from connector.s3_source.messages import Found
from connector.s3_source.properties import S3SourceProperties
from connector.s3_source.source import S3Source
from connector.s3_source.state import Lease
from tests.fixtures.waiting import eventually
from tests.s3_source.support import keys_in, put_objects

Handler = Callable[[Body, RequestContext], Awaitable[Outcome]]


class Recorder:
    """The far side: every message it was handed, confirmed."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    async def __call__(self, body: Body, context: RequestContext) -> Outcome:
        self.keys.append(json.loads(bytes(body))["metadata"]["item_name"])
        return Outcome(Response.ok())


def properties(seaweed: EmbeddedS3, bucket: str, **extra: Any) -> S3SourceProperties:
    values = {"aws_key": seaweed.access_key, "aws_secret_key": seaweed.secret_key, "endpoint": seaweed.endpoint, "bucket_name": bucket, "folders": "/", "target_type": "aws", "scan_interval": 1}
    return S3SourceProperties(**{**values, **extra})


async def running(source: S3Source, handler: Handler) -> AsyncIterator[S3Source]:
    await source.start(handler)
    try:
        yield source
    finally:
        await source.stop(5)


def counted(metrics: Metrics, binding: str, outcome: str) -> float:
    return metrics.registry.get_sample_value("kubemq_s3_source_items_total", {"binding": binding, "outcome": outcome}) or 0.0


def watched_source(seaweed: EmbeddedS3, bucket: str, metrics: Metrics, **extra: Any) -> S3Source:
    name = f"faults-{uuid.uuid4().hex[:6]}"
    source = S3Source(properties(seaweed, bucket, **extra), name)
    source.item_counts = metrics.item_counts(name)
    return source


async def test_an_object_deleted_between_listing_and_reading_is_skipped_not_failed(seaweed: EmbeddedS3, s3_client: Any, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    await put_objects(s3_client, bucket, {"vanishing.txt": b"v", "staying.txt": b"s"})
    read = Delivery._read

    async def deleted_first(delivery: Delivery, found: Found, byte_range: str | None = None) -> bytes:
        if found.key == "vanishing.txt":
            await s3_client.delete_object(Bucket=bucket, Key=found.key)
        return await read(delivery, found, byte_range)

    monkeypatch.setattr(Delivery, "_read", deleted_first)
    metrics, far_side = Metrics("kubemq_s3"), Recorder()
    source = watched_source(seaweed, bucket, metrics)
    async for _ in running(source, far_side):
        await eventually(lambda: counted(metrics, source.binding, "gone"), expect=1.0, timeout=30)
        await eventually(lambda: keys_in(s3_client, bucket), expect=[], timeout=30)
    assert far_side.keys == ["staying.txt"]
    assert (counted(metrics, source.binding, "failed"), counted(metrics, source.binding, "delivered")) == (0.0, 1.0)


async def test_a_failing_after_send_is_retried_alone_the_message_goes_once(seaweed: EmbeddedS3, s3_client: Any, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    await put_objects(s3_client, bucket, {"locked.txt": b"l"})
    after_send = Delivery.after_send
    refusals = iter(range(2))

    async def refused_twice(delivery: Delivery, found: Found) -> None:
        if next(refusals, None) is not None:
            raise RuntimeError("AccessDenied: object lock")
        await after_send(delivery, found)

    monkeypatch.setattr(Delivery, "after_send", refused_twice)
    metrics, far_side = Metrics("kubemq_s3"), Recorder()
    source = watched_source(seaweed, bucket, metrics)
    async for _ in running(source, far_side):
        await eventually(lambda: keys_in(s3_client, bucket), expect=[], timeout=30)
    assert far_side.keys == ["locked.txt"]  # kubemq-sources would have sent it on every retry
    assert (counted(metrics, source.binding, "after_send_failed"), counted(metrics, source.binding, "delivered")) == (2.0, 1.0)


async def test_filters_prefix_suffix_and_modified_after(seaweed: EmbeddedS3, s3_client: Any, bucket: str) -> None:
    await put_objects(s3_client, bucket, {"in/inv-1.csv": b"1", "in/inv-2.txt": b"2", "in/other.csv": b"3", "out/inv-3.csv": b"4"})
    metrics, far_side = Metrics("kubemq_s3"), Recorder()
    async for _ in running(watched_source(seaweed, bucket, metrics, folders="in", prefix="inv-", suffixes=".csv"), far_side):
        await eventually(lambda: far_side.keys, expect=["in/inv-1.csv"], timeout=30)
    metrics, far_side = Metrics("kubemq_s3"), Recorder()
    future = watched_source(seaweed, bucket, metrics, modified_after="2999-01-01T00:00:00Z")
    async for _ in running(future, far_side):
        await eventually(lambda: metrics.registry.get_sample_value("kubemq_s3_source_pending_items", {"binding": future.binding}), expect=0.0, timeout=30)
    assert far_side.keys == []


async def test_keep_mode_prunes_the_record_of_an_object_deleted_from_the_bucket(seaweed: EmbeddedS3, s3_client: Any, bucket: str) -> None:
    await put_objects(s3_client, bucket, {"a": b"a", "b": b"b"})
    metrics, far_side = Metrics("kubemq_s3"), Recorder()
    source = watched_source(seaweed, bucket, metrics, after_send="keep")
    ledger = f".kubemq-s3/{source.binding}/sent/"
    async for _ in running(source, far_side):
        await eventually(lambda: _count(s3_client, bucket, ledger), expect=2, timeout=30)
        await s3_client.delete_object(Bucket=bucket, Key="a")
        await eventually(lambda: _count(s3_client, bucket, ledger), expect=1, timeout=30)
    assert sorted(far_side.keys) == ["a", "b"]


async def _count(s3: Any, bucket: str, prefix: str) -> int:
    return len((await s3.list_objects_v2(Bucket=bucket, Prefix=prefix)).get("Contents", []))


async def test_a_lease_renewal_whose_answer_was_lost_is_taken_back_not_waited_out(s3_client: Any, bucket: str) -> None:
    lease = Lease(s3_client, bucket, "state/lease", 30)
    assert await lease.refresh() and lease.held and lease.conditional
    stale = lease._etag
    assert await lease.refresh()  # a renewal the store applied...
    lease._etag = stale  # ...whose answer never came back (a cancel, a retried timeout)
    assert await lease.refresh() and lease.held
    other = Lease(s3_client, bucket, "state/lease", 30)
    assert not await other.refresh()  # another replica still stands by
    await lease.release()
    assert await other.refresh()


async def test_an_oversized_object_whose_part_is_refused_leaves_no_upload_behind(seaweed: EmbeddedS3, s3_client: Any, bucket: str) -> None:
    await put_objects(s3_client, bucket, {"big.bin": bytes(11 * 1024 * 1024)})
    steps: list[str] = []

    async def far_side(body: Body, context: RequestContext) -> Outcome:
        request = json.loads(bytes(body))
        method = request["metadata"]["method"]
        steps.append(method)
        if method == "create_multipart_upload":
            return Outcome(Response.ok(upload_id="u-1"))
        if method == "upload_part" and request["metadata"]["part_number"] == "2":
            assert len(pybase64.b64decode(request["data"])) == 5 * 1024 * 1024
            refused = TargetError("SlowDown: slow down")
            return Outcome(Response.failure(refused), refused)
        return Outcome(Response.ok())

    metrics = Metrics("kubemq_s3")
    source = watched_source(seaweed, bucket, metrics, max_object_size_mib=5, part_size_mib=5)
    source.target_answers = True
    async for _ in running(source, far_side):
        await eventually(lambda: counted(metrics, source.binding, "failed"), expect=1.0, timeout=30)
    assert steps[:4] == ["create_multipart_upload", "upload_part", "upload_part", "abort_multipart_upload"]
    assert await keys_in(s3_client, bucket) == ["big.bin"]  # not delivered: kept


async def test_the_backlog_gauges_survive_a_binding_replaced_by_a_reload() -> None:
    metrics = Metrics("kubemq_s3")
    old, new = metrics.item_counts("b"), metrics.item_counts("b")
    old.backlog(3, None)
    metrics.forget("b")  # the old binding stops after its successor was built
    new.backlog(7, 1.0)
    assert metrics.registry.get_sample_value("kubemq_s3_source_pending_items", {"binding": "b"}) == 7.0
    assert (metrics.registry.get_sample_value("kubemq_s3_source_oldest_pending_seconds", {"binding": "b"}) or 0) > 1_000_000


async def test_a_stop_gives_the_lease_up_within_bounded_time(seaweed: EmbeddedS3, s3_client: Any, bucket: str) -> None:
    metrics, far_side = Metrics("kubemq_s3"), Recorder()
    source = watched_source(seaweed, bucket, metrics)
    await source.start(far_side)
    await eventually(lambda: source.ready, expect=True, timeout=30)
    started = asyncio.get_running_loop().time()
    await source.stop(5)
    assert asyncio.get_running_loop().time() - started < 5
    assert await keys_in(s3_client, bucket) == [] and await _count(s3_client, bucket, ".kubemq-s3/") == 0
