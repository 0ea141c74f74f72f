"""Server-side encryption of new objects: a target-wide default, overridden per request.

S3 encrypts with its own keys (``AES256``, SSE-S3) or with a KMS key
(``aws:kms``, SSE-KMS, optionally naming the key). A request that names an
algorithm replaces the target's default entirely (its key id included), so a
request asking for ``AES256`` never inherits the default's KMS key; a request
giving only ``sse_kms_key_id`` means ``aws:kms`` with that key.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import model_validator

from bindings.properties import field
from bindings.target import RequestMetadata

Algorithm = Literal["AES256", "aws:kms"]
KMS: Algorithm = "aws:kms"

ALGORITHM_DESCRIPTION = "Server-side encryption: `AES256` (keys managed by S3) or `aws:kms` (a KMS key)."
KEY_DESCRIPTION = "KMS key id or ARN for `aws:kms` (S3's default KMS key when left out); implies `aws:kms`."
KEY_EXAMPLE = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


class Defaults(Protocol):
    """The target properties holding the default (``S3Properties``)."""

    @property
    def server_side_encryption(self) -> str | None: ...

    @property
    def sse_kms_key_id(self) -> str | None: ...


def check_pair(algorithm: str | None, key_id: str | None) -> None:
    """A KMS key id only goes with ``aws:kms``."""
    if key_id is not None and algorithm not in (None, KMS):
        raise ValueError(f"sse_kms_key_id applies only to server_side_encryption={KMS}, not {algorithm}")


def encryption_args(algorithm: str | None, key_id: str | None) -> dict[str, Any]:
    """The pair as PutObject / CreateMultipartUpload / CopyObject parameters."""
    if key_id is not None:
        return {"ServerSideEncryption": KMS, "SSEKMSKeyId": key_id}
    return {"ServerSideEncryption": algorithm} if algorithm is not None else {}


class Encryption(RequestMetadata):
    server_side_encryption: Algorithm | None = field(None, description=ALGORITHM_DESCRIPTION + " Default: the target's `server_side_encryption`.", example="AES256")
    sse_kms_key_id: str | None = field(None, description=KEY_DESCRIPTION, example=KEY_EXAMPLE)

    @model_validator(mode="after")
    def _key_fits_algorithm(self) -> Encryption:
        check_pair(self.server_side_encryption, self.sse_kms_key_id)
        return self

    def encryption_args(self, defaults: Defaults) -> dict[str, Any]:
        """This request's choice, or else the target's default."""
        if self.server_side_encryption is None and self.sse_kms_key_id is None:
            return encryption_args(defaults.server_side_encryption, defaults.sse_kms_key_id)
        return encryption_args(self.server_side_encryption, self.sse_kms_key_id)
