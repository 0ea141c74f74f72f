"""get_item and the source's reply limit: an object whose reply cannot be sent is refused before it is read.

``TargetContext.max_reply_data`` is the largest reply ``data`` the binding's
source can send; without the check the target would read the whole object
(memory) only for the source to fail sending it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
import pytest_asyncio

from bindings.errors import TargetError
from bindings.kubemq.client import query
from bindings.wire import Request
from connector.s3 import S3Target
from connector.s3.transfer import BodyTooLarge, read_body
from devbroker import EmbeddedBroker
from tests.fixtures.kubemq import StartConnector, s3_binding_yaml
from tests.s3.support import CONTEXT, call, open_target

LIMIT = 1000
# {"base64":"..."} around 4/3 of the content: 738 bytes make 997, 739 bytes 1001.
BASE64_FITS = 738


@pytest_asyncio.fixture
async def limited(s3_properties: dict[str, str]) -> AsyncIterator[S3Target]:
    """A target whose binding's source can send at most ``LIMIT`` bytes of reply data."""
    target = await open_target(s3_properties, replace(CONTEXT, max_reply_data=LIMIT))
    yield target
    await target.close()


def refusal(subject: str, size: str, piece: int = LIMIT) -> str:
    return (
        f"ReplyTooLarge: {subject} is {size}, more than the {LIMIT} bytes of data a reply can carry through this binding's source; "
        f"get it in parts with range (at most {piece} bytes each, e.g. range=bytes=0-{piece - 1}) or download it directly from a presign_url URL"
    )


async def test_an_object_larger_than_the_reply_limit_is_refused_naming_size_limit_and_ways_out(limited: S3Target, s3_client: Any, bucket: str) -> None:
    await s3_client.put_object(Bucket=bucket, Key="fits.bin", Body=bytes(LIMIT))
    await s3_client.put_object(Bucket=bucket, Key="big.bin", Body=bytes(LIMIT + 1))
    assert (await call(limited, method="get_item", bucket_name=bucket, item_name="fits.bin")).data == bytes(LIMIT)
    with pytest.raises(TargetError) as caught:
        await call(limited, method="get_item", bucket_name=bucket, item_name="big.bin")
    assert str(caught.value) == refusal(f"object {bucket}/big.bin", f"{LIMIT + 1} bytes")
    assert (caught.value.code, caught.value.retryable) == ("ReplyTooLarge", False)


async def test_a_range_is_measured_by_its_own_length(limited: S3Target, s3_client: Any, bucket: str) -> None:
    await s3_client.put_object(Bucket=bucket, Key="big.bin", Body=bytes(range(256)) * 20)
    part = await call(limited, method="get_item", bucket_name=bucket, item_name="big.bin", range=f"bytes=0-{LIMIT - 1}")
    assert part.data == (bytes(range(256)) * 20)[:LIMIT]
    with pytest.raises(TargetError) as caught:
        await call(limited, method="get_item", bucket_name=bucket, item_name="big.bin", range=f"bytes=0-{LIMIT}")
    assert str(caught.value) == refusal(f"bytes=0-{LIMIT} of object {bucket}/big.bin", f"{LIMIT + 1} bytes")


@pytest.mark.parametrize(("decode", "content_type"), [("base64", "text/plain"), ("auto", "application/octet-stream")])
async def test_base64_replies_are_measured_encoded(limited: S3Target, s3_client: Any, bucket: str, decode: str, content_type: str) -> None:
    # Raw, both objects would fit; base64 makes the second one too large.
    await s3_client.put_object(Bucket=bucket, Key="fits", Body=bytes(BASE64_FITS), ContentType=content_type)
    await s3_client.put_object(Bucket=bucket, Key="over", Body=bytes(BASE64_FITS + 1), ContentType=content_type)
    reply = await call(limited, method="get_item", bucket_name=bucket, item_name="fits", decode=decode)
    assert json.loads(reply.data or b"") == {"base64": base64.b64encode(bytes(BASE64_FITS)).decode()} and len(reply.data or b"") == 997
    with pytest.raises(TargetError) as caught:
        await call(limited, method="get_item", bucket_name=bucket, item_name="over", decode=decode)
    assert str(caught.value) == refusal(f"object {bucket}/over", f"{BASE64_FITS + 1} bytes, a 1001-byte reply as base64", BASE64_FITS)


async def test_a_decoded_reply_that_escaping_makes_too_large_is_refused(limited: S3Target, s3_client: Any, bucket: str) -> None:
    # 600 quotes fit as bytes, but JSON escapes each one: {"text":"\"\"..."} is 1211 bytes.
    await s3_client.put_object(Bucket=bucket, Key="quotes.txt", Body=b'"' * 600, ContentType="text/plain")
    assert (await call(limited, method="get_item", bucket_name=bucket, item_name="quotes.txt")).data == b'"' * 600
    with pytest.raises(TargetError) as caught:
        await call(limited, method="get_item", bucket_name=bucket, item_name="quotes.txt", decode="auto")
    assert str(caught.value) == refusal(f"object {bucket}/quotes.txt", "600 bytes, a 1211-byte reply as text", LIMIT - len('{"text":""}'))


async def test_without_a_reply_limit_nothing_is_refused(target: S3Target, s3_client: Any, bucket: str) -> None:
    await s3_client.put_object(Bucket=bucket, Key="big.bin", Body=bytes(LIMIT * 10))
    assert len((await call(target, method="get_item", bucket_name=bucket, item_name="big.bin", decode="base64")).data or b"") > LIMIT * 10


class Body:
    """A streaming body announcing nothing about itself; records whether it was read and released."""

    def __init__(self, chunks: int) -> None:
        self.chunks, self.read, self.closed = chunks, 0, False

    async def __aenter__(self) -> Body:
        return self

    async def __aexit__(self, *_: Any) -> None:
        self.closed = True

    async def iter_chunks(self, size: int) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.read += 1
            yield bytes(size)


async def test_a_body_announced_larger_than_the_bound_is_released_unread() -> None:
    # A 1 TiB Content-Length: neither read nor allocated.
    body = Body(chunks=10)
    with pytest.raises(BodyTooLarge) as caught:
        await read_body({"ContentLength": 2**40, "Body": body}, most=LIMIT)
    assert (caught.value.length, body.read, body.closed) == (2**40, 0, True)


async def test_a_body_without_a_length_is_read_only_up_to_the_bound() -> None:
    body = Body(chunks=1000)  # 1000 MiB if read to the end
    with pytest.raises(BodyTooLarge) as caught:
        await read_body({"Body": body}, most=3 * 1024 * 1024)
    assert (caught.value.length, body.read, body.closed) == (None, 4, True)


async def test_the_sources_message_limit_reaches_the_target(start_connector: StartConnector, broker: EmbeddedBroker, seaweed: Any, s3_client: Any, bucket: str) -> None:
    # A 1 MiB message carries (1 MiB - 64 KiB) * 3/4 = 737,280 bytes of reply data; the refusal is an error reply, not a failed send.
    channel = "query.aws.s3.reply-limit"
    await start_connector(s3_binding_yaml(seaweed, channel, extra_source='\n            max_message_size: "1048576"'))
    await s3_client.put_object(Bucket=bucket, Key="fits.bin", Body=bytes(range(256)) * 2800)
    await s3_client.put_object(Bucket=bucket, Key="big.bin", Body=bytes(800_000))

    async def get(key: str) -> Any:
        return await query(broker.address, channel, Request({"method": "get_item", "bucket_name": bucket, "item_name": key}), timeout=20)

    assert (await get("fits.bin")).data == bytes(range(256)) * 2800
    refused = await get("big.bin")
    assert refused.is_error and refused.error.startswith(f"ReplyTooLarge: object {bucket}/big.bin is 800000 bytes, more than the 737280 bytes")
