"""The arithmetic and checks behind ``send``'s files of any size: sizes, part plans, S3's checksums of checksums, what is worth retrying."""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
from pathlib import Path

import pytest

from bindings.wire import Request, Response
from connector.files.digests import Stored, check_file, composite_sha256
from connector.files.plan import PlanError, carried, choose_part_size, pieces, request_size
from connector.files.sizes import parse_size, part_size
from connector.files.steps import error_code, worth_retrying

MIB = 1024 * 1024


@pytest.mark.parametrize(("text", "size"), [("5242880", 5 * MIB), ("16MiB", 16 * MIB), ("16M", 16 * MIB), ("16 mb", 16 * MIB), ("1GiB", 1024 * MIB), ("64k", 65536), ("7B", 7)])
def test_sizes_are_bytes_or_binary_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "16XB", "-1", "1.5MiB", "MiB"])
def test_a_size_that_is_none_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"is not a size: write bytes, or a number with KiB, MiB or GiB \(e.g. 16MiB\)"):
        parse_size(text)


def test_a_part_is_at_least_s3s_smallest() -> None:
    assert part_size("5MiB") == 5 * MIB
    with pytest.raises(argparse.ArgumentTypeError, match="less than 5MiB, S3's smallest part"):
        part_size("4MiB")


@pytest.mark.parametrize("length", [0, 1, 2, 3, 4, 1000, 5 * MIB + 1])
def test_request_size_is_the_size_of_the_body_sent(length: int) -> None:
    metadata = {"method": "upload_part", "item_name": 'a "quoted" ü key', "part_number": "7"}
    assert request_size(metadata, length) == len(Request(metadata=metadata, data=bytes(length)).to_json())


def test_the_part_size_is_16_mib_or_what_a_message_carries_or_what_10000_parts_need() -> None:
    assert choose_part_size(300 * MIB, None, 100 * MIB) == 16 * MIB
    assert choose_part_size(12 * MIB, None, 8 * MIB) == 5 * MIB  # a message of 8 MiB carries 6.0 MiB of data
    assert choose_part_size(500 * 1024 * MIB, None, 100 * MIB) == 52 * MIB  # 10,000 parts of at least 51.2 MiB
    assert choose_part_size(300 * MIB, 8 * MIB, 100 * MIB) == 8 * MIB
    with pytest.raises(PlanError, match=r"--part-size 16MiB does not fit in one message of 8MiB \(it carries at most 6242304 bytes of data\)"):
        choose_part_size(300 * MIB, 16 * MIB, 8 * MIB)
    with pytest.raises(PlanError, match="need parts of 105MiB to stay within S3's 10000 parts, more than one message of 100MiB carries"):
        choose_part_size(1024 * 1024 * MIB, None, 100 * MIB)
    with pytest.raises(PlanError, match="less than S3's smallest part"):
        choose_part_size(12 * MIB, None, 6 * MIB)
    assert carried(100 * MIB) == 78594048  # what get_item's ReplyTooLarge says a reply of the default source carries


def test_pieces_cover_the_whole_in_order_with_their_ranges() -> None:
    cut = pieces(12 * MIB + 5, 5 * MIB)
    assert [(piece.number, piece.offset, piece.length) for piece in cut] == [(1, 0, 5 * MIB), (2, 5 * MIB, 5 * MIB), (3, 10 * MIB, 2 * MIB + 5)]
    assert cut[2].range == f"bytes={10 * MIB}-{12 * MIB + 4}"


def head(**fields: object) -> Response:
    return Response.ok(json.dumps(fields).encode(), bucket="b", key="k")


@pytest.fixture
def written(tmp_path: Path) -> tuple[Path, bytes]:
    content = os.urandom(12 * MIB + 12345)
    path = tmp_path / "object.bin"
    path.write_bytes(content)
    return path, content


def parts_of(content: bytes, size: int) -> list[bytes]:
    return [content[offset : offset + size] for offset in range(0, len(content), size)]


def test_a_multipart_objects_checksum_is_found_whatever_its_whole_mib_part_size(written: tuple[Path, bytes]) -> None:
    path, content = written
    for size in (5 * MIB, 6 * MIB):
        checksum = composite_sha256([hashlib.sha256(part).digest() for part in parts_of(content, size)])
        checked = check_file(path, Stored.from_head(head(ContentLength=len(content), ETag='"x-3"', ChecksumSHA256=checksum)), 16 * MIB)
        assert (checked.sha256, checked.verified, checked.problem) == (hashlib.sha256(content).hexdigest(), "ChecksumSHA256", None)


def test_an_md5_etag_is_checked_whole_or_by_parts(written: tuple[Path, bytes]) -> None:
    path, content = written
    whole = f'"{hashlib.md5(content).hexdigest()}"'
    assert check_file(path, Stored.from_head(head(ContentLength=len(content), ETag=whole)), 16 * MIB).verified == "ETag"
    multipart = hashlib.md5(b"".join(hashlib.md5(part).digest() for part in parts_of(content, 5 * MIB))).hexdigest()
    assert check_file(path, Stored.from_head(head(ContentLength=len(content), ETag=f'"{multipart}-3"')), 5 * MIB).verified == "ETag"


def test_bytes_that_match_no_claim_are_a_problem_naming_both(written: tuple[Path, bytes]) -> None:
    path, content = written
    other = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    checked = check_file(path, Stored.from_head(head(ContentLength=len(content), ETag='"e"', ChecksumSHA256=other)), 16 * MIB)
    actual = base64.b64encode(hashlib.sha256(content).digest()).decode()
    assert (checked.verified, checked.problem) == (None, f"the ChecksumSHA256 of the bytes received is {actual}, not the store's {other}")


def test_without_a_checksum_or_an_md5_etag_there_is_nothing_to_check(written: tuple[Path, bytes]) -> None:
    path, content = written
    kms = head(ContentLength=len(content), ETag=f'"{hashlib.md5(b"not the content").hexdigest()}"', ServerSideEncryption="aws:kms")
    checked = check_file(path, Stored.from_head(kms), 16 * MIB)
    assert (checked.sha256, checked.verified, checked.problem) == (hashlib.sha256(content).hexdigest(), None, None)


@pytest.mark.parametrize(
    ("error", "again"),
    [
        ("SlowDown: Please reduce your request rate.\n\tstatus code: 503, request id: X", True),
        ("InternalError: We encountered an internal error.\n\tstatus code: 500, request id: X", True),
        ("BadDigest: the checksum_sha256 given (a) does not match the SHA-256 of the 5 bytes received (b); nothing was stored", True),
        ("ReadTimeoutError: Read timeout on endpoint URL", True),
        ("the S3 operation timed out", True),
        ("NoSuchUpload: The specified upload does not exist.\n\tstatus code: 404, request id: X", False),
        ("AccessDenied: method upload_part is not allowed on binding 's3' (allowed_methods)", False),
        ("error parsing part_number, Input should be less than or equal to 10000", False),
        ("ReplyTooLarge: bytes=0-9 of object b/k is 10 bytes, more than ...", False),
    ],
)
def test_only_failures_that_can_pass_are_tried_again(error: str, again: bool) -> None:
    assert worth_retrying(error) is again


def test_the_error_code_is_the_leading_word() -> None:
    assert (error_code("NoSuchUpload: gone\n\tstatus code: 404"), error_code("error parsing part_number, ...")) == ("NoSuchUpload", "")
