"""``list_buckets`` and ``list_bucket_items``.

kubemq-targets listed one page (at most 1000 keys) and said nothing about
the rest. Here a listing follows every page up to ``list_max_keys_cap`` and
says when it stopped early (``IsTruncated`` plus ``NextContinuationToken``),
or serves exactly one page when asked to (``max_keys``, ``continuation_token``,
``start_after``). ``search`` filters keys by substring while paging, reading
at most ``list_search_scan_cap`` entries per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from bindings.context import RequestContext
from bindings.errors import InvalidRequestError
from bindings.properties import field
from bindings.target import RequestMetadata
from bindings.wire import Request, Response
from connector.s3 import policy
from connector.s3.client import S3Client
from connector.s3.declaration import KUBEMQ_TARGETS_REPLY, S3Method
from connector.s3.metadata import BucketMetadata
from connector.s3.results import LIST_BUCKETS, LIST_OBJECTS, to_json

S3_PAGE = 1000


class ListBucketsMetadata(RequestMetadata):
    """``list_buckets`` reads no metadata besides ``method``."""


class ListItemsMetadata(BucketMetadata):
    prefix: str | None = field(None, description="Only keys that start with this.", example="reports/2024/")
    delimiter: str | None = field(None, description="Group keys up to this character into `CommonPrefixes` (folders).", example="/")
    search: str | None = field(None, description="Only keys (and common prefixes) containing this text; applied while paging.", example="invoice")
    max_keys: int | None = field(
        None,
        ge=1,
        description="Most entries in the reply. Default: 1000 when paging (`continuation_token`/`start_after`), otherwise `list_max_keys_cap`.",
        example="100",
    )
    continuation_token: str | None = field(None, description="Continue from a previous reply's `NextContinuationToken`.", example="1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
    start_after: str | None = field(None, description="Start listing after this key.", example="reports/2024/03.pdf")
    all_pages: bool = field(
        False,
        alias="all",
        description="Follow every page from the starting point up to `list_max_keys_cap` (the default when no paging key is given).",
        example="true",
    )


@dataclass
class _Listing:
    """Entries gathered over pages, and where the listing stopped."""

    contents: list[dict[str, Any]] = dataclass_field(default_factory=list)
    prefixes: list[dict[str, Any]] = dataclass_field(default_factory=list)
    truncated: bool = False
    next_token: str | None = None
    pages: int = 0
    # What S3 said its first page could hold: the reply's MaxKeys when one page answered, as kubemq-targets' single call reports it.
    page_max_keys: int | None = None

    @property
    def count(self) -> int:
        return len(self.contents) + len(self.prefixes)


async def list_buckets(s3: S3Client, metadata: ListBucketsMetadata, request: Request, context: RequestContext) -> Response:
    """All buckets of the account, with their owner; only those in ``allowed_buckets`` when the binding sets it."""
    output = await s3.api.list_buckets()
    # No bucket is ``null``, as Go marshals the empty list it read from S3.
    output["Buckets"] = [bucket for bucket in output.get("Buckets", []) if s3.policy.allows_bucket(bucket["Name"])] or None
    return Response.ok(to_json(LIST_BUCKETS.apply(output)))


async def list_bucket_items(s3: S3Client, metadata: ListItemsMetadata, request: Request, context: RequestContext) -> Response:
    """A bucket's objects as one ListObjectsV2 output, gathered over as many pages as the request allows."""
    limit = _limit(metadata, s3.properties.list_max_keys_cap)
    listing = await _gather(s3, metadata, limit, s3.properties.list_search_scan_cap)
    output = {
        "CommonPrefixes": listing.prefixes or None,
        "Contents": listing.contents or None,
        "ContinuationToken": metadata.continuation_token,
        "Delimiter": metadata.delimiter,
        "EncodingType": None,
        "IsTruncated": listing.truncated,
        "KeyCount": listing.count,
        "MaxKeys": listing.page_max_keys if listing.pages == 1 and listing.page_max_keys is not None else limit,
        "Name": metadata.bucket_name,
        "NextContinuationToken": listing.next_token,
        "Prefix": metadata.prefix or "",
        "StartAfter": metadata.start_after,
    }
    return Response.ok(to_json(LIST_OBJECTS.apply(output)), bucket=metadata.bucket_name, count=str(listing.count))


def _limit(metadata: ListItemsMetadata, cap: int) -> int:
    if metadata.max_keys is not None and metadata.all_pages:
        raise InvalidRequestError("max_keys and all=true cannot be combined: all=true gathers up to list_max_keys_cap")
    if metadata.max_keys is not None and metadata.max_keys > cap:
        raise InvalidRequestError(f"max_keys {metadata.max_keys} is above this target's list_max_keys_cap ({cap})")
    if metadata.max_keys is not None:
        return metadata.max_keys
    paging = metadata.continuation_token is not None or metadata.start_after is not None
    return min(S3_PAGE, cap) if paging and not metadata.all_pages else cap


async def _gather(s3: S3Client, metadata: ListItemsMetadata, limit: int, scan_cap: int) -> _Listing:
    """Read pages until ``limit`` entries are gathered, a search has read ``scan_cap`` entries, or the listing ends.

    Without ``search`` each page asks for exactly what is still missing, so the
    last page ends where the reply ends and its continuation token is exact.
    With ``search`` full pages are read (the last one cut at ``scan_cap``); if
    one holds more matches than fit, it is read again cut after the last match
    that fits, for the same reason.
    """
    params: dict[str, Any] = {"Bucket": metadata.bucket_name}
    for name, value in (("Prefix", metadata.prefix), ("Delimiter", metadata.delimiter), ("StartAfter", metadata.start_after)):
        if value is not None:
            params[name] = value
    listing = _Listing()
    token = metadata.continuation_token
    scanned = 0
    while True:
        missing = limit - listing.count
        page = await _page(s3, params, token, min(S3_PAGE, scan_cap - scanned) if metadata.search else min(S3_PAGE, missing))
        contents, prefixes = _matching(page, metadata.search)
        if len(contents) + len(prefixes) > missing:
            page = await _page(s3, params, token, _cut(page, metadata.search, missing))
            contents, prefixes = _matching(page, metadata.search)
        scanned += len(page.get("Contents", [])) + len(page.get("CommonPrefixes", []))
        listing.pages += 1
        if listing.page_max_keys is None:
            listing.page_max_keys = page.get("MaxKeys")
        listing.contents += contents
        listing.prefixes += prefixes
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            return listing
        if listing.count >= limit or (metadata.search and scanned >= scan_cap):
            listing.truncated, listing.next_token = True, token
            return listing


async def _page(s3: S3Client, params: dict[str, Any], token: str | None, max_keys: int) -> dict[str, Any]:
    extra = {"ContinuationToken": token} if token else {}
    return await s3.api.list_objects_v2(**params, **extra, MaxKeys=max_keys)  # type: ignore[no-any-return]


def _matching(page: dict[str, Any], search: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    contents = page.get("Contents", [])
    prefixes = page.get("CommonPrefixes", [])
    if search is None:
        return contents, prefixes
    return [c for c in contents if search in c["Key"]], [p for p in prefixes if search in p["Prefix"]]


def _cut(page: dict[str, Any], search: str | None, wanted: int) -> int:
    """How many entries (S3's order: keys and prefixes merged, sorted) a page needs to hold ``wanted`` matches."""
    names = sorted([c["Key"] for c in page.get("Contents", [])] + [p["Prefix"] for p in page.get("CommonPrefixes", [])])
    found = 0
    for position, name in enumerate(names, start=1):
        if search is None or search in name:
            found += 1
            if found == wanted:
                return position
    return len(names)


# The methods of this module, declared once (see declaration.py); the target's table lists them in this order.
LIST_BUCKETS_METHOD = S3Method(
    name="list_buckets",
    metadata=ListBucketsMetadata,
    handler=list_buckets,
    summary="List every bucket of the account.",
    read_only=True,
    reaches=policy.reaches_nothing,
    kubemq_targets=KUBEMQ_TARGETS_REPLY,
    example={},
)
LIST_BUCKET_ITEMS_METHOD = S3Method(
    name="list_bucket_items",
    metadata=ListItemsMetadata,
    handler=list_bucket_items,
    summary="List a bucket's objects: every page up to a cap, or one page.",
    read_only=True,
    reaches=policy.reads_prefix,
    kubemq_targets=KUBEMQ_TARGETS_REPLY,
    example={"bucket_name": "demo"},
)
DECLARED = (
    LIST_BUCKETS_METHOD,
    LIST_BUCKET_ITEMS_METHOD,
)
