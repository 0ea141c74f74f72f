"""The ``aws.s3`` target's properties, parsed and checked once at init.

Accepts everything kubemq-targets' ``aws.s3`` accepts (``aws_key``,
``aws_secret_key``, ``token``, ``region``, and the legacy ``downloader`` /
``uploader`` switches, which it documents but ignores), plus what is needed to
reach any S3-compatible store, to bound the work one request can cause, and to
narrow what one binding may do (``allowed_*``, ``read_only``: see policy.py).
"""

from __future__ import annotations

from pydantic import field_validator, model_validator

from bindings.properties import StringList, field
from connector.s3.connection import S3ConnectionProperties
from connector.s3.encryption import ALGORITHM_DESCRIPTION, KEY_EXAMPLE, Algorithm, check_pair
from connector.s3.policy import AccessPolicy, Patterns, check_bucket_patterns


class S3Properties(S3ConnectionProperties):
    """Properties of an ``aws.s3`` target: the connection, then what requests may do and how big they may get."""

    bucket: str | None = field(None, min_length=1, description="Default bucket for requests without `bucket_name` (the request's own value always wins).", example="invoices")
    downloader: bool = field(False, description="Accepted for kubemq-targets compatibility; has no effect (downloads are always available).", example=False)
    uploader: bool = field(False, description="Accepted for kubemq-targets compatibility; has no effect (uploads are always available).", example=False)
    waiter_timeout_seconds: float = field(60.0, gt=0, le=3600, description="Longest time `wait_for_completion=true` waits for a bucket or object to (dis)appear.", example=60)
    waiter_delay_seconds: float = field(1.0, gt=0, le=60, description="Pause between the checks a waiter makes.", example=1)
    list_max_keys_cap: int = field(
        100_000,
        ge=1,
        le=10_000_000,
        description="Most keys (and common prefixes) one `list_bucket_items` reply gathers when it follows every page. "
        "When a listing stops at the cap the reply says so with `IsTruncated: true` and `NextContinuationToken`.",
        example=100_000,
    )
    list_search_scan_cap: int = field(
        1_000_000,
        ge=1,
        le=1_000_000_000,
        description="Most keys (and common prefixes) one `list_bucket_items` request with `search` reads looking for matches, "
        "so a search matching little does not page through a whole huge bucket at once. When the cap stops it the reply says so "
        "with `IsTruncated: true` and `NextContinuationToken` to continue from.",
        example=1_000_000,
    )
    multipart_threshold_mib: int = field(16, ge=5, le=5 * 1024, description="Uploads larger than this many MiB go up as multipart uploads.", example=16)
    multipart_part_size_mib: int = field(8, ge=5, le=5 * 1024, description="Part size in MiB for multipart uploads (S3's minimum is 5).", example=8)
    multipart_concurrency: int = field(4, ge=1, le=64, description="Parts of one upload (or copy) sent at the same time.", example=4)
    copy_multipart_threshold_mib: int = field(
        5 * 1024,
        ge=5,
        le=5 * 1024,
        description="Sources larger than this many MiB are copied part by part (managed multipart copy); CopyObject's own limit is 5 GiB.",
        example=5120,
    )
    copy_part_size_mib: int = field(512, ge=5, le=5 * 1024, description="Part size in MiB of a multipart copy (raised automatically to stay within 10,000 parts).", example=512)
    server_side_encryption: Algorithm | None = field(
        None,
        description=ALGORITHM_DESCRIPTION + " The default for every object this target creates (uploads, multipart uploads, copies); "
        "a request's `server_side_encryption` or `sse_kms_key_id` replaces it. Default: the bucket's own default encryption.",
        example="AES256",
    )
    sse_kms_key_id: str | None = field(
        None,
        description="Default KMS key id or ARN for the objects this target creates; implies `server_side_encryption: aws:kms`. "
        "A request's own `server_side_encryption` or `sse_kms_key_id` replaces it.",
        example=KEY_EXAMPLE,
    )
    allowed_methods: StringList | None = field(
        None,
        min_length=1,
        description="Least privilege: the only methods this binding serves (a YAML list or comma-separated names); others are refused with `AccessDenied` before any S3 call. Default: every method.",
        example="list_bucket_items, get_item, head_item",
    )
    allowed_buckets: StringList | None = field(
        None,
        min_length=1,
        description="Least privilege: the only buckets requests may name, as patterns (`*` any characters, `?` one); `list_buckets` shows only these. Default: every bucket.",
        example="reports-*",
    )
    allowed_keys: StringList | None = field(
        None,
        min_length=1,
        description="Least privilege: the only object keys requests may reach, as patterns (`*` any characters, `/` included; `?` one); "
        "a listing or prefix delete needs a `prefix` inside a pattern ending in `*`. Default: every key.",
        example="incoming/*, reports/*.pdf",
    )
    read_only: bool = field(
        False,
        description="Least privilege: refuse every request that writes (uploads, deletes, copies, bucket changes, put/delete presigned URLs).",
        example=True,
    )

    @field_validator("allowed_buckets")
    @classmethod
    def _bucket_patterns(cls, patterns: list[str] | None) -> list[str] | None:
        if patterns is not None:
            check_bucket_patterns(patterns)
        return patterns

    @model_validator(mode="after")
    def _consistent(self) -> S3Properties:
        if self.bucket is not None and self.allowed_buckets is not None and not Patterns(self.allowed_buckets).match(self.bucket):
            raise ValueError(f"the default bucket {self.bucket!r} is outside allowed_buckets, so every request relying on it would be refused")
        check_pair(self.server_side_encryption, self.sse_kms_key_id)
        if self.multipart_part_size_mib > self.multipart_threshold_mib:
            raise ValueError("multipart_part_size_mib cannot be larger than multipart_threshold_mib")
        return self

    def access_policy(self) -> AccessPolicy:
        """The least privilege these properties ask for (``allowed_*``, ``read_only``)."""
        return AccessPolicy(
            frozenset(self.allowed_methods) if self.allowed_methods is not None else None,
            Patterns(self.allowed_buckets) if self.allowed_buckets is not None else None,
            Patterns(self.allowed_keys) if self.allowed_keys is not None else None,
            self.read_only,
        )
