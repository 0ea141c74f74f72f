"""Checksums: each part's SHA-256, S3's checksum of checksums, and a downloaded file checked against the store's word.

S3 describes an object by a whole-object checksum, or, for a multipart
object, by ``<digest of the parts' digests>-<part count>`` (``ChecksumSHA256``
of a multipart upload made with SHA-256 checksums, and the ETag: MD5 of the
parts' MD5s). Checking those needs the part boundaries, which S3 does not
say: every part but the last has one size, so the sizes consistent with the
object's size and part count are tried, whole MiB first (what uploaders
use), the one this command uploads with before them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bindings.wire import Response
from connector.files.sizes import MIB

READ_BLOCK = MIB
MOST_LAYOUTS = 8  # part sizes tried for a multipart object; each is one more digest per byte
# Server-side encryption with KMS or a customer key: the ETag is no MD5 of the content then.
OPAQUE_ETAG_ENCRYPTION = ("aws:kms", "aws:kms:dsse")
# hashlib.sha256 and the like: called with no data, or with the data to digest.
Hash = Callable[..., Any]


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def checksum_of_checksums(digests: list[bytes], algorithm: Hash = hashlib.sha256) -> bytes:
    """S3's digest of a multipart object: the digest of its parts' digests, joined in order."""
    return algorithm(b"".join(digests)).digest()  # type: ignore[no-any-return]


def composite_sha256(digests: list[bytes]) -> str:
    """``ChecksumSHA256`` of a multipart object made of parts with these SHA-256 digests."""
    return f"{b64(checksum_of_checksums(digests))}-{len(digests)}"


@dataclass(frozen=True)
class Stored:
    """What ``head_item`` says about an object."""

    size: int
    etag: str
    version_id: str | None = None
    checksum_sha256: str | None = None
    etag_is_md5: bool = True

    @classmethod
    def from_head(cls, response: Response) -> Stored:
        head: dict[str, Any] = json.loads(response.data or b"{}")
        meta = response.metadata
        encrypted = head.get("ServerSideEncryption") in OPAQUE_ETAG_ENCRYPTION or bool(head.get("SSECustomerAlgorithm"))
        return cls(
            size=int(head.get("ContentLength", meta.get("content_length", 0))),
            etag=str(head.get("ETag") or meta.get("etag", "")),
            version_id=head.get("VersionId") or meta.get("version_id") or None,
            checksum_sha256=head.get("ChecksumSHA256") or meta.get("checksum_sha256") or None,
            etag_is_md5=not encrypted,
        )

    def claim(self) -> Claim | None:
        """The strongest statement about the content that can be checked: the SHA-256 checksum, else an MD5 ETag."""
        if self.checksum_sha256:
            return Claim.parse("ChecksumSHA256", self.checksum_sha256, hashlib.sha256, b64)
        etag = self.etag.strip('"')
        digest, _, count = etag.partition("-")
        if self.etag_is_md5 and len(digest) == 32 and (not count or count.isdigit()):
            return Claim.parse("ETag", etag, hashlib.md5, bytes.hex)
        return None


@dataclass(frozen=True)
class Claim:
    """A digest the store gave: of the whole object, or of its ``parts`` parts' digests."""

    name: str
    value: str
    parts: int
    algorithm: Hash
    encode: Callable[[bytes], str]

    @classmethod
    def parse(cls, name: str, value: str, algorithm: Hash, encode: Callable[[bytes], str]) -> Claim:
        _, _, count = value.partition("-")
        return cls(name, value, int(count) if count.isdigit() else 0, algorithm, encode)

    def layouts(self, size: int, preferred: int) -> list[int]:
        """Part sizes that cut ``size`` bytes into exactly ``parts`` parts, the likeliest first."""
        if self.parts <= 1:
            return [max(size, 1)]
        smallest, largest = math.ceil(size / self.parts), math.ceil(size / (self.parts - 1)) - 1
        whole_mib = range(math.ceil(smallest / MIB) * MIB, largest + 1, MIB)
        found = [part for part in (preferred, *whole_mib, smallest) if smallest <= part <= largest]
        return list(dict.fromkeys(found))[:MOST_LAYOUTS]


class PartHasher:
    """Digests of consecutive ``size``-byte parts of a stream fed block by block."""

    def __init__(self, algorithm: Hash, size: int) -> None:
        self.algorithm, self.size = algorithm, size
        self.digests: list[bytes] = []
        self._current, self._filled = algorithm(), 0

    def update(self, block: memoryview) -> None:
        while block:
            taken = block[: self.size - self._filled]
            self._current.update(taken)
            self._filled += len(taken)
            block = block[len(taken) :]
            if self._filled == self.size:
                self._close_part()

    def finish(self) -> list[bytes]:
        if self._filled:
            self._close_part()
        return self.digests

    def _close_part(self) -> None:
        self.digests.append(self._current.digest())
        self._current, self._filled = self.algorithm(), 0


@dataclass(frozen=True)
class Checked:
    """A file read back: its SHA-256 (hex), and the store's claim it matched, or what did not match."""

    sha256: str
    verified: str | None
    problem: str | None = None


def check_file(path: Path, stored: Stored, preferred_part: int) -> Checked:
    """Read ``path`` once: its SHA-256, and whether it matches what ``stored`` claims (None: nothing to check against)."""
    claim = stored.claim()
    whole_sha256 = hashlib.sha256()
    whole = claim.algorithm() if claim is not None and not claim.parts else None
    layouts = claim.layouts(stored.size, preferred_part) if claim is not None and claim.parts else []
    hashers = [PartHasher(claim.algorithm, size) for size in layouts] if claim is not None else []
    digests = [digest for digest in (whole_sha256, whole, *hashers) if digest is not None]
    buffer = bytearray(READ_BLOCK)
    with path.open("rb", buffering=0) as file:
        while count := file.readinto(buffer):
            block = memoryview(buffer)[:count]
            for digest in digests:
                digest.update(block)
    sha256 = whole_sha256.hexdigest()
    if claim is None:
        return Checked(sha256, None)
    if whole is not None:
        computed = [claim.encode(whole.digest())]
    else:
        computed = [f"{claim.encode(checksum_of_checksums(hasher.finish(), claim.algorithm))}-{claim.parts}" for hasher in hashers]
    if claim.value in computed:
        return Checked(sha256, claim.name)
    if whole is not None:
        return Checked(sha256, None, f"the {claim.name} of the bytes received is {computed[0]}, not the store's {claim.value}")
    tried = ", ".join(str(size) for size in layouts) or "none fits"
    return Checked(sha256, None, f"the {claim.name} of the bytes received, as {claim.parts} parts of {tried} bytes, is not the store's {claim.value}")
