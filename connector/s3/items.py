"""Object methods: upload, get, head, delete, copy, presign.

kubemq-targets' request keys keep their meaning and their replies keep their
shape; what is added is optional: object attributes, tags, encryption,
digests and conditional create on upload, decoding and ranges on get,
``head_item``, ``presign_url`` (also for one part of a multipart upload), and
a copy that takes the source as ``bucket/key`` (with any characters in the
key) or as separate keys, and switches to a multipart copy for huge sources.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol
from urllib.parse import quote, unquote

import aiohttp
import structlog
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from pydantic import PrivateAttr, field_validator, model_validator

from bindings.context import RequestContext
from bindings.errors import TargetError
from bindings.properties import field
from bindings.target import KubemqTargetsReply
from bindings.wire import Request, Response
from connector.s3 import policy
from connector.s3.client import S3Client
from connector.s3.connection import MIB
from connector.s3.content import Decode, Form, decode_content, expected_form, largest_content, reply_size
from connector.s3.declaration import KUBEMQ_TARGETS_REPLY, S3Method
from connector.s3.encryption import Defaults, Encryption
from connector.s3.errors import CONNECTION_ERRORS, reply_too_large
from connector.s3.integrity import Digests, stored_checksums
from connector.s3.metadata import ITEM_NAME, ItemMetadata, ObjectAttributes, VersionMetadata, WaitMetadata
from connector.s3.results import COPY_OBJECT, DELETE_OBJECT, HEAD_OBJECT, rfc3339, to_json
from connector.s3.tags import Tagging
from connector.s3.transfer import MAX_PARTS, BodyTooLarge, IncompleteBody, multipart_upload, part_size_for, read_body

log = structlog.get_logger("connector.s3")
# How a body read fails when its connection stalls or breaks: fetching the object again may work.
BODY_BREAKS = (*CONNECTION_ERRORS, IncompleteBody, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError)

DEFAULT_STORAGE_CLASS = "STANDARD"  # what S3 means when HEAD has no x-amz-storage-class
COPY_OBJECT_LIMIT = 5 * 1024 * MIB  # the largest source CopyObject takes
# Attributes a multipart copy must carry over itself (CopyObject does this on its own).
COPIED_ATTRIBUTES = ("CacheControl", "ContentDisposition", "ContentEncoding", "ContentLanguage", "ContentType", "Expires", "Metadata")
# kubemq-targets' senders write copy_source as AWS takes it: URL-encoded, with an optional version.
VERSION_QUERY = "?versionId="
URL_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
PRESIGN_OPERATIONS = {
    "get": ("get_object", "GET"),
    "put": ("put_object", "PUT"),
    "delete": ("delete_object", "DELETE"),
    "upload_part": ("upload_part", "PUT"),
}
# What S3 says about an object's encryption, as reply metadata.
ENCRYPTION_FIELDS = {"ServerSideEncryption": "server_side_encryption", "SSEKMSKeyId": "sse_kms_key_id"}


class NewObject(Encryption, Tagging, ObjectAttributes):
    """Everything a new object is created with besides its bytes (PutObject and CreateMultipartUpload alike)."""

    def object_args(self, defaults: Defaults) -> dict[str, Any]:
        return {**self.s3_args(), **self.tagging_args(), **self.encryption_args(defaults)}


class UploadItemMetadata(WaitMetadata, Digests, NewObject, ItemMetadata):
    file_name: str | None = field(None, description="File name; used as the key when `item_name` is left out.", example="q1.pdf")
    if_none_match: Literal["*"] | None = field(None, description="`*`: create only if the key does not exist yet (412 PreconditionFailed otherwise), safe under redelivery.", example="*")

    @model_validator(mode="before")
    @classmethod
    def _key_from_file_name(cls, values: Any) -> Any:
        if isinstance(values, dict) and not values.get(ITEM_NAME) and values.get("file_name"):
            return {**values, ITEM_NAME: values["file_name"]}
        return values

    @classmethod
    def missing_hint(cls, key: str) -> str:
        """The way out kubemq-targets did not have: ``file_name`` names the object too."""
        return "or give file_name, which then names the object" if key == ITEM_NAME else ""


class GetItemMetadata(VersionMetadata, ItemMetadata):
    decode: Decode | None = field(
        None,
        description='Return the content as JSON `{"json"|"text"|"base64": ...}` instead of raw bytes; `auto` decides by Content-Type.',
        example="auto",
    )
    range: str | None = field(None, pattern=r"^bytes=(\d+-\d*|-\d+)$", description="Only these bytes (HTTP Range syntax, one range).", example="bytes=0-1023")


class HeadItemMetadata(VersionMetadata, ItemMetadata):
    checksums: bool = field(
        True,
        description="Ask for the object's stored checksums (`ChecksumMode=ENABLED`); on Amazon S3 that needs `kms:Decrypt` for SSE-KMS objects.",
        example="false",
    )


class DeleteItemMetadata(WaitMetadata, VersionMetadata, ItemMetadata):
    """Bucket, key, optional version, and whether to wait until the key is gone."""


class CopyItemMetadata(WaitMetadata, Encryption, ObjectAttributes, ItemMetadata):
    copy_source: str = field(
        description="Source as `source-bucket/key`: a plain key (any characters), or URL-encoded as sent to AWS by kubemq-targets "
        "(a key holding `%XX` escapes is decoded, so a literal `%` is written `%25`), optionally ending in `?versionId=<id>`; "
        "or a bare bucket name to copy `item_name` from that bucket. Not needed with `source_bucket`/`source_item`.",
        example="archive/reports/2024/q1%20final.pdf?versionId=3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
    )
    source_bucket: str | None = field(None, description="Source bucket (default: `bucket_name`); alternative to `copy_source`.", example="archive")
    source_item: str | None = field(None, description="Source key (default: `item_name`); alternative to `copy_source`.", example="reports/2024/q1.pdf")
    metadata_directive: Literal["COPY", "REPLACE"] | None = field(
        None,
        description="`COPY` keeps the source's metadata; `REPLACE` sets the attributes given here. Default: REPLACE when any attribute is given, else COPY.",
        example="REPLACE",
    )
    _source: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("metadata_directive", mode="before")
    @classmethod
    def _any_case(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _source_from_parts(cls, values: Any) -> Any:
        """``source_bucket``/``source_item`` become ``copy_source``, the key URL-encoded so it reads back exactly (``%``, ``?`` included).

        Bucket names cannot hold ``/``, so the split is exact.
        """
        parts = (values.get("source_bucket"), values.get("source_item")) if isinstance(values, dict) else (None, None)
        if not any(parts):
            return values
        if values.get("copy_source"):
            raise ValueError("give either copy_source or source_bucket/source_item, not both")
        bucket, item = parts
        return {**values, "copy_source": f"{bucket or values.get('bucket_name', '')}/{quote(item or values.get(ITEM_NAME, ''), safe='/')}"}

    @model_validator(mode="after")
    def _directive_fits(self) -> CopyItemMetadata:
        if self.metadata_directive == "COPY" and self.has_metadata:
            raise ValueError("new attributes (content_type, content_disposition, cache_control, user metadata) require metadata_directive replace")
        return self

    @model_validator(mode="after")
    def _read_source(self) -> CopyItemMetadata:
        self._source = _copy_source(self.copy_source, self.item_name)
        return self

    @property
    def source(self) -> dict[str, str]:
        """CopySource as a dict, so botocore encodes the key (spaces, unicode) itself."""
        return self._source

    @property
    def directive(self) -> str:
        return self.metadata_directive or ("REPLACE" if self.has_metadata else "COPY")


class PresignUrlMetadata(ItemMetadata):
    operation: Literal["get", "put", "delete", "upload_part"] = field(
        "get", description="What the URL allows: download, upload or delete the object, or upload one part of a multipart upload.", example="put"
    )
    expires_seconds: int = field(86400, ge=1, le=604800, description="Seconds the URL stays valid (SigV4 allows up to 7 days).", example="3600")
    content_type: str | None = field(None, description="For `put`: the Content-Type the uploader must send (it is signed).", example="image/png")
    upload_id: str | None = field(None, description="For `upload_part`: the multipart upload (from `create_multipart_upload`).", example="VXBsb2FkSWQ")
    part_number: int | None = field(None, ge=1, le=MAX_PARTS, description="For `upload_part`: the part's number, 1 to 10,000.", example="1")

    @model_validator(mode="after")
    def _keys_fit_operation(self) -> PresignUrlMetadata:
        if self.content_type is not None and self.operation != "put":
            raise ValueError("content_type applies only to operation=put")
        part = {"upload_id": self.upload_id, "part_number": self.part_number}
        if self.operation == "upload_part":
            missing = [name for name, value in part.items() if value is None]
            if missing:
                raise ValueError(f"operation=upload_part needs {' and '.join(missing)}")
        elif any(value is not None for value in part.values()):
            raise ValueError("upload_id and part_number apply only to operation=upload_part")
        return self


async def upload_item(s3: S3Client, metadata: UploadItemMetadata, request: Request, context: RequestContext) -> Response:
    """PutObject, or a multipart upload above ``multipart_threshold_mib``; the sender's digests are checked first."""
    await metadata.verify(request)
    bucket, key = metadata.bucket_name, metadata.item_name
    args = metadata.object_args(s3.properties)
    if metadata.if_none_match:
        args["IfNoneMatch"] = metadata.if_none_match
    properties = s3.properties
    upload_id = ""
    if request.size > properties.multipart_threshold_mib * MIB:
        output, upload_id = await multipart_upload(s3.api, bucket, key, request, args, properties.multipart_part_size_mib * MIB, properties.multipart_concurrency)
    else:
        output = await _put(s3, bucket, key, request, args, metadata.digest_args())
    return await finish_upload(s3, metadata, output, upload_id, context)


async def _put(s3: S3Client, bucket: str, key: str, request: Request, args: dict[str, Any], digests: dict[str, str]) -> dict[str, Any]:
    """PutObject: on the direct path (``direct.py``) when nothing but the bytes is asked for."""
    if s3.direct is not None and not args and not digests:
        output = await s3.direct.put_object(bucket, key, request.data)
        if output is not None:
            return output
    return await s3.api.put_object(Bucket=bucket, Key=key, Body=request.data, **args, **digests)  # type: ignore[no-any-return]


class Stored(Protocol):
    """What a finished upload's reply needs from its request (``upload_item``'s or ``complete_multipart_upload``'s)."""

    bucket_name: str
    item_name: str
    wait_for_completion: bool


async def finish_upload(s3: S3Client, metadata: Stored, output: dict[str, Any], upload_id: str, context: RequestContext) -> Response:
    """kubemq-targets' upload reply for a stored object (after waiting for it, if asked), with its checksums and encryption."""
    bucket, key = metadata.bucket_name, metadata.item_name
    if metadata.wait_for_completion:
        await s3.wait("object_exists", f"object {bucket}/{key} to exist", context.remaining(), Bucket=bucket, Key=key)
    link = s3.object_url(bucket, key)
    result = {"Location": link, "VersionID": output.get("VersionId"), "UploadID": upload_id, "ETag": output.get("ETag")}
    described = {**_present(etag=output.get("ETag"), version_id=output.get("VersionId")), **stored_checksums(output), **_encryption(output)}
    return Response.ok(to_json(result), bucket=bucket, key=key, link=link, **described)


async def get_item(s3: S3Client, metadata: GetItemMetadata, request: Request, context: RequestContext) -> Response:
    """The object's bytes (or, with ``decode``, its content as JSON), plus what describes it in the metadata.

    An object whose reply the source cannot send is refused before its body
    is read (by Content-Length, which is the range's length for a range), so
    it never fills memory; a decoded reply is measured again once built,
    since escaping can grow it.
    """
    params = _present(Range=metadata.range, VersionId=metadata.version_id)
    limit = s3.max_reply_data
    output, body = await _whole_object(s3, metadata, params, limit)
    described = _describe(output)
    if metadata.decode is None:
        return Response.ok(body, bucket=metadata.bucket_name, key=metadata.item_name, **described)  # type: ignore[arg-type]
    content = decode_content(body, output.get("ContentType"), metadata.decode, metadata.item_name)
    data = to_json(content)
    if limit is not None and len(data) > limit:
        (decoded_as,) = content
        raise _too_large(metadata, len(body), decoded_as, limit, len(data))
    return Response.ok(data, bucket=metadata.bucket_name, key=metadata.item_name, **described)


async def _whole_object(s3: S3Client, metadata: GetItemMetadata, params: dict[str, Any], limit: int | None) -> tuple[dict[str, Any], bytearray]:
    """GetObject and its whole body, within the reply limit.

    botocore retries a call only until its headers arrive. A body that stalls
    past ``read_timeout_seconds`` or breaks off is fetched again here, on a
    new connection (the broken one is closed, not pooled), within the same
    ``max_attempts``.
    """
    attempt = 1
    while True:
        output, read = await _get_object(s3, metadata, params)
        try:
            return output, await _body_within(output, read, metadata, limit)
        except BODY_BREAKS as exc:
            if attempt >= s3.properties.max_attempts:
                raise
            log.info("object body broke off; fetching it again", bucket=metadata.bucket_name, key=metadata.item_name, attempt=attempt, error=f"{type(exc).__name__}: {exc}")
            attempt += 1


ReadBody = Callable[[int | None], Awaitable[bytearray]]


async def _get_object(s3: S3Client, metadata: GetItemMetadata, params: dict[str, Any]) -> tuple[dict[str, Any], ReadBody]:
    """GetObject's output and what reads its body, ``read(most)``: on the direct path (``direct.py``) where it takes the call."""
    if s3.direct is not None:
        opened = await s3.direct.get_object(metadata.bucket_name, metadata.item_name, byte_range=metadata.range, version_id=metadata.version_id)
        if opened is not None:
            return opened
    output = await s3.api.get_object(Bucket=metadata.bucket_name, Key=metadata.item_name, **params)
    return output, functools.partial(read_body, output)


async def _body_within(output: dict[str, Any], read: ReadBody, metadata: GetItemMetadata, limit: int | None) -> bytearray:
    """The body of a GetObject; refused before it fills memory when its reply would exceed ``limit``."""
    if limit is None:
        return await read(None)
    form = expected_form(output.get("ContentType"), metadata.decode)
    try:
        return await read(largest_content(limit, form))
    except BodyTooLarge as exc:
        raise _too_large(metadata, exc.length, form, limit) from None


def _too_large(metadata: GetItemMetadata, length: int | None, form: Form | None, limit: int, reply: int | None = None) -> TargetError:
    """The refusal naming the object (or range), its size, the reply it would make and the limit."""
    subject = f"object {metadata.bucket_name}/{metadata.item_name}"
    if metadata.range is not None:
        subject = f"{metadata.range} of {subject}"
    piece = largest_content(limit, form)
    if length is None:  # the store announced no length; reading stopped at the bound
        size = f"more than {piece} bytes"
    elif form is None:
        size = f"{length} bytes"
    else:
        size = f"{length} bytes, a {reply or reply_size(length, form)}-byte reply as {form}"
    return reply_too_large(subject, size, limit, piece)


async def head_item(s3: S3Client, metadata: HeadItemMetadata, request: Request, context: RequestContext) -> Response:
    """Size, type, ETag, dates, storage class, version and user metadata, without the body."""
    params = _present(VersionId=metadata.version_id, ChecksumMode="ENABLED" if metadata.checksums else None)
    output = await s3.head_object(metadata.bucket_name, metadata.item_name, **params)
    output.setdefault("StorageClass", DEFAULT_STORAGE_CLASS)
    described = {**_describe(output), **stored_checksums(output), **_encryption(output)}
    return Response.ok(to_json(HEAD_OBJECT.apply(output)), bucket=metadata.bucket_name, key=metadata.item_name, **described)


async def delete_item_from_bucket(s3: S3Client, metadata: DeleteItemMetadata, request: Request, context: RequestContext) -> Response:
    """DeleteObject (S3 answers success for a key that does not exist, and so does this)."""
    bucket, key = metadata.bucket_name, metadata.item_name
    output = await s3.api.delete_object(Bucket=bucket, Key=key, **_present(VersionId=metadata.version_id))
    if metadata.wait_for_completion:
        await s3.wait("object_not_exists", f"object {bucket}/{key} to be deleted", context.remaining(), Bucket=bucket, Key=key)
    return Response.ok(to_json(DELETE_OBJECT.apply(output)), bucket=bucket, key=key)


async def copy_item(s3: S3Client, metadata: CopyItemMetadata, request: Request, context: RequestContext) -> Response:
    """CopyObject, or a managed multipart copy for sources above ``copy_multipart_threshold_mib``.

    At the default threshold (CopyObject's own 5 GiB limit) CopyObject is
    tried straight away, one call as kubemq-targets makes it, with S3's own
    errors; only a source S3 refuses as too large is then copied part by part.
    A lower threshold needs the source's size first (a HEAD).
    """
    bucket, key, source = metadata.bucket_name, metadata.item_name, metadata.source
    threshold = s3.properties.copy_multipart_threshold_mib * MIB
    if threshold >= COPY_OBJECT_LIMIT:
        try:
            output = await _copy_object(s3, metadata)
        except ClientError as exc:
            if not _too_large_to_copy(exc):
                raise
            output = await _multipart_copy(s3, metadata, await _head_source(s3, source), threshold)
    else:
        head = await _head_source(s3, source)
        output = await (_copy_object(s3, metadata) if head["ContentLength"] < threshold else _multipart_copy(s3, metadata, head, threshold))
    if metadata.wait_for_completion:
        await s3.wait("object_exists", f"object {bucket}/{key} to exist", context.remaining(), Bucket=bucket, Key=key)
    return Response.ok(to_json(COPY_OBJECT.apply(output)), bucket=bucket, key=key)


async def _copy_object(s3: S3Client, metadata: CopyItemMetadata) -> dict[str, Any]:
    args = {**metadata.s3_args(), **metadata.encryption_args(s3.properties)}
    return await s3.api.copy_object(Bucket=metadata.bucket_name, Key=metadata.item_name, CopySource=metadata.source, MetadataDirective=metadata.directive, **args)  # type: ignore[no-any-return]


async def _head_source(s3: S3Client, source: dict[str, str]) -> dict[str, Any]:
    return await s3.head_object(source["Bucket"], source["Key"], **_present(VersionId=source.get("VersionId")))


def _too_large_to_copy(exc: ClientError) -> bool:
    """S3's refusal of a CopyObject source past 5 GiB (``InvalidRequest``, or ``EntityTooLarge`` on some stores)."""
    error = exc.response.get("Error", {})
    code, message = error.get("Code"), str(error.get("Message", ""))
    return code == "EntityTooLarge" or (code == "InvalidRequest" and "copy source is larger than the maximum allowable size" in message)


async def _multipart_copy(s3: S3Client, metadata: CopyItemMetadata, head: dict[str, Any], threshold: int) -> dict[str, Any]:
    """aioboto3's managed copy (UploadPartCopy); it does not carry the source's attributes over, so pass them for COPY."""
    args = {**metadata.s3_args(), **metadata.encryption_args(s3.properties)}
    if metadata.directive == "COPY":
        args = {**{name: head[name] for name in COPIED_ATTRIBUTES if name in head}, **args}
    size = part_size_for(head["ContentLength"], s3.properties.copy_part_size_mib * MIB)
    config = TransferConfig(multipart_threshold=threshold, multipart_chunksize=size, max_concurrency=s3.properties.multipart_concurrency)
    await s3.api.copy(metadata.source, metadata.bucket_name, metadata.item_name, ExtraArgs=args, Config=config)
    copied = await s3.head_object(metadata.bucket_name, metadata.item_name)
    return {"CopyObjectResult": {"ETag": copied.get("ETag"), "LastModified": copied.get("LastModified")}, "VersionId": copied.get("VersionId")}


async def presign_url(s3: S3Client, metadata: PresignUrlMetadata, request: Request, context: RequestContext) -> Response:
    """A SigV4 URL that lets anyone holding it GET, PUT or DELETE one object (or PUT one part of an upload) until it expires.

    A URL stops working when the credentials that signed it expire, so with
    temporary credentials its validity is cut to theirs: ``expires_at`` and
    the URL's own ``X-Amz-Expires`` then tell the truth.
    """
    client_method, http_method = PRESIGN_OPERATIONS[metadata.operation]
    part = _present(ContentType=metadata.content_type, UploadId=metadata.upload_id, PartNumber=metadata.part_number)
    params = {"Bucket": metadata.bucket_name, "Key": metadata.item_name, **part}
    credentials_expire = await s3.credentials_expiry()
    signed_at = datetime.now(UTC).replace(microsecond=0)  # SigV4 dates have whole seconds
    expires_seconds = metadata.expires_seconds
    if credentials_expire is not None:
        expires_seconds = max(1, min(expires_seconds, int((credentials_expire - signed_at).total_seconds())))
    url = await s3.api.generate_presigned_url(client_method, Params=params, ExpiresIn=expires_seconds, HttpMethod=http_method)
    result: dict[str, Any] = {"url": url, "method": http_method, "expires_at": rfc3339(signed_at + timedelta(seconds=expires_seconds))}
    if metadata.content_type is not None:
        result["headers"] = {"Content-Type": metadata.content_type}
    return Response.ok(to_json(result), bucket=metadata.bucket_name, key=metadata.item_name)


def _describe(output: dict[str, Any]) -> dict[str, str]:
    """Reply metadata describing an object, from a GetObject or HeadObject output."""
    described = {
        "content_type": output.get("ContentType", ""),
        "content_length": str(output.get("ContentLength", 0)),
        "etag": output.get("ETag", ""),
        "last_modified": rfc3339(output["LastModified"]) if "LastModified" in output else "",
    }
    return {**described, **_present(version_id=output.get("VersionId"))}


def _encryption(output: dict[str, Any]) -> dict[str, str]:
    return {key: str(output[name]) for name, key in ENCRYPTION_FIELDS.items() if output.get(name)}


def _copy_source(text: str, default_key: str) -> dict[str, str]:
    """``bucket/key[?versionId=id]`` (or a bare bucket: the key is ``default_key``) as CopySource's parts.

    kubemq-targets handed ``copy_source`` to AWS as is, so its senders
    URL-encode the key and may add ``?versionId=``; plain keys are read as written.
    """
    path, marker, version = text.rpartition(VERSION_QUERY)
    if not marker:
        path, version = text, ""
    bucket, slash, key = path.lstrip("/").partition("/")
    # Only a bare bucket means item_name; "bucket/" names an empty key, which S3 refuses as kubemq-targets' request is refused.
    source = {"Bucket": bucket, "Key": _url_decoded(key) if slash else default_key}
    return {**source, "VersionId": _url_decoded(version)} if version else source


def _url_decoded(text: str) -> str:
    """``text`` with its ``%XX`` escapes decoded; text without any is taken as written (a plain key)."""
    if not URL_ESCAPE.search(text):
        return text
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise ValueError(f"error parsing copy_source, {text!r} is URL-encoded but does not decode to UTF-8 text (write a literal % as %25)") from None


def _present(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


# The methods of this module, declared once (see declaration.py); the target's table lists them in this order.
UPLOAD_ITEM_METHOD = S3Method(
    name="upload_item",
    metadata=UploadItemMetadata,
    handler=upload_item,
    summary="Store the request data as an object.",
    reaches=policy.writes_item,
    kubemq_targets=KUBEMQ_TARGETS_REPLY,
    example={"bucket_name": "demo", "item_name": "hello.txt"},
    example_data=b"hello",
)
GET_ITEM_METHOD = S3Method(
    name="get_item",
    metadata=GetItemMetadata,
    handler=get_item,
    summary="Return an object's bytes (or its decoded content).",
    read_only=True,
    reaches=policy.reads_item,
    kubemq_targets=KubemqTargetsReply(metadata=("bucket", "key")),
    example={"bucket_name": "demo", "item_name": "hello.txt"},
)
DELETE_ITEM_FROM_BUCKET_METHOD = S3Method(
    name="delete_item_from_bucket",
    metadata=DeleteItemMetadata,
    handler=delete_item_from_bucket,
    summary="Delete one object.",
    reaches=policy.writes_item,
    kubemq_targets=KUBEMQ_TARGETS_REPLY,
    example={"bucket_name": "demo", "item_name": "once.txt"},
)
COPY_ITEM_METHOD = S3Method(
    name="copy_item",
    metadata=CopyItemMetadata,
    handler=copy_item,
    summary="Copy an object, within or across buckets.",
    reaches=policy.copies,
    kubemq_targets=KUBEMQ_TARGETS_REPLY,
    example={"bucket_name": "demo", "item_name": "backup/hello.txt", "copy_source": "demo/hello.txt"},
)
HEAD_ITEM_METHOD = S3Method(
    name="head_item",
    metadata=HeadItemMetadata,
    handler=head_item,
    summary="Describe an object without its body.",
    read_only=True,
    reaches=policy.reads_item,
    example={"bucket_name": "demo", "item_name": "hello.txt"},
)
PRESIGN_URL_METHOD = S3Method(
    name="presign_url",
    metadata=PresignUrlMetadata,
    handler=presign_url,
    summary="Make a time-limited URL to get, put or delete an object, or put a part.",
    read_only=True,
    reaches=policy.presigns,
    example={"bucket_name": "demo", "item_name": "hello.txt", "expires_seconds": "3600"},
)
DECLARED = (
    UPLOAD_ITEM_METHOD,
    GET_ITEM_METHOD,
    DELETE_ITEM_FROM_BUCKET_METHOD,
    COPY_ITEM_METHOD,
    HEAD_ITEM_METHOD,
    PRESIGN_URL_METHOD,
)
