"""Bucket methods on a real SeaweedFS: list, create, delete, delete-all (batches across pages)."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Container
from types import SimpleNamespace
from typing import Any

import pytest

from bindings.context import TargetContext
from bindings.errors import TargetError
from connector.s3 import S3Target
from connector.s3.buckets import delete_in_batches
from connector.s3.errors import DeleteRefused
from tests.fixtures.s3 import unique_bucket_name
from tests.fixtures.s3_targets import MakeTarget, StubS3
from tests.s3.support import body, call, keys_in, open_target, put_many

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


async def test_list_buckets_returns_the_s3_output_shape(target: S3Target, bucket: str) -> None:
    reply = await call(target, method="list_buckets")
    assert reply.metadata == {"result": "ok"}
    output = body(reply)
    assert list(output) == ["Buckets", "Owner"]
    mine = [b for b in output["Buckets"] if b["Name"] == bucket]
    assert len(mine) == 1 and list(mine[0]) == ["CreationDate", "Name"]
    assert RFC3339.match(mine[0]["CreationDate"])
    assert set(output["Owner"]) >= {"DisplayName", "ID"}


async def test_create_bucket_waits_until_it_exists(target: S3Target, s3_client: Any) -> None:
    name = unique_bucket_name()
    try:
        reply = await call(target, method="create_bucket", bucket_name=name, wait_for_completion="true")
        assert reply.metadata == {"result": "ok", "bucket": name}
        assert body(reply) == {"Location": f"/{name}"}
        await s3_client.head_bucket(Bucket=name)
    finally:
        await s3_client.delete_bucket(Bucket=name)


async def test_create_existing_bucket_reports_the_s3_code_and_status(target: S3Target, bucket: str) -> None:
    with pytest.raises(TargetError) as caught:
        await call(target, method="create_bucket", bucket_name=bucket)
    assert caught.value.code == "BucketAlreadyOwnedByYou" and caught.value.status == 409
    assert re.match(r"^BucketAlreadyOwnedByYou: .+\n\tstatus code: 409, request id: \S+, host id: \S*$", str(caught.value))
    assert caught.value.retryable is False


@pytest.mark.parametrize(("region", "constraint"), [("eu-west-1", b"<LocationConstraint>eu-west-1</LocationConstraint>"), ("us-east-1", None)])
async def test_create_bucket_sends_a_location_constraint_outside_us_east_1(make_target: MakeTarget, stub_s3: StubS3, region: str, constraint: bytes | None) -> None:
    # SeaweedFS accepts and forgets the constraint, so a scripted server shows what is sent.
    target = await make_target(endpoint=stub_s3.endpoint, region=region)
    await call(target, method="create_bucket", bucket_name="regional")
    (method, path, sent) = stub_s3.requests[0]
    assert (method, path) == ("PUT", "/regional")
    if constraint is None:
        assert b"LocationConstraint" not in sent
    else:
        assert constraint in sent


async def test_delete_bucket_waits_until_it_is_gone(target: S3Target, s3_client: Any) -> None:
    name = unique_bucket_name()
    await s3_client.create_bucket(Bucket=name)
    reply = await call(target, method="delete_bucket", bucket_name=name, wait_for_completion="true")
    assert reply.metadata == {"result": "ok", "bucket": name} and reply.data is None
    assert name not in {b["Name"] for b in (await s3_client.list_buckets())["Buckets"]}


async def test_deleting_a_non_empty_bucket_fails_as_on_aws(target: S3Target, s3_client: Any, bucket: str) -> None:
    await s3_client.put_object(Bucket=bucket, Key="keep", Body=b"x")
    with pytest.raises(TargetError) as caught:
        await call(target, method="delete_bucket", bucket_name=bucket)
    assert str(caught.value).startswith("BucketNotEmpty: The bucket you tried to delete is not empty\n\tstatus code: 409, request id: ")
    assert (caught.value.code, caught.value.status, caught.value.retryable) == ("BucketNotEmpty", 409, False)


async def test_deleting_a_missing_bucket_is_no_such_bucket(target: S3Target) -> None:
    with pytest.raises(TargetError) as caught:
        await call(target, method="delete_bucket", bucket_name=unique_bucket_name())
    assert str(caught.value).startswith("NoSuchBucket: The specified bucket does not exist\n\tstatus code: 404")
    assert (caught.value.code, caught.value.status) == ("NoSuchBucket", 404)


async def test_force_delete_empties_every_version_first(target: S3Target, s3_client: Any) -> None:
    name = unique_bucket_name()
    await s3_client.create_bucket(Bucket=name)
    await s3_client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    for content in (b"v1", b"v2"):
        await s3_client.put_object(Bucket=name, Key="doc", Body=content)
    await s3_client.put_object(Bucket=name, Key="other", Body=b"x")
    await s3_client.delete_object(Bucket=name, Key="other")  # leaves a delete marker
    reply = await call(target, method="delete_bucket", bucket_name=name, force="true", wait_for_completion="true")
    assert reply.metadata == {"result": "ok", "bucket": name, "deleted": "4"}
    assert name not in {b["Name"] for b in (await s3_client.list_buckets())["Buckets"]}


async def test_delete_all_items_deletes_more_than_1000_objects_across_pages(target: S3Target, s3_client: Any, bucket: str) -> None:
    keys = [f"logs/{i:05d}" for i in range(1150)] + [f"keep/{i}" for i in range(5)]
    await put_many(s3_client, bucket, keys)
    reply = await call(target, method="delete_all_items_from_bucket", bucket_name=bucket, prefix="logs/")
    assert reply.metadata == {"result": "ok", "bucket": bucket, "deleted": "1150"}
    assert body(reply) == {"Deleted": 1150}
    assert sorted(await keys_in(s3_client, bucket)) == [f"keep/{i}" for i in range(5)]
    reply = await call(target, method="delete_all_items_from_bucket", bucket_name=bucket, wait_for_completion="true")
    assert body(reply) == {"Deleted": 5}
    assert await keys_in(s3_client, bucket) == []


async def test_delete_all_items_of_an_empty_bucket_deletes_nothing(target: S3Target, bucket: str) -> None:
    reply = await call(target, method="delete_all_items_from_bucket", bucket_name=bucket)
    assert body(reply) == {"Deleted": 0}


async def test_default_bucket_property_fills_a_missing_bucket_name(make_target: MakeTarget, s3_client: Any, bucket: str) -> None:
    target = await make_target(bucket=bucket)
    await call(target, b"x", method="upload_item", item_name="k")
    assert await keys_in(s3_client, bucket) == ["k"]
    with pytest.raises(TargetError, match="NoSuchBucket"):
        await call(target, b"x", method="upload_item", item_name="k", bucket_name=unique_bucket_name())


class FailingDeletes:
    """DeleteObjects that refuses some keys, as S3 does per key (SeaweedFS cannot be made to)."""

    def __init__(self, refuse: Container[str], code: str) -> None:
        self.refuse, self.code, self.calls = refuse, code, []  # type: ignore[var-annotated]

    async def delete_objects(self, Bucket: str, Delete: dict[str, Any]) -> dict[str, Any]:
        objects = Delete["Objects"]
        assert len(objects) <= 1000
        self.calls.append(len(objects))
        return {"Errors": [{"Key": o["Key"], "Code": self.code, "Message": "refused"} for o in objects if o["Key"] in self.refuse]}


class Listing:
    """Pages of keys ``k0``, ``k1``, ... as a listing yields them; records how far it was read and whether it was closed."""

    def __init__(self, *sizes: int) -> None:
        self.sizes, self.pages, self.closed = sizes, 0, False

    async def __call__(self) -> AsyncGenerator[list[dict[str, str]], None]:
        start = 0
        try:
            for size in self.sizes:
                self.pages += 1
                yield [{"Key": f"k{i}"} for i in range(start, start + size)]
                start += size
        finally:
            self.closed = True


def keys(start: int, stop: int) -> set[str]:
    return {f"k{i}" for i in range(start, stop)}


async def test_per_key_delete_errors_fail_the_request_after_every_batch() -> None:
    fake = FailingDeletes({"k3", "k1500"}, "AccessDenied")
    with pytest.raises(TargetError) as caught:
        await delete_in_batches(SimpleNamespace(api=fake), "b", Listing(1000, 1200)())  # type: ignore[arg-type]
    assert fake.calls == [1000, 1000, 200]
    assert str(caught.value) == "AccessDenied: failed to delete 2 of 2200 objects: k3: AccessDenied (refused); k1500: AccessDenied (refused)"
    assert caught.value.code == "AccessDenied" and caught.value.retryable is False


async def test_per_key_throttling_is_retryable() -> None:
    with pytest.raises(TargetError) as caught:
        await delete_in_batches(SimpleNamespace(api=FailingDeletes({"k0"}, "SlowDown")), "b", Listing(3)())  # type: ignore[arg-type]
    assert caught.value.retryable is True


async def test_the_error_names_the_first_100_refused_keys_and_counts_the_rest() -> None:
    # Every other key refused: no batch is refused entirely, so deletion goes on to the end.
    fake = FailingDeletes({f"k{i}" for i in range(0, 5000, 2)}, "AccessDenied")
    with pytest.raises(TargetError) as caught:
        await delete_in_batches(SimpleNamespace(api=fake), "b", Listing(1000, 1000, 1000, 1000, 1000)())  # type: ignore[arg-type]
    text = str(caught.value)
    assert text.startswith("AccessDenied: failed to delete 2500 of 5000 objects: k0: AccessDenied (refused); k2: ")
    assert text.count("AccessDenied (refused)") == 100 and "k198: AccessDenied (refused); and 2400 more" in text and text.endswith("; and 2400 more")
    assert isinstance(caught.value, DeleteRefused)
    worded = str(caught.value.as_batch_error())  # the default style lists the kept keys, then says what they leave out
    assert worded.count("failed to perform batch operation on") == 100
    assert worded.endswith("\nfailed to delete 2500 of 5000 objects; the first 100 refused keys are listed")


async def test_deletion_stops_after_three_batches_in_a_row_refused_entirely() -> None:
    # The first batch is half deleted; from k500 on a policy refuses everything. Ten pages are listed, four are read.
    listing = Listing(*[1000] * 10)
    fake = FailingDeletes(keys(500, 10_000), "AccessDenied")
    with pytest.raises(TargetError) as caught:
        await delete_in_batches(SimpleNamespace(api=fake), "b", listing())  # type: ignore[arg-type]
    assert fake.calls == [1000] * 4 and listing.pages == 4 and listing.closed
    assert str(caught.value).startswith(
        "AccessDenied: stopped after 3 batches in a row in which every object was refused; 500 deleted before stopping, 3500 refused: k500: AccessDenied (refused); k501: "
    )
    assert str(caught.value).endswith("k599: AccessDenied (refused); and 3400 more") and caught.value.retryable is False


async def test_a_batch_with_any_key_deleted_restarts_the_count_of_refused_batches() -> None:
    fake = FailingDeletes(keys(0, 2000) | keys(2001, 4000) | keys(4000, 5000), "AccessDenied")
    with pytest.raises(TargetError) as caught:
        await delete_in_batches(SimpleNamespace(api=fake), "b", Listing(1000, 1000, 1000, 1000, 1000)())  # type: ignore[arg-type]
    assert fake.calls == [1000] * 5 and str(caught.value).startswith("AccessDenied: failed to delete 4999 of 5000 objects: ")


async def test_force_delete_through_the_target_stops_when_every_key_is_refused(make_target: MakeTarget, stub_s3: StubS3) -> None:
    # S3 answers each DeleteObjects with every key refused; the target stops listing after three batches of ten pages.
    target = await make_target(endpoint=stub_s3.endpoint)
    page = "".join(f"<Version><Key>k{i}</Key><VersionId>v</VersionId></Version>" for i in range(1000))
    refused = "".join(f"<Error><Key>k{i}</Key><VersionId>v</VersionId><Code>AccessDenied</Code><Message>Access Denied</Message></Error>" for i in range(1000))
    for number in range(10):
        listing = f"<ListVersionsResult><IsTruncated>true</IsTruncated><NextKeyMarker>m{number}</NextKeyMarker><NextVersionIdMarker>v</NextVersionIdMarker>{page}</ListVersionsResult>"
        stub_s3.replies += [(200, listing.encode()), (200, f"<DeleteResult>{refused}</DeleteResult>".encode())]
    with pytest.raises(TargetError) as caught:
        await call(target, method="delete_bucket", bucket_name="locked", force="true")
    assert str(caught.value).startswith("AccessDenied: stopped after 3 batches in a row in which every object was refused; 0 deleted before stopping, 3000 refused: ")
    assert [method for method, _, _ in stub_s3.requests] == ["GET", "POST"] * 3


async def test_refused_keys_are_worded_as_kubemq_targets_batch_delete_words_them() -> None:
    """aws-sdk-go's BatchedDeleteIncomplete, a line pair per key with Go's quoting, as the default reply style sends it."""

    async def listing() -> AsyncGenerator[list[dict[str, str]], None]:
        yield [{"Key": "k3"}, {"Key": 'k"7\n'}, {"Key": "k9"}]

    with pytest.raises(DeleteRefused) as caught:
        await delete_in_batches(SimpleNamespace(api=FailingDeletes({"k3", 'k"7\n'}, "AccessDenied")), "b", listing())  # type: ignore[arg-type]
    worded = caught.value.as_batch_error()
    assert str(worded) == (
        "BatchedDeleteIncomplete: some objects have failed to be deleted.\n"
        'caused by: failed to perform batch operation on "k3" to "b":\nAccessDenied: refused\n'
        'failed to perform batch operation on "k\\"7\\n" to "b":\nAccessDenied: refused'
    )
    assert (worded.code, worded.retryable) == ("AccessDenied", False)


async def test_a_listing_that_fails_is_worded_as_kubemq_targets_batch_delete_words_it(s3_properties: dict[str, str]) -> None:
    target = await open_target(s3_properties, TargetContext(binding="t", max_concurrency=8))  # the default reply style
    try:
        with pytest.raises(TargetError) as caught:
            await call(target, method="delete_all_items_from_bucket", bucket_name=unique_bucket_name("missing"))
    finally:
        await target.close()
    assert str(caught.value).startswith('BatchedDeleteIncomplete: some objects have failed to be deleted.\ncaused by: failed to perform batch operation on "" to "":\nNoSuchBucket: ')
    assert caught.value.code == "NoSuchBucket"
