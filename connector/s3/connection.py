"""How to reach an S3 store: the connection properties the ``aws.s3`` target and the ``aws.s3`` source share.

kubemq-targets' and kubemq-sources' names (``aws_key``, ``aws_secret_key``,
``token``, ``region``), plus what any S3-compatible store needs (endpoint,
path style, TLS) and the SDK's timeouts and retries. Declared once, so both
kinds read the same words the same way, ``endpoint: embedded`` included.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ConfigDict, SecretStr, field_validator, model_validator

from bindings.devservices import EMBEDDED
from bindings.properties import Properties, field

MIB = 1024 * 1024


class S3ConnectionProperties(Properties):
    """Credentials, region, endpoint, TLS, timeouts and retries of an S3 client."""

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
    connect_timeout_seconds: float = field(10.0, gt=0, le=300, description="Seconds to wait for a connection to the store.", example=10)
    read_timeout_seconds: float = field(60.0, gt=0, le=3600, description="Seconds to wait for the store to send data on an open connection.", example=60)
    max_attempts: int = field(
        3,
        ge=1,
        le=20,
        description="Total attempts per S3 call with the SDK's standard retry mode (throttling, 5xx, connection errors). Set 1 to leave retries to the binding's retry middleware.",
        example=3,
    )
    embedded_data_dir: str | None = field(
        None,
        description="With `endpoint: embedded`: directory where SeaweedFS keeps its data across restarts. Default: a temporary directory removed at shutdown.",
        example="/var/lib/kubemq-s3/seaweedfs",
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

    @model_validator(mode="after")
    def _consistent_connection(self) -> S3ConnectionProperties:
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
