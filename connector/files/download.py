"""An object too large for one reply, down in ``range`` pieces, a few in flight, checked before it is kept.

``head_item`` gives the size, ETag, version and checksum; each piece is
written at its offset into a temporary file beside ``--output``, so at most
``parallel`` pieces are in memory. A piece whose ETag is not the one
``head_item`` gave means the object was replaced meanwhile (a version seen by
``head_item`` is asked for by id, so it cannot change). The file is then
read back: its SHA-256 is printed, and it must match the store's checksum or
MD5 ETag where there is one. Only then does it become ``--output``; a failed
download leaves nothing there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from connector.files.digests import Stored, check_file
from connector.files.plan import Options, Piece, carried, pieces
from connector.files.progress import progress_bar
from connector.files.sizes import DEFAULT_PART
from connector.files.steps import Steps, TransferError

# What describes the whole object: a ranged get must not carry a range or decoding of its own.
OWN_KEYS = ("method", "range", "decode")


class Download:
    """``get_item`` of an object into ``output`` in ranges; ``metadata`` is the command's (bucket, key, version)."""

    def __init__(self, steps: Steps, metadata: dict[str, str], output: Path, options: Options, reply_limit: int | None) -> None:
        self.steps, self.output, self.options = steps, output, options
        self.where = {name: value for name, value in metadata.items() if name not in OWN_KEYS}
        self.subject = f"object {metadata.get('bucket_name', '')}/{metadata.get('item_name', '')}"
        largest = min(carried(options.max_message_size), reply_limit or carried(options.max_message_size))
        self.piece_size = min(options.part_size or DEFAULT_PART, largest)

    async def run(self) -> dict[str, Any]:
        """Download, check, keep; the result to print."""
        head = await self.steps.ask({**self.where, "method": "head_item"}, what=f"head_item of {self.subject}")
        stored = Stored.from_head(head)
        # A version seen by head_item is asked for by id: the ranges then all come from it.
        pinned = {"version_id": stored.version_id} if stored.version_id else {}
        plan = pieces(stored.size, self.piece_size)
        descriptor, temporary = tempfile.mkstemp(dir=self.output.parent, prefix=f".{self.output.name}.", suffix=".partial")
        try:
            try:
                os.ftruncate(descriptor, stored.size)
                await self._fetch(descriptor, plan, stored, pinned)
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            # The likeliest part size of a multipart object: the one this command uploads with.
            checked = await asyncio.to_thread(check_file, Path(temporary), stored, self.options.part_size or DEFAULT_PART)
            if checked.problem is not None:
                raise TransferError(f"{self.subject}: {checked.problem}; {self.output} was not written")
            os.replace(temporary, self.output)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        return {
            "bucket": head.metadata.get("bucket") or self.where.get("bucket_name"),
            "key": head.metadata.get("key") or self.where.get("item_name"),
            "size": stored.size,
            "parts": len(plan),
            "part_size": self.piece_size,
            "etag": stored.etag,
            "version_id": stored.version_id,
            "file": str(self.output),
            "sha256": checked.sha256,
            "verified": checked.verified,
        }

    async def _fetch(self, descriptor: int, plan: list[Piece], stored: Stored, pinned: dict[str, str]) -> None:
        """Every piece of ``plan`` written at its offset, ``parallel`` at a time."""
        upcoming = iter(plan)

        async def fetcher() -> None:
            for piece in upcoming:  # one shared iterator: each piece is taken once
                await self._piece(descriptor, piece, stored, pinned)
                bar.update(piece.length)

        with progress_bar(stored.size, f"down {self.where.get('item_name', '')}") as bar:
            try:
                async with asyncio.TaskGroup() as group:
                    for _ in range(min(self.options.parallel if self.steps.session.concurrent else 1, len(plan))):
                        group.create_task(fetcher())
            except ExceptionGroup as failed:
                raise failed.exceptions[0] from None  # the first failure; the other fetchers were stopped with it

    async def _piece(self, descriptor: int, piece: Piece, stored: Stored, pinned: dict[str, str]) -> None:
        reply = await self.steps.ask({**self.where, **pinned, "method": "get_item", "range": piece.range}, what=f"{piece.range} of {self.subject}")
        etag = reply.metadata.get("etag")
        if etag and stored.etag and etag != stored.etag:
            raise TransferError(f"{self.subject} changed while it was being downloaded (ETag {stored.etag}, now {etag}); {self.output} was not written: run the command again")
        data = reply.data or b""
        if len(data) != piece.length:
            raise TransferError(f"{piece.range} of {self.subject} came back as {len(data)} bytes, not {piece.length}; {self.output} was not written")
        await asyncio.to_thread(os.pwrite, descriptor, data, piece.offset)
