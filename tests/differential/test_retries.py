"""With ``retry_attempts: 3`` and a store that fails, kubemq-s3 still answers byte for byte as kubemq-targets.

Each side's store sits behind a ``FaultyS3`` proxy that answers S3's 500
``InternalError`` for the next requests it is told to fail. A store that
recovers within a call's own retries gives the same success on both sides;
a store that keeps failing gives kubemq-targets' list of every attempt,
``All attempts fail:\\n#1: ...\\n#2: ...\\n#3: ...``, on both sides.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from devbroker import EmbeddedBroker
from tests.fixtures.anchor import Twins, assert_identical, twins
from tests.fixtures.faulty_s3 import FOREVER

BUCKET = "retried"
ATTEMPTS = 3
REQUESTS = [
    {"method": "list_buckets"},
    {"method": "list_bucket_items", "bucket_name": BUCKET},
    {"method": "upload_item", "bucket_name": BUCKET, "item_name": "retried.txt"},
    {"method": "get_item", "bucket_name": BUCKET, "item_name": "retried.txt"},
    {"method": "copy_item", "bucket_name": BUCKET, "item_name": "copy.txt", "copy_source": f"{BUCKET}/retried.txt"},
    {"method": "delete_item_from_bucket", "bucket_name": BUCKET, "item_name": "copy.txt"},
]


@pytest_asyncio.fixture(scope="module")
async def pair(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Twins]:
    properties = {"retry_attempts": str(ATTEMPTS), "retry_delay_milliseconds": "50", "retry_max_jitter_milliseconds": "10"}
    async with twins(broker, tmp_path_factory.mktemp("retries"), properties, faulty=True) as running:
        assert_identical(*await running.send({"method": "create_bucket", "bucket_name": BUCKET}))
        assert_identical(*await running.send({"method": "upload_item", "bucket_name": BUCKET, "item_name": "retried.txt"}, b"first"))
        yield running


def fail_next(pair: Twins, count: float) -> None:
    assert pair.faults is not None
    for proxy in pair.faults:
        proxy.fail_next(count)


@pytest.mark.parametrize("metadata", REQUESTS, ids=[request["method"] for request in REQUESTS])
async def test_a_store_that_recovers_within_the_sdk_retries_gives_the_same_success(pair: Twins, metadata: dict[str, str]) -> None:
    fail_next(pair, 2)
    go, python = await pair.send(metadata, b"second" if metadata["method"] == "upload_item" else None)
    assert python.envelope["is_error"] is False
    assert_identical(go, python)


@pytest.mark.parametrize("metadata", REQUESTS, ids=[request["method"] for request in REQUESTS])
async def test_a_store_that_keeps_failing_gives_every_attempt_as_kubemq_targets_lists_them(pair: Twins, metadata: dict[str, str]) -> None:
    fail_next(pair, FOREVER)
    try:
        go, python = await pair.send(metadata, b"third" if metadata["method"] == "upload_item" else None)
    finally:
        fail_next(pair, 0)
    error = str(python.envelope["error"])
    assert error.startswith("All attempts fail:\n#1: InternalError: We encountered an internal error.") and f"\n#{ATTEMPTS}: InternalError" in error
    assert_identical(go, python)


async def test_an_error_that_cannot_succeed_on_retry_is_listed_once(pair: Twins) -> None:
    """Deliberate: kubemq-targets retries every error, NoSuchKey too, and lists it once per attempt; it is tried and listed once here."""
    go, python = await pair.send({"method": "get_item", "bucket_name": BUCKET, "item_name": "never-there"})
    attempt = "NoSuchKey: The specified key does not exist.\n\tstatus code: 404, request id: <id>, host id: <host>"
    assert go.envelope["error"] == "All attempts fail:\n" + "\n".join(f"#{number}: {attempt}" for number in range(1, ATTEMPTS + 1))
    assert python.envelope["error"] == f"All attempts fail:\n#1: {attempt}"
