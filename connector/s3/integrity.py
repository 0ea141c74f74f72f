"""End-to-end integrity: digests the sender computed, checked before anything is stored.

``checksum_sha256`` (S3's ``x-amz-checksum-sha256``) and ``content_md5``
(``Content-MD5``) are base64 digests of the request's data. The connector
compares them with the bytes it received before sending anything, so a
payload damaged between the sender and the connector is refused (``BadDigest``)
whatever the store does, including on the multipart path of ``upload_item``,
where a digest of the whole object cannot go to S3. Where a single request
carries the bytes (PutObject, UploadPart) the digests are also sent along, so
the store checks the hop from the connector too (SeaweedFS and S3 do).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from typing import Any

from pydantic import field_validator

from bindings.errors import TargetError
from bindings.properties import field
from bindings.target import RequestMetadata
from bindings.wire import Request

BAD_DIGEST = "BadDigest"
# Hashing releases the GIL; above this size it runs in a thread so other requests go on meanwhile.
THREADED_FROM = 1024 * 1024
# Data is hashed this much at a time (a multiple of 3: whole base64 groups), so base64 data is never decoded whole for it.
HASHED_PIECE = 3 * 1024 * 1024
DIGESTS = {"checksum_sha256": ("SHA-256", hashlib.sha256, 32), "content_md5": ("MD5", hashlib.md5, 16)}
# S3's output fields holding a stored checksum (or its type), and the reply metadata key each becomes.
CHECKSUM_FIELDS = {
    "ChecksumCRC32": "checksum_crc32",
    "ChecksumCRC32C": "checksum_crc32c",
    "ChecksumCRC64NVME": "checksum_crc64nvme",
    "ChecksumSHA1": "checksum_sha1",
    "ChecksumSHA256": "checksum_sha256",
    "ChecksumType": "checksum_type",
}


class Digests(RequestMetadata):
    checksum_sha256: str | None = field(
        None,
        description="Base64 SHA-256 of the data (S3's `x-amz-checksum-sha256`); a mismatch is refused with `BadDigest` and nothing is stored.",
        example="LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=",
    )
    content_md5: str | None = field(
        None,
        description="Base64 MD5 of the data (HTTP `Content-MD5`); a mismatch is refused with `BadDigest` and nothing is stored.",
        example="XUFAKrxLKna5cZ2REBfFkg==",
    )

    @field_validator("checksum_sha256", "content_md5")
    @classmethod
    def _is_base64_digest(cls, value: str | None, info: Any) -> str | None:
        if value is None:
            return value
        name, _, size = DIGESTS[info.field_name]
        try:
            decoded = base64.b64decode(value, validate=True)
        except binascii.Error:
            decoded = b""
        if len(decoded) != size:
            raise ValueError(f"must be the base64 of a {size}-byte {name} digest ({4 * ((size + 2) // 3)} characters)")
        return value

    def digest_args(self) -> dict[str, str]:
        """The digests as PutObject / UploadPart parameters: the store checks them too."""
        args = {"ChecksumSHA256": self.checksum_sha256, "ContentMD5": self.content_md5}
        return {name: value for name, value in args.items() if value is not None}

    async def verify(self, request: Request) -> None:
        """Raise ``BadDigest`` unless every digest given matches the request's data."""
        for key, (name, algorithm, _) in DIGESTS.items():
            expected = getattr(self, key)
            if expected is None:
                continue
            digest = await asyncio.to_thread(_digest, algorithm, request) if request.size >= THREADED_FROM else _digest(algorithm, request)
            actual = base64.b64encode(digest.digest()).decode("ascii")
            if actual != expected:
                raise TargetError(
                    f"{BAD_DIGEST}: the {key} given ({expected}) does not match the {name} of the {request.size} bytes received ({actual}); nothing was stored",
                    code=BAD_DIGEST,
                    status=400,
                )


def _digest(algorithm: Any, request: Request) -> Any:
    """``algorithm``'s digest of the request's data, fed a piece at a time."""
    digest = algorithm()
    for start in range(0, request.size, HASHED_PIECE):
        digest.update(request.part(start, HASHED_PIECE))
    return digest


def stored_checksums(output: dict[str, Any]) -> dict[str, str]:
    """The checksums a store returned (on upload, or on HEAD with ChecksumMode=ENABLED) as reply metadata."""
    return {key: str(output[name]) for name, key in CHECKSUM_FIELDS.items() if output.get(name)}
