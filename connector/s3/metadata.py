"""Request metadata shared by several methods: bucket, item, waiting, object attributes.

Each method declares its metadata as one ``RequestMetadata`` subclass built
from these bases, so a key means the same thing (and is checked the same way)
in every method that reads it. pydantic lists the fields of the last base
first, so methods name ``BucketMetadata``/``ItemMetadata`` last: the generated
reference then starts with the bucket and the key.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import field_validator, model_validator

from bindings.properties import GoFlag, field
from bindings.target import RequestMetadata

USER_METADATA_PREFIX = "meta_"
ITEM_NAME = "item_name"


class BucketMetadata(RequestMetadata):
    bucket_name: str = field(description="Bucket to act on (the target's `bucket` property when left out).", example="demo")

    @field_validator("bucket_name")
    @classmethod
    def _stays_a_bucket(cls, name: str) -> str:
        """Names go to S3 as given, except those that would name another bucket once a proxy or store cleans the path.

        S3 refuses them all; refused here, ``..`` or ``a/../b`` cannot reach a bucket the policy did not approve.
        """
        if "/" in name or set(name) == {"."}:
            raise ValueError(f"{name!r} is not a bucket name: it holds '/' or is only dots")
        return name


class ItemMetadata(BucketMetadata):
    item_name: str = field(description="Object key.", example="reports/2024/q1.pdf")

    @classmethod
    def missing_message(cls, key: str, method: str) -> str:
        """kubemq-targets words a missing ``item_name`` its own way (space before the comma included); senders match it."""
        if key == ITEM_NAME:
            return f"item_name is required when using {method} , {super().missing_message(key, method)}"
        return super().missing_message(key, method)


class VersionMetadata(RequestMetadata):
    version_id: str | None = field(None, description="A specific version of the object (versioned buckets).", example="3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY")


class WaitMetadata(RequestMetadata):
    wait_for_completion: GoFlag = field(
        False,
        description="Reply only once S3 shows the change (polls with a waiter, up to `waiter_timeout_seconds`). "
        "Read as kubemq-targets reads it: `1`, `t`, `T`, `TRUE`, `true`, `True` mean true, anything else false.",
        example="true",
    )


class ObjectAttributes(RequestMetadata):
    """What an object carries besides its bytes; set on upload, or on copy with ``metadata_directive=REPLACE``."""

    content_type: str | None = field(None, description="Content-Type stored with the object.", example="application/json")
    content_disposition: str | None = field(None, description="Content-Disposition stored with the object.", example='attachment; filename="q1.pdf"')
    cache_control: str | None = field(None, description="Cache-Control stored with the object.", example="max-age=3600")
    storage_class: str | None = field(None, pattern=r"^[A-Z_]+$", description="S3 storage class (STANDARD, STANDARD_IA, GLACIER_IR, ...).", example="STANDARD_IA")
    user_metadata: dict[str, str] | None = field(
        None,
        description="User metadata (`x-amz-meta-*`) as a JSON object of strings. Keys `meta_<name>` add or override single entries.",
        example='{"owner":"billing"}',
    )

    @model_validator(mode="before")
    @classmethod
    def _collect_user_metadata(cls, values: Any) -> Any:
        """Merge ``user_metadata`` (JSON text) with ``meta_<name>`` keys; bad JSON is left for the field check to report."""
        if not isinstance(values, dict):
            return values
        singles = {k[len(USER_METADATA_PREFIX) :]: v for k, v in values.items() if k.startswith(USER_METADATA_PREFIX) and len(k) > len(USER_METADATA_PREFIX) and v != ""}
        raw = values.get("user_metadata")
        if isinstance(raw, str) and raw != "":
            try:
                parsed = json.loads(raw)
            except ValueError:
                return values
            if not isinstance(parsed, dict):
                return values
            return {**values, "user_metadata": {**parsed, **singles}}
        return {**values, "user_metadata": singles} if singles else values

    @property
    def has_metadata(self) -> bool:
        """True when any attribute that S3 treats as object metadata is given (storage class is not one)."""
        return any(v is not None for v in (self.content_type, self.content_disposition, self.cache_control, self.user_metadata))

    def s3_args(self) -> dict[str, Any]:
        """The attributes as PutObject / CopyObject / CreateMultipartUpload parameters."""
        args = {
            "ContentType": self.content_type,
            "ContentDisposition": self.content_disposition,
            "CacheControl": self.cache_control,
            "StorageClass": self.storage_class,
            "Metadata": self.user_metadata,
        }
        return {name: value for name, value in args.items() if value is not None}
