"""Multipart uploads over the bus, one request per S3 step.

A sender too large for one message, or one that wants to resume, drives S3's
own model: ``create_multipart_upload`` (the object's attributes), then
``upload_part`` per part (in any order, any time, retried freely: a part sent
again under its number replaces it), then ``complete_multipart_upload``
(with the part list, or without it to take every uploaded part), or
``abort_multipart_upload``. ``list_parts`` and ``list_multipart_uploads`` show
what is in progress. Parts may also go straight to S3 through ``presign_url``
with ``operation=upload_part``. The connector keeps no state between steps, so
any replica can serve any step.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from bindings.context import RequestContext
from bindings.errors import InvalidRequestError, TargetError
from bindings.properties import field
from bindings.target import RequestMetadata
from bindings.wire import Request, Response
from connector.s3 import policy
from connector.s3.client import S3Client
from connector.s3.declaration import S3Method
from connector.s3.integrity import Digests, stored_checksums
from connector.s3.items import NewObject, finish_upload
from connector.s3.metadata import BucketMetadata, ItemMetadata, WaitMetadata
from connector.s3.results import CREATE_MULTIPART_UPLOAD, LIST_MULTIPART_UPLOADS, LIST_PARTS, UPLOAD_PART, to_json
from connector.s3.transfer import MAX_PARTS, PayloadReader

PAGE = 1000  # the most ListParts and ListMultipartUploads return per call
PART_CHECKSUMS = ("ChecksumCRC32", "ChecksumCRC32C", "ChecksumCRC64NVME", "ChecksumSHA1", "ChecksumSHA256")


class CreateMultipartMetadata(NewObject, ItemMetadata):
    checksum_algorithm: Literal["SHA256"] | None = field(
        None,
        description="`SHA256`: the parts carry SHA-256 checksums (`checksum_sha256` on every `upload_part`). Amazon S3 accepts part "
        "checksums only in an upload created with their algorithm, and then requires one on every part.",
        example="SHA256",
    )


class UploadMetadata(ItemMetadata):
    upload_id: str = field(description="The multipart upload, as `create_multipart_upload` returned it.", example="VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA")


class PartNumber(RequestMetadata):
    part_number: int = field(ge=1, le=MAX_PARTS, description="The part's number, 1 to 10,000: parts are joined in this order. The same number again replaces the part.", example="1")


class UploadPartMetadata(Digests, PartNumber, UploadMetadata):
    """Bucket, key, upload id, part number, and the sender's digests of the part (optional)."""


class CompleteMetadata(WaitMetadata, UploadMetadata):
    """Bucket, key and upload id; the part list is the request's data (optional)."""


class AbortMetadata(UploadMetadata):
    """Bucket, key and upload id of the upload to drop."""


class ListPartsMetadata(UploadMetadata):
    max_parts: int | None = field(None, ge=1, le=MAX_PARTS, description="Most parts in the reply. Default: 1000 after `part_number_marker`, else every part.", example="100")
    part_number_marker: int | None = field(None, ge=0, le=MAX_PARTS, description="List the parts after this number (a previous reply's `NextPartNumberMarker`).", example="100")


class ListUploadsMetadata(BucketMetadata):
    prefix: str | None = field(None, description="Only uploads of keys that start with this.", example="videos/")
    max_uploads: int | None = field(
        None,
        ge=1,
        description="Most uploads in the reply. Default: 1000 after a marker, else every upload up to `list_max_keys_cap`.",
        example="100",
    )
    key_marker: str | None = field(None, description="Continue after this key (a previous reply's `NextKeyMarker`).", example="videos/a.mp4")
    upload_id_marker: str | None = field(None, description="With `key_marker`: continue after this upload of that key (a previous reply's `NextUploadIdMarker`).", example="VXBsb2FkSWQ")


class CompletedPart(BaseModel):
    """One entry of the part list: S3's CompletedPart. Other fields (a ``list_parts`` reply's ``Size``, ``LastModified``) are ignored."""

    model_config = ConfigDict(extra="ignore")

    PartNumber: int = Field(ge=1, le=MAX_PARTS)
    ETag: str = Field(min_length=1)
    ChecksumCRC32: str | None = None
    ChecksumCRC32C: str | None = None
    ChecksumCRC64NVME: str | None = None
    ChecksumSHA1: str | None = None
    ChecksumSHA256: str | None = None


PART_LIST = TypeAdapter(list[CompletedPart])
PART_LIST_FORM = 'a JSON array of parts, [{"PartNumber": 1, "ETag": "..."}, ...]'


@dataclass(frozen=True)
class Paging:
    """How one S3 listing pages: the list it returns, its page-size parameter, and next-marker field -> request parameter."""

    items: str
    size: str
    markers: dict[str, str]


PARTS_PAGING = Paging("Parts", "MaxParts", {"NextPartNumberMarker": "PartNumberMarker"})
UPLOADS_PAGING = Paging("Uploads", "MaxUploads", {"NextKeyMarker": "KeyMarker", "NextUploadIdMarker": "UploadIdMarker"})


async def create_multipart_upload(s3: S3Client, metadata: CreateMultipartMetadata, request: Request, context: RequestContext) -> Response:
    """CreateMultipartUpload with every attribute ``upload_item`` takes; the reply's ``upload_id`` names the upload in the next steps."""
    args = metadata.object_args(s3.properties)
    if metadata.checksum_algorithm is not None:
        args["ChecksumAlgorithm"] = metadata.checksum_algorithm
    output = await s3.api.create_multipart_upload(Bucket=metadata.bucket_name, Key=metadata.item_name, **args)
    return Response.ok(to_json(CREATE_MULTIPART_UPLOAD.apply(output)), bucket=metadata.bucket_name, key=metadata.item_name, upload_id=output["UploadId"])


async def upload_part(s3: S3Client, metadata: UploadPartMetadata, request: Request, context: RequestContext) -> Response:
    """UploadPart of the request's data, after checking the sender's digests of it."""
    await metadata.verify(request)
    output = await s3.api.upload_part(
        Bucket=metadata.bucket_name,
        Key=metadata.item_name,
        UploadId=metadata.upload_id,
        PartNumber=metadata.part_number,
        Body=PayloadReader(request),  # streamed: data still in the message as base64 is decoded a read at a time
        **metadata.digest_args(),
    )
    return Response.ok(
        to_json(UPLOAD_PART.apply(output)),
        bucket=metadata.bucket_name,
        key=metadata.item_name,
        upload_id=metadata.upload_id,
        part_number=str(metadata.part_number),
        etag=output["ETag"],
        **stored_checksums(output),
    )


async def complete_multipart_upload(s3: S3Client, metadata: CompleteMetadata, request: Request, context: RequestContext) -> Response:
    """CompleteMultipartUpload with the parts given as data, or with every part S3 lists for the upload."""
    parts = _given_parts(request.data) if request.data else _latest_parts(await _listed_parts(s3, metadata), metadata.upload_id)
    output = await s3.api.complete_multipart_upload(Bucket=metadata.bucket_name, Key=metadata.item_name, UploadId=metadata.upload_id, MultipartUpload={"Parts": parts})
    return await finish_upload(s3, metadata, output, metadata.upload_id, context)


async def abort_multipart_upload(s3: S3Client, metadata: AbortMetadata, request: Request, context: RequestContext) -> Response:
    """AbortMultipartUpload: the parts are dropped and stop costing storage."""
    await s3.api.abort_multipart_upload(Bucket=metadata.bucket_name, Key=metadata.item_name, UploadId=metadata.upload_id)
    return Response.ok(None, bucket=metadata.bucket_name, key=metadata.item_name, upload_id=metadata.upload_id)


async def list_parts(s3: S3Client, metadata: ListPartsMetadata, request: Request, context: RequestContext) -> Response:
    """The upload's parts as one ListParts output, over as many pages as the request allows."""
    params: dict[str, Any] = {"Bucket": metadata.bucket_name, "Key": metadata.item_name, "UploadId": metadata.upload_id}
    if metadata.part_number_marker is not None:
        params["PartNumberMarker"] = metadata.part_number_marker
    limit = _limit(metadata.max_parts, metadata.part_number_marker is not None, MAX_PARTS)
    parts, last = await gather_pages(s3.api.list_parts, params, PARTS_PAGING, limit)
    output = {**last, "Parts": parts or None, "PartNumberMarker": metadata.part_number_marker, "MaxParts": limit}
    return Response.ok(to_json(LIST_PARTS.apply(output)), bucket=metadata.bucket_name, key=metadata.item_name, upload_id=metadata.upload_id, count=str(len(parts)))


async def list_multipart_uploads(s3: S3Client, metadata: ListUploadsMetadata, request: Request, context: RequestContext) -> Response:
    """The bucket's uploads in progress (under ``prefix``) as one ListMultipartUploads output."""
    cap = s3.properties.list_max_keys_cap
    if metadata.max_uploads is not None and metadata.max_uploads > cap:
        raise InvalidRequestError(f"max_uploads {metadata.max_uploads} is above this target's list_max_keys_cap ({cap})")
    given = {"Prefix": metadata.prefix, "KeyMarker": metadata.key_marker, "UploadIdMarker": metadata.upload_id_marker}
    params = {"Bucket": metadata.bucket_name, **{name: value for name, value in given.items() if value is not None}}
    limit = _limit(metadata.max_uploads, metadata.key_marker is not None or metadata.upload_id_marker is not None, cap)
    uploads, last = await gather_pages(s3.api.list_multipart_uploads, params, UPLOADS_PAGING, limit)
    output = {**last, "Uploads": uploads or None, "KeyMarker": metadata.key_marker, "UploadIdMarker": metadata.upload_id_marker, "MaxUploads": limit}
    return Response.ok(to_json(LIST_MULTIPART_UPLOADS.apply(output)), bucket=metadata.bucket_name, count=str(len(uploads)))


async def gather_pages(call: Callable[..., Awaitable[dict[str, Any]]], params: dict[str, Any], paging: Paging, limit: int) -> tuple[list[Any], dict[str, Any]]:
    """Call ``call`` page after page until ``limit`` items are gathered or the listing ends; the items and the last page.

    Each page asks for exactly what is still missing, so the last page's
    ``IsTruncated`` and next markers say where the reply ends. A store that
    claims more pages but gives no marker to reach them ends the listing.
    """
    gathered: list[Any] = []
    while True:
        page = await call(**params, **{paging.size: min(PAGE, limit - len(gathered))})
        gathered += page.get(paging.items, [])
        markers = {parameter: page[name] for name, parameter in paging.markers.items() if page.get(name) not in (None, "")}
        if not page.get("IsTruncated") or len(gathered) >= limit or not markers:
            return gathered, page
        params = {**params, **markers}


def _limit(asked: int | None, paging: bool, cap: int) -> int:
    """As ``list_bucket_items``: what was asked, else one page after a marker, else everything up to the cap."""
    if asked is not None:
        return asked
    return min(PAGE, cap) if paging else cap


async def _listed_parts(s3: S3Client, metadata: CompleteMetadata) -> list[dict[str, Any]]:
    """Every listed part; a listing the store cut short would complete a truncated object, so it is refused."""
    params = {"Bucket": metadata.bucket_name, "Key": metadata.item_name, "UploadId": metadata.upload_id}
    parts, last = await gather_pages(s3.api.list_parts, params, PARTS_PAGING, sys.maxsize)
    if last.get("IsTruncated"):
        raise TargetError(
            f"IncompleteListing: the store listed {len(parts)} parts of upload {metadata.upload_id} and claims more without a marker to reach them; complete with a part list",
            code="IncompleteListing",
        )
    return parts


def _latest_parts(listed: list[dict[str, Any]], upload_id: str) -> list[dict[str, Any]]:
    """One entry per part number, in order, for CompleteMultipartUpload.

    S3 lists each part number once. SeaweedFS keeps every upload of a part
    number and lists them all (completion picks the one whose ETag is given),
    so the newest copy is taken; copies from the same second cannot be told
    apart, and the request is refused rather than guessed.
    """
    if not listed:
        raise InvalidRequestError(f"upload {upload_id} has no parts to complete with; upload parts first (or abort it)")
    by_number: dict[int, list[dict[str, Any]]] = {}
    for part in listed:
        by_number.setdefault(part["PartNumber"], []).append(part)
    chosen = []
    for number in sorted(by_number):
        copies = by_number[number]
        newest = max(copy["LastModified"] for copy in copies)
        latest = [copy for copy in copies if copy["LastModified"] == newest]
        if len({copy["ETag"] for copy in latest}) > 1:
            raise TargetError(
                f"AmbiguousPart: part {number} of upload {upload_id} is listed {len(copies)} times, the newest from the same second "
                f"(ETags {', '.join(sorted(copy['ETag'] for copy in latest))}): the store keeps every upload of a part; "
                "complete with a part list naming the ETag to use",
                code="AmbiguousPart",
            )
        part = latest[0]
        chosen.append({"PartNumber": number, "ETag": part["ETag"], **{name: part[name] for name in PART_CHECKSUMS if part.get(name)}})
    return chosen


def _given_parts(data: bytes) -> list[dict[str, Any]]:
    """The request's part list, checked and put in part-number order (S3 requires ascending order)."""
    try:
        parts = PART_LIST.validate_json(data)
    except ValidationError as exc:
        problem = exc.errors(include_url=False)[0]
        where = ".".join(str(step) for step in problem["loc"])
        raise InvalidRequestError(f"error parsing data, {PART_LIST_FORM} is expected: {where + ': ' if where else ''}{problem['msg']}") from None
    if not parts:
        raise InvalidRequestError(f"error parsing data, the part list is empty; send {PART_LIST_FORM}, or no data to complete with every uploaded part")
    repeated = sorted(number for number, count in Counter(part.PartNumber for part in parts).items() if count > 1)
    if repeated:
        raise InvalidRequestError(f"error parsing data, part {repeated[0]} is listed more than once")
    return [part.model_dump(exclude_none=True) for part in sorted(parts, key=lambda part: part.PartNumber)]


# The methods of this module, declared once (see declaration.py); the target's table lists them in this order.
CREATE_MULTIPART_UPLOAD_METHOD = S3Method(
    name="create_multipart_upload",
    metadata=CreateMultipartMetadata,
    handler=create_multipart_upload,
    summary="Start a multipart upload; its upload_id names it in the next steps.",
    reaches=policy.writes_item,
    example={"bucket_name": "demo", "item_name": "dropped.bin"},
)
UPLOAD_PART_METHOD = S3Method(
    name="upload_part",
    metadata=UploadPartMetadata,
    handler=upload_part,
    summary="Store the request data as one part of a multipart upload.",
    reaches=policy.writes_item,
    example={"bucket_name": "demo", "item_name": "big.bin", "upload_id": "$UPLOAD_ID", "part_number": "2"},
)
COMPLETE_MULTIPART_UPLOAD_METHOD = S3Method(
    name="complete_multipart_upload",
    metadata=CompleteMetadata,
    handler=complete_multipart_upload,
    summary="Join the parts into the object (the parts given, or every uploaded part).",
    reaches=policy.writes_item,
    example={"bucket_name": "demo", "item_name": "big.bin", "upload_id": "$UPLOAD_ID"},
)
ABORT_MULTIPART_UPLOAD_METHOD = S3Method(
    name="abort_multipart_upload",
    metadata=AbortMetadata,
    handler=abort_multipart_upload,
    summary="Drop a multipart upload and its parts.",
    reaches=policy.writes_item,
    example={"bucket_name": "demo", "item_name": "dropped.bin", "upload_id": "$DROPPED"},
)
LIST_PARTS_METHOD = S3Method(
    name="list_parts",
    metadata=ListPartsMetadata,
    handler=list_parts,
    summary="List the parts of a multipart upload.",
    read_only=True,
    reaches=policy.reads_item,
    example={"bucket_name": "demo", "item_name": "big.bin", "upload_id": "$UPLOAD_ID", "max_parts": "100"},
)
LIST_MULTIPART_UPLOADS_METHOD = S3Method(
    name="list_multipart_uploads",
    metadata=ListUploadsMetadata,
    handler=list_multipart_uploads,
    summary="List a bucket's multipart uploads in progress.",
    read_only=True,
    reaches=policy.reads_prefix,
    example={"bucket_name": "demo", "prefix": "big"},
)
DECLARED = (
    CREATE_MULTIPART_UPLOAD_METHOD,
    UPLOAD_PART_METHOD,
    COMPLETE_MULTIPART_UPLOAD_METHOD,
    ABORT_MULTIPART_UPLOAD_METHOD,
    LIST_PARTS_METHOD,
    LIST_MULTIPART_UPLOADS_METHOD,
)
