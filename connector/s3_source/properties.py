"""The ``aws.s3`` source's properties: kubemq-sources' names first, then what it lacks.

kubemq-sources' keys (``aws_key``, ``aws_secret_key``, ``region``,
``token``, ``bucket_name``, ``folders``, ``target_type``, ``concurrency``,
``scan_interval``) read as it reads them; the S3 connection (endpoint, path
style, TLS, the default credential chain, ``endpoint: embedded``) is the
``aws.s3`` target's, declared once in ``connector.s3.connection``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import field_validator, model_validator

from bindings.properties import StringList, field
from connector.s3.connection import S3ConnectionProperties

TargetType = Literal["aws", "minio", "gcp", "azure", "filesystem", "hdfs", "pass-through"]
AfterSend = Literal["delete", "keep", "move"]
Payload = Literal["content", "reference"]
WHOLE_BUCKET = "/"
ONE_YEAR_SECONDS = 3600 * 365  # kubemq-sources' own upper bound for scan_interval


class S3SourceProperties(S3ConnectionProperties):
    """Properties of an ``aws.s3`` source."""

    bucket_name: str = field(description="The bucket watched.", example="incoming", min_length=1)
    folders: StringList = field(
        description="Where in the bucket to look: `/` for the whole bucket, else folders (comma-separated or a list); "
        "a folder takes every object below it, at any depth (`reports/2024` takes `reports/2024/q1/a.csv`).",
        example="/",
        min_length=1,
    )
    target_type: TargetType | None = field(
        None,
        description="How each message body is shaped, as kubemq-sources shapes it: `aws` a kubemq-targets `upload_item` request, "
        "`minio`, `gcp`, `azure`, `filesystem`, `hdfs` the request of that kubemq-targets target, `pass-through` the path and file name. "
        "Required with `payload: content`.",
        example="aws",
    )
    concurrency: int = field(1, ge=1, le=1024, description="Objects being sent at once; memory is bounded by this times the largest object sent whole.", example=4)
    scan_interval: int = field(5, ge=1, le=ONE_YEAR_SECONDS, description="Seconds between two scans of the bucket.", example=5)
    after_send: AfterSend = field(
        "delete",
        description="What happens to an object once its message is confirmed: `delete` it (kubemq-sources' behaviour), `keep` it "
        "(sent again only when it changes: a new ETag), or `move` it under `move_prefix` in the same bucket.",
        example="delete",
    )
    move_prefix: str = field("", description="With `after_send: move`: the prefix sent objects are moved under (`sent/` makes `a/b.csv` `sent/a/b.csv`); never scanned.", example="sent/")
    payload: Payload = field(
        "content",
        description="`content`: the message carries the object's bytes (shaped by `target_type`). `reference`: it carries the bucket, key, size, "
        "ETag, last-modified time and a presigned GET URL instead, for objects of any size (with `after_send: keep`: the URL points at the object).",
        example="content",
    )
    destination_bucket: str = field("", description="The bucket named in `aws`, `minio` and `gcp` requests; default: `bucket_name`, as kubemq-sources does.", example="archive")
    prefix: str = field("", description="Only keys starting with this (after the folder filter).", example="invoice-")
    suffixes: StringList | None = field(None, description="Only keys ending with one of these (comma-separated or a list).", example=".csv, .json")
    modified_after: datetime | None = field(None, description="Only objects last modified after this instant (ISO 8601, with a time zone).", example="2026-01-01T00:00:00Z")
    max_object_size_mib: int = field(
        64,
        ge=1,
        le=74,
        description="Largest object sent whole in one message (base64 in JSON makes it a third bigger; KubeMQ's limit is 100 MiB). "
        "A larger one goes as a multipart upload over the bus with `target_type: aws` and a `kubemq.query` target; otherwise it is left in the bucket and reported.",
        example=64,
    )
    part_size_mib: int = field(16, ge=5, le=74, description="Part size of a multipart upload over the bus (S3's minimum is 5 MiB).", example=16)
    reference_url_seconds: int = field(3600, ge=1, le=604_800, description="With `payload: reference`: how long the presigned GET URL is valid.", example=3600)
    retry_max_interval_seconds: int = field(300, ge=1, le=86_400, description="Longest wait before an object whose send failed is tried again (the wait doubles per failure).", example=300)
    state_prefix: str = field(
        ".kubemq-s3/",
        min_length=1,
        description="Prefix in the bucket for this source's own state (which object versions were sent, in `keep` mode, and the replicas' lease); never scanned.",
        example=".kubemq-s3/",
    )
    lease_seconds: int = field(
        30,
        ge=5,
        le=3600,
        description="Replicas of a binding share one lease in the bucket (a conditional write): the holder sends, the others stand by and take over this many seconds after it stops renewing.",
        example=30,
    )

    @field_validator("folders")
    @classmethod
    def _folders(cls, folders: list[str]) -> list[str]:
        # kubemq-sources normalises Windows separators; a folder is a whole path prefix, so it ends with "/".
        cleaned = [folder.replace("\\", "/") for folder in folders]
        if WHOLE_BUCKET in cleaned:
            return [WHOLE_BUCKET]
        folders = sorted({folder.strip("/") + "/" for folder in cleaned if folder.strip("/")})
        # A folder inside another is listed with it already: listed twice, its objects would be sent twice.
        return [folder for folder in folders if not any(folder != other and folder.startswith(other) for other in folders)]

    @field_validator("state_prefix", "move_prefix")
    @classmethod
    def _prefix_ends_with_slash(cls, value: str) -> str:
        return value if not value or value.endswith("/") else value + "/"

    @field_validator("modified_after")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2026-01-01T00:00:00Z")
        return value

    @model_validator(mode="after")
    def _consistent_source(self) -> S3SourceProperties:
        if self.payload == "content" and self.target_type is None:
            raise ValueError("target_type is required with payload 'content': one of aws, minio, gcp, azure, filesystem, hdfs, pass-through")
        if self.payload == "reference" and self.target_type is not None:
            raise ValueError("target_type shapes the object's content, which payload 'reference' does not send: remove target_type, or use payload 'content'")
        if self.payload == "reference" and self.after_send != "keep":
            raise ValueError("payload 'reference' needs after_send 'keep': the message points at the object, so it must stay where it is")
        if self.after_send == "move" and not self.move_prefix:
            raise ValueError("after_send 'move' needs move_prefix (where in the bucket sent objects go)")
        if self.after_send != "move" and self.move_prefix:
            raise ValueError("move_prefix applies only to after_send 'move'")
        for name in ("state_prefix", "move_prefix"):
            prefix = getattr(self, name)
            hidden = [folder for folder in self.folders if prefix and folder != WHOLE_BUCKET and folder.startswith(prefix)]
            if hidden:
                raise ValueError(f"{name} {prefix!r} holds the watched folder {hidden[0]!r}: nothing there would ever be scanned")
        if self.part_size_mib > self.max_object_size_mib:
            raise ValueError("part_size_mib cannot be larger than max_object_size_mib (a part goes in one message)")
        return self

    @property
    def addressed_bucket(self) -> str:
        """The bucket the shaped requests name."""
        return self.destination_bucket or self.bucket_name

    def excluded_prefixes(self) -> tuple[str, ...]:
        """Prefixes never scanned: this source's state, and where it moves what it sent."""
        return tuple(prefix for prefix in (self.state_prefix, self.move_prefix) if prefix)
