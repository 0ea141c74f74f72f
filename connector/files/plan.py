"""What fits in one KubeMQ message, and how a file or an object is cut into pieces that do.

A message carries its data as base64 inside a JSON envelope, so one message
of ``limit`` bytes carries about three quarters of it: the same sum the
sources make for their replies. A file goes up in parts of at least S3's
5 MiB (but the last) and at most 10,000 of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bindings.source import REPLY_ENVELOPE_ALLOWANCE
from bindings.wire import Request
from connector.files.sizes import DEFAULT_PART, MIB, MIN_PART, shown
from connector.s3.transfer import MAX_PARTS, part_size_for


@dataclass(frozen=True)
class Options:
    """How a large file moves: part size (None: chosen), parts in flight, the binding's message limit, and for uploads, resume and keep."""

    part_size: int | None
    parallel: int
    max_message_size: int
    upload_id: str | None = None
    keep_upload: bool = False


class PlanError(ValueError):
    """Sizes that cannot work together (a part larger than a message, more than 10,000 parts)."""


@dataclass(frozen=True)
class Piece:
    """One part of a file (``number`` is S3's part number, from 1), or one range of an object."""

    number: int
    offset: int
    length: int

    @property
    def range(self) -> str:
        """The HTTP range of these bytes, as ``get_item``'s ``range`` takes it."""
        return f"bytes={self.offset}-{self.offset + self.length - 1}"


def carried(limit: int) -> int:
    """The most data bytes one message of ``limit`` bytes carries."""
    return (limit - REPLY_ENVELOPE_ALLOWANCE) * 3 // 4


def request_size(metadata: dict[str, str], length: int) -> int:
    """The exact size of a request body with ``length`` bytes of data, as ``Request.to_json`` writes it."""
    envelope = len(Request(metadata=metadata).to_json())
    return envelope + (len(',"data":""') + 4 * math.ceil(length / 3) if length else 0)


def pieces(total: int, size: int) -> list[Piece]:
    """``total`` bytes in pieces of ``size`` (the last one shorter)."""
    return [Piece(number, offset, min(size, total - offset)) for number, offset in enumerate(range(0, total, size), start=1)]


def choose_part_size(total: int, asked: int | None, limit: int) -> int:
    """The part size for a file of ``total`` bytes: ``asked``, else 16 MiB (less if a message carries less), raised to stay within 10,000 parts."""
    largest = carried(limit)
    if asked is not None and asked > largest:
        raise PlanError(
            f"--part-size {shown(asked)} does not fit in one message of {shown(limit)} (it carries at most {largest} bytes of data); "
            "lower --part-size, or raise --max-message-size if the binding's max_message_size allows"
        )
    size = part_size_for(total, asked if asked is not None else min(DEFAULT_PART, largest // MIB * MIB))
    if size > largest:
        raise PlanError(
            f"{total} bytes need parts of {shown(size)} to stay within S3's {MAX_PARTS} parts, "
            f"more than one message of {shown(limit)} carries ({largest} bytes); raise --max-message-size if the binding's max_message_size allows"
        )
    if size < MIN_PART:
        raise PlanError(f"a message of {shown(limit)} carries at most {largest} bytes of data, less than S3's smallest part (5MiB); raise the binding's max_message_size and --max-message-size")
    return size
