"""The ``aws.s3`` target: a drop-in for kubemq-targets' ``aws.s3``, for Amazon S3 and any S3-compatible store.

``METHODS`` is the explicit operation list, derived from the declarations in
the family modules (``DECLARED`` in each; see declaration.py): kubemq-targets'
nine methods first, then the additions.
"""

from __future__ import annotations

import contextlib
from typing import Any

from bindings.context import RequestContext, TargetContext
from bindings.errors import RequestError, TargetError
from bindings.target import Call, MethodTable, Target
from bindings.wire import KUBEMQ_TARGETS, ReplyStyle, Request, Response
from connector.s3 import batch_delete, buckets, items, listing, multipart, tags
from connector.s3.client import S3Client, static_credentials
from connector.s3.declaration import Reaches, S3Method
from connector.s3.errors import translate
from connector.s3.options import S3Properties
from connector.s3.policy import check_method_names

# kubemq-targets' own methods, in the order its unknown-method error lists them: they come first, additions after.
KUBEMQ_TARGETS_ORDER = (
    "list_buckets",
    "list_bucket_items",
    "create_bucket",
    "delete_bucket",
    "upload_item",
    "get_item",
    "delete_item_from_bucket",
    "delete_all_items_from_bucket",
    "copy_item",
)
# The modules declaring the methods (each its ``DECLARED``); a new method is declared in one of them, nothing else.
FAMILIES = (listing, buckets, items, multipart, tags, batch_delete)


def _declared() -> list[S3Method[Any]]:
    declared: list[S3Method[Any]] = [method for family in FAMILIES for method in family.DECLARED]
    known = [method for name in KUBEMQ_TARGETS_ORDER for method in declared if method.name == name]
    return known + [method for method in declared if method.name not in KUBEMQ_TARGETS_ORDER]


DECLARATIONS: tuple[S3Method[Any], ...] = tuple(_declared())
METHODS = MethodTable(DECLARATIONS)
REACHES: dict[str, Reaches] = {method.name: method.reaches for method in DECLARATIONS}


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
            client.policy.check(call.name, REACHES[call.name](call.metadata, call.request), self._binding)

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
