"""Moving object bytes with bounded memory: multipart upload from a payload, body download.

A request's payload is already in memory, so a multipart upload streams
parts of it with a bounded number in flight, each read as botocore asks:
from decoded data without a copy, or, for data still in the message as
base64, decoded a read at a time (the object, or a part of it, is never
decoded whole next to its encoding). It aborts the upload if any part fails,
so no orphaned parts keep costing storage. A download is read straight into one
preallocated buffer of the object's size instead of a list of chunks joined
at the end (which would need twice the memory), and only once its announced
size is within the caller's bound: the bound is what keeps memory in check.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
from collections.abc import AsyncIterator
from typing import Any

from bindings.errors import TargetError
from bindings.wire import Request

MAX_PARTS = 10_000
READ_CHUNK = 1024 * 1024
# Parameters CreateMultipartUpload does not take; they go on CompleteMultipartUpload instead.
COMPLETE_ONLY = ("IfNoneMatch",)


class PayloadReader(io.RawIOBase):
    """A seekable read-only file over ``size`` bytes of a request's data from ``start``: botocore streams (and re-sends) it."""

    def __init__(self, request: Request, start: int = 0, size: int | None = None) -> None:
        super().__init__()
        self._request = request
        self._start = start
        self._size = max(0, min(request.size - start, request.size if size is None else size))
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        size = max(0, min(len(buffer), self._size - self._position))
        buffer[:size] = self._request.part(self._start + self._position, size)
        self._position += size
        return size

    def __len__(self) -> int:
        return self._size


def part_size_for(total: int, preferred: int) -> int:
    """``preferred``, raised (to whole MiB) when the object would otherwise need more than 10,000 parts."""
    needed = math.ceil(total / MAX_PARTS)
    mib = 1024 * 1024
    return max(preferred, math.ceil(needed / mib) * mib)


async def multipart_upload(client: Any, bucket: str, key: str, request: Request, args: dict[str, Any], part_size: int, concurrency: int) -> tuple[dict[str, Any], str]:
    """Upload the request's data in parts, at most ``concurrency`` at a time; returns CompleteMultipartUpload's output and the upload id."""
    create_args = {name: value for name, value in args.items() if name not in COMPLETE_ONLY}
    complete_args = {name: value for name, value in args.items() if name in COMPLETE_ONLY}
    created = await client.create_multipart_upload(Bucket=bucket, Key=key, **create_args)
    upload_id: str = created["UploadId"]
    size = part_size_for(request.size, part_size)
    slots = asyncio.Semaphore(concurrency)

    async def send(number: int, start: int) -> dict[str, Any]:
        async with slots:
            part = await client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=PayloadReader(request, start, size))
        return {"ETag": part["ETag"], "PartNumber": number}

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(send(number, start)) for number, start in enumerate(range(0, request.size, size), start=1)]
        parts = [task.result() for task in tasks]
        output = await client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}, **complete_args)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            await client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        if isinstance(exc, BaseExceptionGroup):
            raise exc.exceptions[0] from exc
        raise
    return output, upload_id


class IncompleteBody(TargetError):
    """A body that ended short of, or ran past, its Content-Length: the connection broke, fetching it again may work."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, code=code, retryable=True)


class BodyTooLarge(Exception):
    """A body longer than the reader's bound; ``length`` is its announced size (None when the store announced none)."""

    def __init__(self, length: int | None) -> None:
        super().__init__(f"body of {length} bytes" if length is not None else "body longer than the bound")
        self.length = length


async def read_body(output: dict[str, Any], most: int | None = None) -> bytearray:
    """The whole body of a GetObject output (see ``collect``); its connection is released whatever happens."""
    body = output["Body"]
    async with body:
        return await collect(body.iter_chunks(READ_CHUNK), output.get("ContentLength"), most)


async def collect(chunks: AsyncIterator[bytes], length: int | None, most: int | None = None) -> bytearray:
    """A body of ``length`` bytes (None: not announced) read into one buffer of that size, so it is held once.

    Raises ``BodyTooLarge`` when the body is longer than ``most`` bytes: before
    reading anything when the length says so, else as soon as it shows; and
    ``IncompleteBody`` when the body ends short of its length or runs past it.
    """
    if most is not None and length is not None and length > most:
        raise BodyTooLarge(length)
    if length is None:
        buffer = bytearray()
        async for chunk in chunks:
            buffer += chunk
            if most is not None and len(buffer) > most:
                raise BodyTooLarge(None)
        return buffer
    buffer = bytearray(length)
    position = 0
    with memoryview(buffer) as view:
        async for chunk in chunks:
            end = position + len(chunk)
            if end > length:
                raise IncompleteBody(f"the store sent more than the announced {length} bytes", code="InvalidResponse")
            view[position:end] = chunk
            position = end
    if position != length:
        raise IncompleteBody(f"IncompleteRead: received {position} of {length} bytes", code="IncompleteRead")
    return buffer
