"""The ``aws.s3`` target: a drop-in for kubemq-targets' ``aws.s3``, for Amazon S3 and any S3-compatible store.

``METHODS`` is the explicit operation list: kubemq-targets' nine methods
first, then the additions. Each entry names the metadata model
the request is checked against before its handler runs.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from bindings.context import RequestContext, TargetContext
from bindings.errors import RequestError, TargetError
from bindings.target import Call, KubemqTargetsReply, MethodTable, Target
from bindings.wire import KUBEMQ_TARGETS, ReplyStyle, Request, Response
from connector.s3 import batch_delete, buckets, items, listing, multipart, policy, tags
from connector.s3.client import S3Client, static_credentials
from connector.s3.errors import translate
from connector.s3.options import S3Properties
from connector.s3.policy import Reaches, check_method_names


@dataclass(frozen=True)
class Operation:
    """One method of the target, declared once.

    ``read_only`` operations may be cancelled once the sender gives up;
    ``reaches`` says what a request reaches and whether it writes there, for
    the binding's least-privilege policy. The two differ for presign_url:
    signing changes nothing, yet a put or delete URL is a write.
    ``kubemq_targets`` is set for kubemq-targets' own nine methods: what its
    replies carry, which the default reply style keeps to.
    """

    name: str
    metadata: type[Any]
    handler: Any
    summary: str
    read_only: bool
    reaches: Reaches
    kubemq_targets: KubemqTargetsReply | None = None


READ, WRITE = True, False  # an Operation's read_only
# kubemq-targets answers ``{"result":"ok"}`` with the S3 output as data; ``get_item`` also names bucket and key.
KUBEMQ_TARGETS_REPLY = KubemqTargetsReply()
# kubemq-targets' nine methods first, then the additions.
OPERATIONS: tuple[Operation, ...] = (
    Operation("list_buckets", listing.ListBucketsMetadata, listing.list_buckets, "List every bucket of the account.", READ, policy.reaches_nothing, KUBEMQ_TARGETS_REPLY),
    Operation(
        "list_bucket_items",
        listing.ListItemsMetadata,
        listing.list_bucket_items,
        "List a bucket's objects: every page up to a cap, or one page.",
        READ,
        policy.reads_prefix,
        KUBEMQ_TARGETS_REPLY,
    ),
    Operation("create_bucket", buckets.CreateBucketMetadata, buckets.create_bucket, "Create a bucket in the target's region.", WRITE, policy.writes_bucket, KUBEMQ_TARGETS_REPLY),
    Operation(
        "delete_bucket",
        buckets.DeleteBucketMetadata,
        buckets.delete_bucket,
        "Delete a bucket (with force=true, empty it first).",
        WRITE,
        policy.deletes_bucket,
        KUBEMQ_TARGETS_REPLY,
    ),
    Operation("upload_item", items.UploadItemMetadata, items.upload_item, "Store the request data as an object.", WRITE, policy.writes_item, KUBEMQ_TARGETS_REPLY),
    Operation(
        "get_item",
        items.GetItemMetadata,
        items.get_item,
        "Return an object's bytes (or its decoded content).",
        READ,
        policy.reads_item,
        KubemqTargetsReply(metadata=("bucket", "key")),
    ),
    Operation("delete_item_from_bucket", items.DeleteItemMetadata, items.delete_item_from_bucket, "Delete one object.", WRITE, policy.writes_item, KUBEMQ_TARGETS_REPLY),
    Operation(
        "delete_all_items_from_bucket",
        buckets.DeleteAllItemsMetadata,
        buckets.delete_all_items_from_bucket,
        "Delete every object (under a prefix).",
        WRITE,
        policy.writes_prefix,
        KubemqTargetsReply(data=False),  # kubemq-targets sends no count
    ),
    Operation("copy_item", items.CopyItemMetadata, items.copy_item, "Copy an object, within or across buckets.", WRITE, policy.copies, KUBEMQ_TARGETS_REPLY),
    Operation("head_item", items.HeadItemMetadata, items.head_item, "Describe an object without its body.", READ, policy.reads_item),
    Operation("presign_url", items.PresignUrlMetadata, items.presign_url, "Make a time-limited URL to get, put or delete an object, or put a part.", READ, policy.presigns),
    Operation(
        "create_multipart_upload",
        multipart.CreateMultipartMetadata,
        multipart.create_multipart_upload,
        "Start a multipart upload; its upload_id names it in the next steps.",
        WRITE,
        policy.writes_item,
    ),
    Operation("upload_part", multipart.UploadPartMetadata, multipart.upload_part, "Store the request data as one part of a multipart upload.", WRITE, policy.writes_item),
    Operation(
        "complete_multipart_upload",
        multipart.CompleteMetadata,
        multipart.complete_multipart_upload,
        "Join the parts into the object (the parts given, or every uploaded part).",
        WRITE,
        policy.writes_item,
    ),
    Operation("abort_multipart_upload", multipart.AbortMetadata, multipart.abort_multipart_upload, "Drop a multipart upload and its parts.", WRITE, policy.writes_item),
    Operation("list_parts", multipart.ListPartsMetadata, multipart.list_parts, "List the parts of a multipart upload.", READ, policy.reads_item),
    Operation(
        "list_multipart_uploads",
        multipart.ListUploadsMetadata,
        multipart.list_multipart_uploads,
        "List a bucket's multipart uploads in progress.",
        READ,
        policy.reads_prefix,
    ),
    Operation("get_item_tags", tags.GetTagsMetadata, tags.get_item_tags, "Return an object's tags.", READ, policy.reads_item),
    Operation("put_item_tags", tags.PutTagsMetadata, tags.put_item_tags, "Replace an object's tags.", WRITE, policy.writes_item),
    Operation("delete_item_tags", tags.DeleteTagsMetadata, tags.delete_item_tags, "Remove every tag of an object.", WRITE, policy.writes_item),
    # The keys are in the data: the handler checks each against the policy; the table declares the bucket.
    Operation("delete_items", batch_delete.DeleteItemsMetadata, batch_delete.delete_items, "Delete a list of keys, reporting each refusal.", WRITE, policy.writes_bucket),
)

METHODS = MethodTable()
for _operation in OPERATIONS:
    METHODS.method(_operation.name, _operation.metadata, _operation.summary, read_only=_operation.read_only, kubemq_targets=_operation.kubemq_targets)(_operation.handler)
REACHES: dict[str, Reaches] = {operation.name: operation.reaches for operation in OPERATIONS}


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
        self._style: ReplyStyle = KUBEMQ_TARGETS

    @classmethod
    def properties_problems(cls, properties: S3Properties) -> dict[str, str]:
        """``allowed_methods`` must name methods of this target: a typo would quietly deny the method meant."""
        try:
            check_method_names(properties.allowed_methods or (), [method.name for method in METHODS])
        except ValueError as exc:
            return {"allowed_methods": str(exc)}
        return {}

    async def init(self, properties: S3Properties, context: TargetContext) -> None:
        """Open the client. ``endpoint: embedded`` arrives already pointed at the running SeaweedFS (``SHARED``, a development service)."""
        await self.close()
        if problems := self.properties_problems(properties):
            raise ValueError("; ".join(f"{name}: {message}" for name, message in problems.items()))
        if properties.embedded:
            raise RuntimeError("endpoint 'embedded' is served by the embedded SeaweedFS development service, which a connector runtime starts")
        credentials = static_credentials(properties)
        endpoint = properties.endpoint
        client = S3Client(properties, context.max_reply_data, context.reply_style)
        try:
            await client.open(credentials, context.max_concurrency)
        except BaseException:
            await self.close()
            raise
        self._client = client
        self._defaults = {"bucket_name": properties.bucket} if properties.bucket else {}
        self._binding = context.binding
        self._style = context.reply_style
        context.log.info(
            "aws.s3 target ready",
            endpoint=endpoint or "aws",
            region=client.region,
            path_style=properties.path_style,
            auth="static keys" if credentials else "AWS default chain",
        )

    def resolve(self, request: Request) -> Call:
        """The request's method with its metadata, the default bucket filled in."""
        return METHODS.resolve(request, self._defaults, self._style)

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
