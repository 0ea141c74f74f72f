"""S3 outputs as the JSON kubemq-targets senders parse.

kubemq-targets marshals aws-sdk-go v1 output structs with Go's encoding/json:
the S3 API's PascalCase field names, every declared field present (``null``
when unset) in declaration (alphabetical) order, times in RFC 3339, and no
transport metadata. A ``Shape`` lists those declared fields; fields newer S3
versions add (checksums, for instance) follow them, so nothing is hidden.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bindings import gojson

# Transport details of the SDK, not part of any S3 output.
HIDDEN_FIELDS = frozenset({"ResponseMetadata"})


@dataclass(frozen=True)
class Shape:
    """The declared fields of one output struct, and the shapes of its nested structs."""

    fields: tuple[str, ...]
    nested: Mapping[str, Shape] = field(default_factory=dict)

    def apply(self, data: Mapping[str, Any]) -> dict[str, Any]:
        out = {name: self._value(name, data.get(name)) for name in self.fields}
        out.update({name: self._value(name, value) for name, value in data.items() if name not in out and name not in HIDDEN_FIELDS})
        return out

    def _value(self, name: str, value: Any) -> Any:
        shape = self.nested.get(name)
        if shape is None or value is None:
            return value
        if isinstance(value, list):
            return [shape.apply(item) for item in value]
        return shape.apply(value)


OWNER = Shape(("DisplayName", "ID"))
BUCKET = Shape(("CreationDate", "Name"))
LIST_BUCKETS = Shape(("Buckets", "Owner"), {"Buckets": BUCKET, "Owner": OWNER})
OBJECT = Shape(("ETag", "Key", "LastModified", "Owner", "Size", "StorageClass"), {"Owner": OWNER})
COMMON_PREFIX = Shape(("Prefix",))
LIST_OBJECTS = Shape(
    (
        "CommonPrefixes",
        "Contents",
        "ContinuationToken",
        "Delimiter",
        "EncodingType",
        "IsTruncated",
        "KeyCount",
        "MaxKeys",
        "Name",
        "NextContinuationToken",
        "Prefix",
        "StartAfter",
    ),
    {"Contents": OBJECT, "CommonPrefixes": COMMON_PREFIX},
)
# How an output says a new object is encrypted (in the alphabetical place Go declares them).
ENCRYPTION = ("SSECustomerAlgorithm", "SSECustomerKeyMD5", "SSEKMSEncryptionContext", "SSEKMSKeyId", "ServerSideEncryption")
CREATE_BUCKET = Shape(("Location",))
DELETE_OBJECT = Shape(("DeleteMarker", "RequestCharged", "VersionId"))
COPY_OBJECT = Shape(
    (
        "BucketKeyEnabled",
        "CopyObjectResult",
        "CopySourceVersionId",
        "Expiration",
        "RequestCharged",
        *ENCRYPTION,
        "VersionId",
    ),
    {"CopyObjectResult": Shape(("ETag", "LastModified"))},
)
HEAD_OBJECT = Shape(("ContentLength", "ContentType", "ETag", "LastModified", "Metadata", "StorageClass", "VersionId"))
CREATE_MULTIPART_UPLOAD = Shape(
    (
        "AbortDate",
        "AbortRuleId",
        "Bucket",
        "BucketKeyEnabled",
        "ChecksumAlgorithm",
        "Key",
        "RequestCharged",
        *ENCRYPTION,
        "UploadId",
    )
)
UPLOAD_PART = Shape(
    (
        "BucketKeyEnabled",
        "ChecksumCRC32",
        "ChecksumCRC32C",
        "ChecksumSHA1",
        "ChecksumSHA256",
        "ETag",
        "RequestCharged",
        "SSECustomerAlgorithm",
        "SSECustomerKeyMD5",
        "SSEKMSKeyId",
        "ServerSideEncryption",
    )
)
PART = Shape(("ChecksumCRC32", "ChecksumCRC32C", "ChecksumSHA1", "ChecksumSHA256", "ETag", "LastModified", "PartNumber", "Size"))
LIST_PARTS = Shape(
    (
        "AbortDate",
        "AbortRuleId",
        "Bucket",
        "ChecksumAlgorithm",
        "Initiator",
        "IsTruncated",
        "Key",
        "MaxParts",
        "NextPartNumberMarker",
        "Owner",
        "PartNumberMarker",
        "Parts",
        "RequestCharged",
        "StorageClass",
        "UploadId",
    ),
    {"Parts": PART, "Initiator": OWNER, "Owner": OWNER},
)
MULTIPART_UPLOAD = Shape(("ChecksumAlgorithm", "Initiated", "Initiator", "Key", "Owner", "StorageClass", "UploadId"), {"Initiator": OWNER, "Owner": OWNER})
LIST_MULTIPART_UPLOADS = Shape(
    (
        "Bucket",
        "CommonPrefixes",
        "Delimiter",
        "EncodingType",
        "IsTruncated",
        "KeyMarker",
        "MaxUploads",
        "NextKeyMarker",
        "NextUploadIdMarker",
        "Prefix",
        "UploadIdMarker",
        "Uploads",
    ),
    {"Uploads": MULTIPART_UPLOAD, "CommonPrefixes": COMMON_PREFIX},
)
GET_TAGGING = Shape(("TagSet", "VersionId"), {"TagSet": Shape(("Key", "Value"))})
VERSION_ONLY = Shape(("VersionId",))  # PutObjectTagging's and DeleteObjectTagging's output
DELETE_ERROR = Shape(("Code", "Key", "Message", "VersionId"))  # one refused key of DeleteObjects


def rfc3339(value: datetime) -> str:
    """Go's ``time.Time`` JSON form in UTC: ``2024-05-01T12:00:00Z``, fraction only when non-zero."""
    utc = value.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(value: Any) -> bytes:
    """JSON as Go's encoder writes it (``bindings.gojson``; S3's outputs hold no floats), datetimes as RFC 3339, bytes as base64 (as Go marshals ``[]byte``)."""
    return gojson.dumps_without_floats(value, default=_default, sort_keys=False).encode()
