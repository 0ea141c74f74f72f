"""Object tags: ``tags`` on upload, and ``get_item_tags`` / ``put_item_tags`` / ``delete_item_tags``.

A tag set travels in metadata as ``key=value`` pairs joined by commas, the
way a sender writes it on a command line; ``%XX`` escapes are decoded, so a
key or value holding ``,``, ``=`` or ``%`` is written ``%2C``, ``%3D``,
``%25`` (replies escape those three the same way, so a reply's ``tags`` can
be sent back as is). S3's limits are checked before any call: at most 10
tags, keys of 1 to 128 characters, values of at most 256, no key twice.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, unquote, urlencode

from pydantic import field_validator

from bindings.context import RequestContext
from bindings.errors import InvalidRequestError
from bindings.properties import field
from bindings.target import RequestMetadata
from bindings.wire import Request, Response
from connector.s3 import policy
from connector.s3.client import S3Client
from connector.s3.declaration import S3Method
from connector.s3.metadata import ItemMetadata, VersionMetadata
from connector.s3.results import GET_TAGGING, VERSION_ONLY, to_json

MAX_TAGS = 10
MAX_KEY = 128
MAX_VALUE = 256
PAIR_SEPARATOR = ","
# Replies escape only what the pair syntax itself uses.
ESCAPES = {"%": "%25", ",": "%2C", "=": "%3D"}


def parse_tags(text: str) -> dict[str, str]:
    """``team=billing,year=2024`` as a dict, escapes decoded; raises ``ValueError`` saying what is wrong."""
    tags: dict[str, str] = {}
    for pair in text.split(PAIR_SEPARATOR):
        key, equals, value = pair.strip().partition("=")
        if not equals:
            raise ValueError(f"{pair.strip()!r} is not key=value (tags are written key=value,key2=value2)")
        key, value = _unescaped(key), _unescaped(value)
        if key in tags:
            raise ValueError(f"tag {key!r} is given twice")
        tags[key] = value
    return checked(tags)


def checked(tags: dict[str, str]) -> dict[str, str]:
    """S3's limits on a tag set."""
    if len(tags) > MAX_TAGS:
        raise ValueError(f"{len(tags)} tags given, S3 allows at most {MAX_TAGS} per object")
    for key, value in tags.items():
        if not 1 <= len(key) <= MAX_KEY:
            raise ValueError(f"tag key {key[:MAX_KEY]!r} must be 1 to {MAX_KEY} characters long")
        if len(value) > MAX_VALUE:
            raise ValueError(f"the value of tag {key!r} is longer than {MAX_VALUE} characters")
    return tags


def format_tags(tags: dict[str, str]) -> str:
    """The inverse of ``parse_tags``."""
    return PAIR_SEPARATOR.join(f"{_escaped(key)}={_escaped(value)}" for key, value in tags.items())


def tagging_query(tags: dict[str, str]) -> str:
    """The ``Tagging`` parameter of PutObject / CreateMultipartUpload: a URL query, ``+`` escaped (it would read as a space)."""
    return urlencode(tags, quote_via=quote, safe="")


def _unescaped(text: str) -> str:
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise ValueError(f"{text!r} holds %XX escapes that do not decode to UTF-8 text (write a literal % as %25)") from None


def _escaped(text: str) -> str:
    return "".join(ESCAPES.get(char, char) for char in text)


class Tagging(RequestMetadata):
    tags: str | None = field(
        None,
        description="Object tags as `key=value` pairs separated by commas; `%XX` escapes are decoded, so a `,`, `=` or `%` inside a key or value is written `%2C`, `%3D`, `%25`. At most 10 tags.",
        example="team=billing,retention=1y",
    )

    @field_validator("tags")
    @classmethod
    def _well_formed(cls, value: str | None) -> str | None:
        if value is not None:
            parse_tags(value)
        return value

    @property
    def tag_set(self) -> dict[str, str] | None:
        return parse_tags(self.tags) if self.tags is not None else None

    def tagging_args(self) -> dict[str, str]:
        tags = self.tag_set
        return {"Tagging": tagging_query(tags)} if tags else {}


class GetTagsMetadata(VersionMetadata, ItemMetadata):
    """Bucket, key and optional version whose tags to read."""


class PutTagsMetadata(Tagging, VersionMetadata, ItemMetadata):
    """Bucket, key, optional version, and the tags (here or as the request's data)."""


class DeleteTagsMetadata(VersionMetadata, ItemMetadata):
    """Bucket, key and optional version whose tags to remove."""


async def get_item_tags(s3: S3Client, metadata: GetTagsMetadata, request: Request, context: RequestContext) -> Response:
    """GetObjectTagging: the tag set as S3 returns it, and as ``key=value`` pairs in the metadata."""
    output = await s3.api.get_object_tagging(**_object(metadata))
    tags = {tag["Key"]: tag["Value"] for tag in output.get("TagSet", [])}
    return _reply(metadata, GET_TAGGING.apply(output), output, tags=format_tags(tags))


async def put_item_tags(s3: S3Client, metadata: PutTagsMetadata, request: Request, context: RequestContext) -> Response:
    """PutObjectTagging: replaces the object's whole tag set."""
    tags = _requested_tags(metadata, request.data)
    tag_set = [{"Key": key, "Value": value} for key, value in tags.items()]
    output = await s3.api.put_object_tagging(**_object(metadata), Tagging={"TagSet": tag_set})
    return _reply(metadata, VERSION_ONLY.apply(output), output, tags=format_tags(tags))


async def delete_item_tags(s3: S3Client, metadata: DeleteTagsMetadata, request: Request, context: RequestContext) -> Response:
    """DeleteObjectTagging: removes every tag of the object."""
    output = await s3.api.delete_object_tagging(**_object(metadata))
    return _reply(metadata, VERSION_ONLY.apply(output), output)


def _requested_tags(metadata: PutTagsMetadata, data: bytes) -> dict[str, str]:
    """The tag set from metadata ``tags`` or from the data (a JSON object of strings), exactly one of them."""
    if metadata.tags is not None and data:
        raise InvalidRequestError("give the tags either in metadata tags or as data, not both")
    if metadata.tag_set is not None:
        return metadata.tag_set
    if not data:
        raise InvalidRequestError('put_item_tags needs the tags: metadata tags=key=value,key2=value2, or data as a JSON object {"key":"value"}')
    try:
        parsed = json.loads(data)
    except ValueError as exc:
        raise InvalidRequestError(f"error parsing data, tags must be a JSON object of strings: {exc}") from None
    if not isinstance(parsed, dict) or not all(isinstance(value, str) for value in parsed.values()):
        raise InvalidRequestError('error parsing data, tags must be a JSON object of strings, e.g. {"team":"billing"}')
    try:
        return checked(parsed)
    except ValueError as exc:
        raise InvalidRequestError(f"error parsing data, {exc}") from None


def _object(metadata: GetTagsMetadata | PutTagsMetadata | DeleteTagsMetadata) -> dict[str, str]:
    params = {"Bucket": metadata.bucket_name, "Key": metadata.item_name}
    return {**params, "VersionId": metadata.version_id} if metadata.version_id is not None else params


def _reply(metadata: Any, shaped: dict[str, Any], output: dict[str, Any], **extra: str) -> Response:
    version = {"version_id": output["VersionId"]} if output.get("VersionId") else {}
    return Response.ok(to_json(shaped), bucket=metadata.bucket_name, key=metadata.item_name, **extra, **version)


# The methods of this module, declared once (see declaration.py); the target's table lists them in this order.
GET_ITEM_TAGS_METHOD = S3Method(
    name="get_item_tags",
    metadata=GetTagsMetadata,
    handler=get_item_tags,
    summary="Return an object's tags.",
    read_only=True,
    reaches=policy.reads_item,
    example={"bucket_name": "demo", "item_name": "signed.txt"},
)
PUT_ITEM_TAGS_METHOD = S3Method(
    name="put_item_tags",
    metadata=PutTagsMetadata,
    handler=put_item_tags,
    summary="Replace an object's tags.",
    reaches=policy.writes_item,
    example={"bucket_name": "demo", "item_name": "signed.txt", "tags": "team=billing,year=2025"},
)
DELETE_ITEM_TAGS_METHOD = S3Method(
    name="delete_item_tags",
    metadata=DeleteTagsMetadata,
    handler=delete_item_tags,
    summary="Remove every tag of an object.",
    reaches=policy.writes_item,
    example={"bucket_name": "demo", "item_name": "signed.txt"},
)
DECLARED = (
    GET_ITEM_TAGS_METHOD,
    PUT_ITEM_TAGS_METHOD,
    DELETE_ITEM_TAGS_METHOD,
)
