"""The ``aws.s3`` target: a drop-in for kubemq-targets' ``aws.s3``, for Amazon S3 and any S3-compatible store.

``METHODS`` is the explicit operation list: kubemq-targets' nine methods
first, in its order, then the additions. Each entry names the metadata model
the request is checked against before its handler runs.
"""

from __future__ import annotations

import contextlib
from typing import Any

from bindings.context import RequestContext, TargetContext
from bindings.errors import RequestError, TargetError
from bindings.target import Call, MethodTable, Target
from bindings.wire import Request, Response
from connector.s3 import batch_delete, buckets, items, listing, multipart, policy, tags
from connector.s3.client import Credentials, S3Client
from connector.s3.errors import translate
from connector.s3.options import S3Properties
from connector.s3.policy import Reaches

READ, WRITE = True, False
# (name, metadata model, handler, summary, read-only: may be cancelled once the sender gives up,
#  what a request reaches and whether it writes there, for the binding's least-privilege policy).
# The two differ for presign_url: signing changes nothing, yet a put or delete URL is a write.
OPERATIONS: tuple[tuple[str, type[Any], Any, str, bool, Reaches], ...] = (
    ("list_buckets", listing.ListBucketsMetadata, listing.list_buckets, "List every bucket of the account.", READ, policy.reaches_nothing),
    ("list_bucket_items", listing.ListItemsMetadata, listing.list_bucket_items, "List a bucket's objects: every page up to a cap, or one page.", READ, policy.reads_prefix),
    ("create_bucket", buckets.CreateBucketMetadata, buckets.create_bucket, "Create a bucket in the target's region.", WRITE, policy.writes_bucket),
    ("delete_bucket", buckets.DeleteBucketMetadata, buckets.delete_bucket, "Delete a bucket (with force=true, empty it first).", WRITE, policy.deletes_bucket),
    ("upload_item", items.UploadItemMetadata, items.upload_item, "Store the request data as an object.", WRITE, policy.writes_item),
    ("get_item", items.GetItemMetadata, items.get_item, "Return an object's bytes (or its decoded content).", READ, policy.reads_item),
    ("delete_item_from_bucket", items.DeleteItemMetadata, items.delete_item_from_bucket, "Delete one object.", WRITE, policy.writes_item),
    (
        "delete_all_items_from_bucket",
        buckets.DeleteAllItemsMetadata,
        buckets.delete_all_items_from_bucket,
        "Delete every object (under a prefix).",
        WRITE,
        policy.writes_prefix,
    ),
    ("copy_item", items.CopyItemMetadata, items.copy_item, "Copy an object, within or across buckets.", WRITE, policy.copies),
    ("head_item", items.HeadItemMetadata, items.head_item, "Describe an object without its body.", READ, policy.reads_item),
    ("presign_url", items.PresignUrlMetadata, items.presign_url, "Make a time-limited URL to get, put or delete an object, or put a part.", READ, policy.presigns),
    (
        "create_multipart_upload",
        multipart.CreateMultipartMetadata,
        multipart.create_multipart_upload,
        "Start a multipart upload; its upload_id names it in the next steps.",
        WRITE,
        policy.writes_item,
    ),
    ("upload_part", multipart.UploadPartMetadata, multipart.upload_part, "Store the request data as one part of a multipart upload.", WRITE, policy.writes_item),
    (
        "complete_multipart_upload",
        multipart.CompleteMetadata,
        multipart.complete_multipart_upload,
        "Join the parts into the object (the parts given, or every uploaded part).",
        WRITE,
        policy.writes_item,
    ),
    ("abort_multipart_upload", multipart.AbortMetadata, multipart.abort_multipart_upload, "Drop a multipart upload and its parts.", WRITE, policy.writes_item),
    ("list_parts", multipart.ListPartsMetadata, multipart.list_parts, "List the parts of a multipart upload.", READ, policy.reads_item),
    (
        "list_multipart_uploads",
        multipart.ListUploadsMetadata,
        multipart.list_multipart_uploads,
        "List a bucket's multipart uploads in progress.",
        READ,
        policy.reads_prefix,
    ),
    ("get_item_tags", tags.GetTagsMetadata, tags.get_item_tags, "Return an object's tags.", READ, policy.reads_item),
    ("put_item_tags", tags.PutTagsMetadata, tags.put_item_tags, "Replace an object's tags.", WRITE, policy.writes_item),
    ("delete_item_tags", tags.DeleteTagsMetadata, tags.delete_item_tags, "Remove every tag of an object.", WRITE, policy.writes_item),
    # The keys are in the data: the handler checks each against the policy; the table declares the bucket.
    ("delete_items", batch_delete.DeleteItemsMetadata, batch_delete.delete_items, "Delete a list of keys, reporting each refusal.", WRITE, policy.writes_bucket),
)

METHODS = MethodTable()
for _name, _metadata, _handler, _summary, _read_only, _reaches in OPERATIONS:
    METHODS.method(_name, _metadata, _summary, read_only=_read_only)(_handler)
REACHES: dict[str, Reaches] = {name: reaches for name, *_, reaches in OPERATIONS}


class S3Target(Target):
    """Performs S3 operations for kubemq-targets ``aws.s3`` requests."""

    kind = "aws.s3"
    properties_model = S3Properties
    summary = "Amazon S3 and S3-compatible stores (MinIO, SeaweedFS, Ceph, R2, ...), wire-compatible with kubemq-targets aws.s3."
    methods = METHODS

    def __init__(self) -> None:
        self._client: S3Client | None = None
        self._defaults: dict[str, str] = {}
        self._binding = ""

    async def init(self, properties: S3Properties, context: TargetContext) -> None:
        """Open the client. ``endpoint: embedded`` arrives already pointed at the running SeaweedFS (``SHARED``, a development service)."""
        await self.close()
        if properties.embedded:
            raise RuntimeError("endpoint 'embedded' is served by the embedded SeaweedFS development service, which a connector runtime starts")
        credentials = _credentials(properties)
        endpoint = properties.endpoint
        client = S3Client(properties, endpoint, context.max_reply_data)
        try:
            await client.open(credentials, context.max_concurrency)
        except BaseException:
            await self.close()
            raise
        self._client = client
        self._defaults = {"bucket_name": properties.bucket} if properties.bucket else {}
        self._binding = context.binding
        context.log.info(
            "aws.s3 target ready",
            endpoint=endpoint or "aws",
            region=client.region,
            path_style=properties.path_style,
            auth="static keys" if credentials else "AWS default chain",
        )

    def resolve(self, request: Request) -> Call:
        """The request's method with its metadata, the default bucket filled in."""
        return METHODS.resolve(request, self._defaults)

    def authorize(self, call: Call) -> None:
        """The binding's least-privilege policy, on what this request reaches, before any S3 call."""
        client = self._client
        if client is None:
            raise TargetError("the aws.s3 target is not initialised or already closed", code="TargetClosed")
        if client.policy.restricts:  # the default: no rule, nothing to work out per request
            client.policy.check(call.name, REACHES[call.name](call.metadata), self._binding)

    async def handle(self, call: Call, context: RequestContext) -> Response:
        client = self._client
        if client is None:
            raise TargetError("the aws.s3 target is not initialised or already closed", code="TargetClosed")
        try:
            return await call.run(client, context)
        except RequestError:
            raise
        except Exception as exc:
            raise translate(exc) from exc

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()


def _credentials(properties: S3Properties) -> Credentials | None:
    if properties.aws_key is None or properties.aws_secret_key is None:
        return None
    token = properties.token.get_secret_value() if properties.token is not None else None
    return Credentials(properties.aws_key.get_secret_value(), properties.aws_secret_key.get_secret_value(), token)
