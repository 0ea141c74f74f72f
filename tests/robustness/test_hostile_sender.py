"""Ten thousand hostile requests, sent as a hostile sender would: through the official SDK and the broker.

A seeded mutation fuzzer turns valid kubemq-targets requests into hostile
ones (truncated, invalid UTF-8 and lone surrogates spliced in, huge numbers,
deep nesting, NUL bytes, odd keys, wrong types) and sends them 32 at a time to
a connector serving the real ``aws.s3`` target on SeaweedFS. Every one must
come back as exactly one well-formed reply: no timeout, no silent drop.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
from typing import Any

import pytest
from kubemq import AsyncCQClient, QueryMessage

from devbroker import EmbeddedBroker
from tests.fixtures.kubemq import StartConnector, s3_binding_yaml
from tests.fixtures.replies import STYLES, last_attempt
from tests.sources.support import options

CHANNEL = "query.aws.s3.hostile"
REQUESTS = 10_000  # in each reply style
IN_FLIGHT = 32
SPLICES = [b"\xed\xa0\x80", b"\xff", b"\x00", b"\\ud800", b"\\udc00", b'"', b"\\", b"{", b"[", b"}", b"]", b",", b":", b"9" * 5000, b"\xc3"]


def valid_requests(bucket: str) -> list[dict[str, Any]]:
    return [
        {"metadata": {"method": "get_item", "bucket_name": bucket, "item_name": "known.txt"}},
        {"metadata": {"method": "upload_item", "bucket_name": bucket, "item_name": "up/key.bin"}, "data": base64.b64encode(b"payload").decode()},
        {"metadata": {"method": "list_bucket_items", "bucket_name": bucket, "max_keys": "5"}},
        {"metadata": {"method": "head_item", "bucket_name": bucket, "item_name": "known.txt"}},
        {"metadata": {"method": "copy_item", "bucket_name": bucket, "item_name": "copy.txt", "copy_source": f"{bucket}/known.txt"}},
        {"metadata": {"method": "presign_url", "bucket_name": bucket, "item_name": "known.txt"}},
        {"metadata": {"method": "list_buckets"}},
    ]


def mutate(rng: random.Random, request: dict[str, Any]) -> bytes:
    """One hostile body derived from a valid request."""
    request = json.loads(json.dumps(request))
    metadata = request["metadata"]
    choice = rng.randrange(9)
    if choice == 0:  # a value replaced by something hostile
        key = rng.choice([*metadata, "method", "x"])
        metadata[key] = rng.choice(["\ud800", "../..", "a//b", "\x00", "ü" * 300, "", "x" * 50_000, "UPPER", "9" * 30])
    elif choice == 1:  # data of every JSON type
        request["data"] = rng.choice([7, -1.5e308, True, [1, [2]], {"a": "\udc00"}, "\ud800", None, {"deep": json.loads("[" * 600 + "]" * 600)}])
    elif choice == 2:  # metadata of another type
        request["metadata"] = rng.choice([[metadata], "text", 3, None, {"method": {"n": 1}}])
    elif choice == 3:  # an unknown or mangled method
        metadata["method"] = rng.choice(["", "GET_ITEM", "get_item\x00", "get_itme", "delete_everything", "ǵet_item"])
    body = json.dumps(request, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
    if choice == 4:
        return body[: rng.randrange(len(body))] or b"{"
    if choice == 5:
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(body) + 1)
            body = body[:at] + rng.choice(SPLICES) + body[at:]
    if choice == 6:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))
    if choice == 7:
        depth = rng.choice([10, 400, 511, 513, 980, 1500, 5000])
        return body[:-1] + b',"data":{"d":' + b"[" * depth + b"]" * depth + b"}}"
    return body


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
async def test_ten_thousand_hostile_requests_each_get_one_well_formed_reply(start_connector: StartConnector, seaweed: Any, broker: EmbeddedBroker, s3_client: Any, bucket: str, style: str) -> None:
    await start_connector(s3_binding_yaml(seaweed, CHANNEL, reply_style=style))
    await broker.wait_for_subscribers(CHANNEL, 1, kind="queries")
    await s3_client.put_object(Bucket=bucket, Key="known.txt", Body=b"known")
    rng = random.Random(20261129)
    templates = valid_requests(bucket)
    bodies = [mutate(rng, rng.choice(templates)) for _ in range(REQUESTS)]
    replies: list[dict[str, Any] | str] = [""] * REQUESTS
    lane = asyncio.Semaphore(IN_FLIGHT)

    async with AsyncCQClient(**options(broker, "hostile-sender")) as client:

        async def send(index: int) -> None:
            async with lane:
                try:
                    reply = await client.send_query(QueryMessage(channel=CHANNEL, body=bodies[index], timeout_in_seconds=20))
                except Exception as exc:  # noqa: BLE001 - a failed send is what this test counts
                    replies[index] = f"send failed: {type(exc).__name__}: {exc}"
                    return
                replies[index] = json.loads(reply.body) if reply.is_executed else f"not executed: {reply.error}"

        await asyncio.gather(*(send(index) for index in range(REQUESTS)))

    failures = [(bodies[i][:120], reply) for i, reply in enumerate(replies) if not isinstance(reply, dict)]
    assert failures == [], f"{len(failures)} requests without a reply"
    for index, reply in enumerate(replies):
        assert isinstance(reply, dict)
        assert list(reply) == ["metadata", "data", "is_error", "error"], bodies[index][:120]
        assert isinstance(reply["is_error"], bool) and isinstance(reply["metadata"], dict)
        assert bool(reply["error"]) == reply["is_error"]
        assert not last_attempt(reply["error"]).startswith("internal error"), (bodies[index][:120], reply["error"])
