"""The ``aws.s3`` target's properties, parsed and checked once at init.

Accepts everything kubemq-targets' ``aws.s3`` accepts (``aws_key``,
``aws_secret_key``, ``token``, ``region``, and the legacy ``downloader`` /
``uploader`` switches, which it documents but ignores), plus what is needed to
reach any S3-compatible store, to bound the work one request can cause, and to
narrow what one binding may do (``allowed_*``, ``read_only``: see policy.py).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ConfigDict, SecretStr, field_validator, model_validator

from bindings.devservices import EMBEDDED
from bindings.properties import Properties, StringList, field
from connector.s3.encryption import ALGORITHM_DESCRIPTION, KEY_EXAMPLE, Algorithm, check_pair
from connector.s3.policy import Patterns, check_bucket_patterns, check_method_names

MIB = 1024 * 1024


class S3Properties(Properties):
    """Properties of an ``aws.s3`` target."""

    # pydantic's own error text would echo the raw input, keys included.
    model_config = ConfigDict(**Properties.model_config, hide_input_in_errors=True)

    aws_key: SecretStr | None = field(
        None,
        description="Access key id. Set together with `aws_secret_key`; leave both out to use the AWS default credential chain "
        "(environment, shared profile, web identity / IRSA, container or instance role).",
        example="AKIAIOSFODNN7EXAMPLE",
        secret=True,
    )
    aws_secret_key: SecretStr | None = field(None, description="Secret access key belonging to `aws_key`.", example="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", secret=True)
    token: SecretStr | None = field(None, description="Session token for temporary credentials (needs `aws_key`).", example="FwoGZXIvYXdzE...", secret=True)
    region: str | None = field(
        None,
        pattern=r"^[a-z0-9-]+$",
        description="AWS region. Optional here (kubemq-targets requires it): falls back to the region of the AWS default chain "
        "(`AWS_REGION`, `AWS_DEFAULT_REGION`, profile), then `us-east-1`. Buckets created outside us-east-1 get a matching LocationConstraint.",
        example="eu-west-1",
    )
    endpoint: str | None = field(
        None,
        description="URL of an S3-compatible store (MinIO, SeaweedFS, Ceph, R2, ...), or `embedded` to start a SeaweedFS "
        "server inside the connector (shared by every binding that says `embedded`). Absent: Amazon S3.",
        example="http://127.0.0.1:9000",
    )
    force_path_style: bool | None = field(
        None,
        description="Address buckets as `endpoint/bucket/key` instead of `bucket.endpoint/key`. Default: true when `endpoint` is set, else false.",
        example=True,
    )
    verify_ssl: bool = field(True, description="Verify the server's TLS certificate. Turn off only for a test server with a self-signed certificate.", example=True)
    ca_file: str | None = field(None, description="PEM file of the CA that signed the server's certificate (private CAs).", example="/etc/ssl/private-ca.pem")
    bucket: str | None = field(None, min_length=1, description="Default bucket for requests without `bucket_name` (the request's own value always wins).", example="invoices")
    downloader: bool = field(False, description="Accepted for kubemq-targets compatibility; has no effect (downloads are always available).", example=False)
    uploader: bool = field(False, description="Accepted for kubemq-targets compatibility; has no effect (uploads are always available).", example=False)
    connect_timeout_seconds: float = field(10.0, gt=0, le=300, description="Seconds to wait for a connection to the store.", example=10)
    read_timeout_seconds: float = field(60.0, gt=0, le=3600, description="Seconds to wait for the store to send data on an open connection.", example=60)
    max_attempts: int = field(
        3,
        ge=1,
        le=20,
        description="Total attempts per S3 call with the SDK's standard retry mode (throttling, 5xx, connection errors). Set 1 to leave retries to the binding's retry middleware.",
        example=3,
    )
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
    embedded_data_dir: str | None = field(
        None,
        description="With `endpoint: embedded`: directory where SeaweedFS keeps its data across restarts. Default: a temporary directory removed at shutdown.",
        example="/var/lib/kubemq-s3/seaweedfs",
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

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_url(cls, value: str | None) -> str | None:
        if value is None or value == EMBEDDED:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http(s) URL such as http://127.0.0.1:9000, or the word {EMBEDDED!r}")
        return value.rstrip("/")

    @field_validator("ca_file")
    @classmethod
    def _ca_file_exists(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_file():
            raise ValueError(f"file {value!r} does not exist")
        return value

    @field_validator("allowed_methods")
    @classmethod
    def _known_methods(cls, names: list[str] | None) -> list[str] | None:
        if names is not None:
            from connector.s3.target import METHODS  # imported here: the method table imports this module

            check_method_names(names, [method.name for method in METHODS])
        return names

    @field_validator("allowed_buckets")
    @classmethod
    def _bucket_patterns(cls, patterns: list[str] | None) -> list[str] | None:
        if patterns is not None:
            check_bucket_patterns(patterns)
        return patterns

    @model_validator(mode="after")
    def _consistent(self) -> S3Properties:
        if (self.aws_key is None) != (self.aws_secret_key is None):
            raise ValueError("aws_key and aws_secret_key must be set together (or both left out to use the AWS default credential chain)")
        if self.token is not None and self.aws_key is None:
            raise ValueError("token needs aws_key and aws_secret_key")
        if self.ca_file is not None and not self.verify_ssl:
            raise ValueError("ca_file cannot be combined with verify_ssl=false")
        if self.endpoint == EMBEDDED:
            if self.force_path_style is False:
                raise ValueError("endpoint 'embedded' is reached by IP address, so force_path_style cannot be false")
            if self.token is not None:
                raise ValueError("endpoint 'embedded' does not accept a session token")
        elif self.embedded_data_dir is not None:
            raise ValueError("embedded_data_dir applies only to endpoint 'embedded'")
        if self.bucket is not None and self.allowed_buckets is not None and not Patterns(self.allowed_buckets).match(self.bucket):
            raise ValueError(f"the default bucket {self.bucket!r} is outside allowed_buckets, so every request relying on it would be refused")
        check_pair(self.server_side_encryption, self.sse_kms_key_id)
        if self.multipart_part_size_mib > self.multipart_threshold_mib:
            raise ValueError("multipart_part_size_mib cannot be larger than multipart_threshold_mib")
        return self

    @property
    def path_style(self) -> bool:
        """Effective addressing: path style by default for custom endpoints, virtual hosts for AWS."""
        return self.force_path_style if self.force_path_style is not None else self.endpoint is not None

    @property
    def verify(self) -> bool | str:
        """What botocore's ``verify`` takes: a CA bundle path or a boolean."""
        return self.ca_file if self.ca_file is not None else self.verify_ssl

    @property
    def embedded(self) -> bool:
        return self.endpoint == EMBEDDED
