"""``create_bucket``, ``delete_bucket`` and ``delete_all_items_from_bucket``.

Buckets outside us-east-1 are created with a LocationConstraint (which
kubemq-targets never sent, so AWS refused them). Emptying a bucket deletes in
batches of at most 1000 keys page by page, so memory stays bounded however
large the bucket is, and per-key failures are reported instead of dropped
(the first ones by key, all by count; deletion stops once batch after batch
is refused entirely).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Any

from botocore.exceptions import ClientError

from bindings.context import RequestContext
from bindings.properties import field
from bindings.target import KubemqTargetsReply
from bindings.wire import KUBEMQ_TARGETS, Request, Response
from connector.s3 import policy
from connector.s3.client import DEFAULT_REGION, S3Client
from connector.s3.declaration import KUBEMQ_TARGETS_REPLY, S3Method
from connector.s3.errors import DeleteRefused, ListingFailed, client_error
from connector.s3.metadata import BucketMetadata, WaitMetadata
from connector.s3.results import CREATE_BUCKET, to_json

DELETE_BATCH = 1000  # DeleteObjects' limit
KEPT_REFUSALS = 100  # refused keys an error names; the others are only counted
REFUSED_BATCHES_TO_STOP = 3  # batches in a row with every key refused: the rest would be refused too


class CreateBucketMetadata(WaitMetadata, BucketMetadata):
    """Bucket name and whether to wait until it exists."""


class DeleteBucketMetadata(WaitMetadata, BucketMetadata):
    force: bool = field(False, description="Delete every object (all versions) first, so a non-empty bucket can go.", example="true")


class DeleteAllItemsMetadata(BucketMetadata):
    prefix: str | None = field(None, description="Only delete keys that start with this.", example="tmp/")


async def create_bucket(s3: S3Client, metadata: CreateBucketMetadata, request: Request, context: RequestContext) -> Response:
    """CreateBucket in the target's region."""
    params: dict[str, Any] = {"Bucket": metadata.bucket_name}
    if s3.region != DEFAULT_REGION:
        params["CreateBucketConfiguration"] = {"LocationConstraint": s3.region}
    output = await s3.api.create_bucket(**params)
    if metadata.wait_for_completion:
        await s3.wait("bucket_exists", f"bucket {metadata.bucket_name} to exist", context.remaining(), Bucket=metadata.bucket_name)
    return Response.ok(to_json(CREATE_BUCKET.apply(output)), bucket=metadata.bucket_name)


async def delete_bucket(s3: S3Client, metadata: DeleteBucketMetadata, request: Request, context: RequestContext) -> Response:
    """DeleteBucket; with ``force`` the bucket is emptied (every version) first."""
    extra: dict[str, str] = {}
    if metadata.force:
        extra["deleted"] = str(await delete_in_batches(s3, metadata.bucket_name, _versions(s3, metadata.bucket_name)))
    await s3.api.delete_bucket(Bucket=metadata.bucket_name)
    if metadata.wait_for_completion:
        await s3.wait("bucket_not_exists", f"bucket {metadata.bucket_name} to be deleted", context.remaining(), Bucket=metadata.bucket_name)
    return Response.ok(None, bucket=metadata.bucket_name, **extra)


async def delete_all_items_from_bucket(s3: S3Client, metadata: DeleteAllItemsMetadata, request: Request, context: RequestContext) -> Response:
    """Delete every current object (under ``prefix``); replies with how many were deleted.

    In the kubemq-targets reply style a failure is worded as its batch delete
    words it (``BatchedDeleteIncomplete``, a line pair per failed key).
    """
    try:
        deleted = await delete_in_batches(s3, metadata.bucket_name, _keys(s3, metadata.bucket_name, metadata.prefix))
    except (DeleteRefused, ListingFailed) as exc:
        if s3.reply_style != KUBEMQ_TARGETS:
            raise
        raise exc.as_batch_error() from exc
    return Response.ok(to_json({"Deleted": deleted}), bucket=metadata.bucket_name, deleted=str(deleted))


async def delete_in_batches(s3: S3Client, bucket: str, batches: AsyncGenerator[list[dict[str, str]], None]) -> int:
    """DeleteObjects for each listed batch; raises after the last batch if any key failed.

    The error keeps the first ``KEPT_REFUSALS`` refused keys and counts the
    rest, so a bucket of millions of refused keys cannot fill memory; and
    once ``REFUSED_BATCHES_TO_STOP`` batches in a row were refused entirely
    (a policy denying deletes, say) it stops instead of listing the whole
    bucket only to be refused again.
    """
    deleted = refused = refused_in_a_row = 0
    kept: list[dict[str, Any]] = []
    async with contextlib.aclosing(batches):
        async for batch in batches:
            for start in range(0, len(batch), DELETE_BATCH):
                chunk = batch[start : start + DELETE_BATCH]
                output = await s3.api.delete_objects(Bucket=bucket, Delete={"Objects": chunk, "Quiet": True})
                errors = output.get("Errors", [])
                deleted += len(chunk) - len(errors)
                refused += len(errors)
                kept += errors[: KEPT_REFUSALS - len(kept)]
                refused_in_a_row = refused_in_a_row + 1 if len(errors) == len(chunk) else 0
                if refused_in_a_row == REFUSED_BATCHES_TO_STOP:
                    raise DeleteRefused(kept, refused, deleted, bucket, stopped_after=refused_in_a_row)
    if refused:
        raise DeleteRefused(kept, refused, deleted, bucket)
    return deleted


async def _keys(s3: S3Client, bucket: str, prefix: str | None) -> AsyncGenerator[list[dict[str, str]], None]:
    paginator = s3.api.get_paginator("list_objects_v2")
    try:
        async for page in paginator.paginate(Bucket=bucket, Prefix=prefix or "", PaginationConfig={"PageSize": DELETE_BATCH}):
            yield [{"Key": item["Key"]} for item in page.get("Contents", [])]
    except ClientError as exc:
        raise ListingFailed.of(client_error(exc)) from exc


async def _versions(s3: S3Client, bucket: str) -> AsyncGenerator[list[dict[str, str]], None]:
    paginator = s3.api.get_paginator("list_object_versions")
    async for page in paginator.paginate(Bucket=bucket, PaginationConfig={"PageSize": DELETE_BATCH}):
        entries = page.get("Versions", []) + page.get("DeleteMarkers", [])
        yield [{"Key": item["Key"], "VersionId": item["VersionId"]} for item in entries]


# The methods of this module, declared once (see declaration.py); the target's table lists them in this order.
CREATE_BUCKET_METHOD = S3Method(
    name="create_bucket",
    metadata=CreateBucketMetadata,
    handler=create_bucket,
    summary="Create a bucket in the target's region.",
    reaches=policy.writes_bucket,
    kubemq_targets=KUBEMQ_TARGETS_REPLY,
    example={"bucket_name": "demo"},
)
DELETE_BUCKET_METHOD = S3Method(
    name="delete_bucket",
    metadata=DeleteBucketMetadata,
    handler=delete_bucket,
    summary="Delete a bucket (with force=true, empty it first).",
    reaches=policy.deletes_bucket,
    kubemq_targets=KUBEMQ_TARGETS_REPLY,
    example={"bucket_name": "demo-2", "force": "true"},
)
DELETE_ALL_ITEMS_FROM_BUCKET_METHOD = S3Method(
    name="delete_all_items_from_bucket",
    metadata=DeleteAllItemsMetadata,
    handler=delete_all_items_from_bucket,
    summary="Delete every object (under a prefix).",
    reaches=policy.writes_prefix,
    kubemq_targets=KubemqTargetsReply(data=False),
    example={"bucket_name": "demo", "prefix": "tmp/"},
)
DECLARED = (
    CREATE_BUCKET_METHOD,
    DELETE_BUCKET_METHOD,
    DELETE_ALL_ITEMS_FROM_BUCKET_METHOD,
)
