"""A file too large for one message, up as a multipart upload, a few parts in flight.

Each part is read from the file at its offset when a sender is free for it,
so at most ``parallel`` parts are in memory, and it goes with the base64
SHA-256 of its bytes (``checksum_sha256``): the connector and the store
refuse a part damaged on the way, and a failed part is simply sent again (the
same part number replaces it). Parts are read in order, so the SHA-256 of
the whole file is computed on the way.

``--upload-id`` continues an upload: ``list_parts`` says which parts are
there, and a listed part is kept only if its size and checksum (or its ETag,
the MD5 of its bytes) match the file's; the others are sent. A failure that
trying again cannot fix aborts the upload (unless ``--keep-upload``); any
other stop keeps it and says how to continue.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from bindings.wire import Response
from connector.files.digests import Stored, b64, composite_sha256
from connector.files.plan import Options, Piece, PlanError, choose_part_size, pieces
from connector.files.progress import progress_bar
from connector.files.sizes import MIN_PART
from connector.files.steps import Steps, TransferError

NO_SUCH_UPLOAD = "NoSuchUpload"
INVALID_REQUEST = "InvalidRequest"  # a store refusing a part checksum the upload was not made with
SHA256 = "SHA256"


@dataclass(frozen=True)
class Part:
    """A part in the upload: what completion names it by, and the SHA-256 of its bytes."""

    etag: str
    sha256: bytes
    checksum_sha256: str
    sent: bool


class Upload:
    """``upload_item`` of a file in parts; ``metadata`` is the command's, the object's options included."""

    def __init__(self, steps: Steps, file: Path, metadata: dict[str, str], options: Options, limit: int) -> None:
        self.steps, self.file, self.options, self.limit = steps, file, options, limit
        self.key = metadata.get("item_name") or metadata.get("file_name") or ""
        # What names the object in every step: the bucket when given (the target may have a default), and the key.
        self.where = {name: value for name, value in (("bucket_name", metadata.get("bucket_name", "")), ("item_name", self.key)) if value}
        self.object_options = {name: value for name, value in metadata.items() if name not in ("method", "file_name")}
        # Whether parts go with SHA-256 checksums; None until the store says (see _listed).
        self.checksums: bool | None = True

    async def run(self) -> dict[str, Any]:
        """Upload, complete, check the stored object; the result to print."""
        with self.file.open("rb") as file:
            before = os.fstat(file.fileno())
            upload_id = self.options.upload_id
            listed: dict[int, list[dict[str, Any]]] = {}
            if upload_id is None:
                part_size = self._part_size(before.st_size, self.options.part_size)
                upload_id = await self._create()
            else:
                listed = await self._listed(upload_id)
                part_size = self._part_size(before.st_size, self.options.part_size or _listed_part_size(listed))
            try:
                plan = pieces(before.st_size, part_size)
                parts, whole = await self._send_parts(file, plan, upload_id, listed)
                after = os.fstat(file.fileno())
                if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
                    raise TransferError(f"{self.file} changed while it was being uploaded")
            except TransferError as failure:
                raise await self._stopped(failure, upload_id) from None
            except asyncio.CancelledError:
                print(f"interrupted: {self._kept_hints(upload_id)[0]}", file=sys.stderr)
                raise
        completed = await self._complete(upload_id, parts)
        stored, verified = await self._check_stored(before.st_size, parts, whole)
        return {
            "bucket": completed.get("bucket") or self.where.get("bucket_name"),
            "key": self.key,
            "size": before.st_size,
            "parts": len(plan),
            "part_size": part_size,
            "uploaded_parts": sum(part.sent for part in parts.values()),
            "upload_id": upload_id,
            "etag": completed.get("etag") or stored.etag,
            "version_id": completed.get("version_id") or stored.version_id,
            "link": completed.get("link"),
            "sha256": whole,
            "checksum_sha256": stored.checksum_sha256,
            "verified": verified,
        }

    def _part_size(self, size: int, asked: int | None) -> int:
        try:
            return choose_part_size(size, asked, self.limit)
        except PlanError as exc:
            raise TransferError(f"{self.file} is {size} bytes, too large for one message: {exc}", exit_code=2) from None

    async def _create(self) -> str:
        reply = await self.steps.ask({**self.object_options, **self.where, "method": "create_multipart_upload", "checksum_algorithm": SHA256}, what="create_multipart_upload", again=False)
        return reply.metadata["upload_id"]

    async def _listed(self, upload_id: str) -> dict[int, list[dict[str, Any]]]:
        """The upload's listed parts by number (a store may list a number more than once); learns whether parts carry SHA-256 checksums.

        S3 names an upload's checksum algorithm, and refuses a part checksum of
        another one (or of any, in an upload made without one); SeaweedFS names
        none, and wants SHA-256 in an upload made with it. Without a word, the
        first part tells: SHA-256 first, Content-MD5 if the store refuses it.
        """
        listed: dict[int, list[dict[str, Any]]] = {}
        marker: dict[str, str] = {}
        algorithm = None
        while True:
            reply = await self.steps.ask({**self.where, "method": "list_parts", "upload_id": upload_id, **marker}, what=f"list_parts of upload {upload_id}")
            page = json.loads(reply.data or b"{}")
            algorithm = algorithm or page.get("ChecksumAlgorithm")
            for part in page.get("Parts") or []:
                listed.setdefault(int(part["PartNumber"]), []).append(part)
            if not page.get("IsTruncated") or not page.get("NextPartNumberMarker"):
                break
            marker = {"part_number_marker": str(page["NextPartNumberMarker"])}
        if algorithm is not None or any(part.get("ChecksumSHA256") for copies in listed.values() for part in copies):
            self.checksums = algorithm in (None, SHA256)
        else:
            self.checksums = None
        return listed

    async def _send_parts(self, file: BinaryIO, plan: list[Piece], upload_id: str, listed: dict[int, list[dict[str, Any]]]) -> tuple[dict[int, Part], str]:
        """Every part of ``plan`` in the upload, kept from ``listed`` or sent, ``parallel`` at a time; and the file's SHA-256 (hex)."""
        whole = hashlib.sha256()
        upcoming = iter(plan)
        reading = asyncio.Lock()
        parts: dict[int, Part] = {}

        def read(piece: Piece) -> bytes:
            data = os.pread(file.fileno(), piece.length, piece.offset)
            if len(data) != piece.length:
                raise TransferError(f"{self.file} changed while it was being uploaded (it ends before byte {piece.offset + piece.length})")
            whole.update(data)
            return data

        async def sender() -> None:
            while True:
                async with reading:  # in order, so the whole file's SHA-256 follows the parts
                    piece = next(upcoming, None)
                    if piece is None:
                        return
                    data = await asyncio.to_thread(read, piece)
                parts[piece.number] = await self._part(piece, len(plan), data, upload_id, listed.get(piece.number, []))
                bar.update(piece.length)

        senders = self.options.parallel if self.steps.session.concurrent else 1
        with progress_bar(plan[-1].offset + plan[-1].length, f"up {self.key}") as bar:
            try:
                async with asyncio.TaskGroup() as group:
                    for _ in range(min(senders, len(plan))):
                        group.create_task(sender())
            except ExceptionGroup as failed:
                raise failed.exceptions[0] from None  # the first failure; the other senders were stopped with it
        return parts, whole.hexdigest()

    async def _part(self, piece: Piece, count: int, data: bytes, upload_id: str, copies: list[dict[str, Any]]) -> Part:
        """The part in the upload: a listed copy that matches the file's bytes, else the bytes sent."""
        sha256 = (await asyncio.to_thread(hashlib.sha256, data)).digest()
        checksum = b64(sha256)
        kept = await _matching_copy(copies, data, checksum)
        if kept is not None:
            return Part(kept["ETag"], sha256, checksum, sent=False)
        metadata = {**self.where, "method": "upload_part", "upload_id": upload_id, "part_number": str(piece.number)}
        reply = await self._send_part(metadata, data, checksum, f"part {piece.number} of {count}")
        return Part(reply.metadata["etag"], sha256, checksum, sent=True)

    async def _send_part(self, metadata: dict[str, str], data: bytes, checksum: str, what: str) -> Response:
        """``upload_part`` with the digest the upload takes: the SHA-256 checksum, else Content-MD5 (see ``_listed``)."""
        if self.checksums is not False:
            try:
                reply = await self.steps.ask({**metadata, "checksum_sha256": checksum}, data, what=what)
            except TransferError as refused:
                if self.checksums is not None or refused.code != INVALID_REQUEST:
                    raise
                self.checksums = False
            else:
                self.checksums = True
                stored = reply.metadata.get("checksum_sha256")
                if stored and stored != checksum:
                    raise TransferError(f"{what}: the store's checksum {stored} is not the part's {checksum}", permanent=False)
                return reply
        md5 = b64((await asyncio.to_thread(hashlib.md5, data)).digest())
        return await self.steps.ask({**metadata, "content_md5": md5}, data, what=what)

    async def _complete(self, upload_id: str, parts: dict[int, Part]) -> dict[str, str]:
        """Complete with the explicit part list; a failure here keeps the upload (every part is in it)."""
        listed = [{"PartNumber": number, "ETag": part.etag, **({"ChecksumSHA256": part.checksum_sha256} if self.checksums else {})} for number, part in sorted(parts.items())]
        metadata = {**self.object_options, **self.where, "method": "complete_multipart_upload", "upload_id": upload_id}
        try:
            reply = await self.steps.ask(metadata, json.dumps(listed).encode(), what="complete_multipart_upload", again=False)
        except TransferError as failure:
            raise failure.with_hints(*self._kept_hints(upload_id)) from None
        return reply.metadata

    async def _check_stored(self, size: int, parts: dict[int, Part], whole: str) -> tuple[Stored, str]:
        """The stored object described by ``head_item``: its size must be the file's, its SHA-256 checksum (when given) the parts'."""
        stored = Stored.from_head(await self.steps.ask({**self.where, "method": "head_item"}, what="head_item of the uploaded object"))
        subject = f"the uploaded object {self.where.get('bucket_name', '')}/{self.key}"
        if stored.size != size:
            raise TransferError(f"{subject} is {stored.size} bytes, not the {size} bytes of {self.file}")
        if not stored.checksum_sha256:
            return stored, "size"
        expected = composite_sha256([part.sha256 for _, part in sorted(parts.items())]) if "-" in stored.checksum_sha256 else b64(bytes.fromhex(whole))
        if stored.checksum_sha256 != expected:
            raise TransferError(f"{subject} has ChecksumSHA256 {stored.checksum_sha256}, not {expected} as computed from {self.file}")
        return stored, "ChecksumSHA256"

    async def _stopped(self, failure: TransferError, upload_id: str) -> TransferError:
        """``failure`` with what became of the upload: aborted when trying again cannot help (unless kept), else kept for ``--upload-id``."""
        if failure.code == NO_SUCH_UPLOAD:
            return failure.with_hints(f"upload {upload_id} no longer exists (completed or aborted); start a new upload without --upload-id")
        if not failure.permanent or self.options.keep_upload:
            return failure.with_hints(*self._kept_hints(upload_id))
        try:
            await self.steps.ask({**self.where, "method": "abort_multipart_upload", "upload_id": upload_id}, what=f"abort_multipart_upload of {upload_id}")
        except TransferError as abort_failure:
            return failure.with_hints(f"aborting upload {upload_id} failed too: {abort_failure.args[0]}", *self._kept_hints(upload_id)[1:])
        return failure.with_hints(f"upload {upload_id} was aborted, its parts deleted (--keep-upload keeps an upload that fails)")

    def _kept_hints(self, upload_id: str) -> tuple[str, str]:
        return (
            f"upload {upload_id} is kept: run the same command with --upload-id {upload_id} to send only the parts it lacks",
            f"or drop it: kubemq-s3 send -m method=abort_multipart_upload {_shown(self.where)} -m upload_id={upload_id}",
        )


async def _matching_copy(copies: list[dict[str, Any]], data: bytes, checksum: str) -> dict[str, Any] | None:
    """The newest listed copy of a part holding exactly ``data``: same size, and same SHA-256 checksum or ETag (MD5)."""
    sized = [copy for copy in copies if int(copy.get("Size", -1)) == len(data)]
    if not sized:
        return None
    if any(copy.get("ChecksumSHA256") for copy in sized):
        matching = [copy for copy in sized if copy.get("ChecksumSHA256") == checksum]
    else:
        md5 = (await asyncio.to_thread(hashlib.md5, data)).hexdigest()
        matching = [copy for copy in sized if str(copy.get("ETag", "")).strip('"') == md5]
    return max(matching, key=lambda copy: str(copy.get("LastModified", ""))) if matching else None


def _listed_part_size(listed: dict[int, list[dict[str, Any]]]) -> int | None:
    """The part size an interrupted upload was using: its largest part (every part but the last has it)."""
    largest = max((int(copy.get("Size", 0)) for copies in listed.values() for copy in copies), default=0)
    return largest if largest >= MIN_PART else None


def _shown(where: dict[str, str]) -> str:
    return " ".join(f"-m {name}={value}" for name, value in where.items())
