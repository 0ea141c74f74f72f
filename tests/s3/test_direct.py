"""The direct path (connector/s3/direct.py) answers exactly as aiobotocore's way, with S3 failing or not.

Two targets on the same SeaweedFS, behind fault-injecting proxies: one with
its direct calls, one with them switched off. Each request goes to both; the
replies (or errors) must be the same, and so must what each asked the store.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import re
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bindings import tracing
from bindings.errors import RequestError
from connector.s3 import EmbeddedS3, S3Target
from tests.fixtures.certificates import PKI, needs_openssl
from tests.fixtures.faulty_s3 import FOREVER, FaultyS3
from tests.fixtures.kubemq import free_port
from tests.fixtures.s3 import seaweed_properties
from tests.fixtures.s3_targets import MakeTarget, StubS3
from tests.s3.support import call

KEYS = ["plain", "a b/ü+c", "x//double", "~tilde%25", "q?x=1&y", "uni\u2028line"]


@dataclass
class Pair:
    direct: S3Target
    botocore: S3Target
    direct_store: FaultyS3
    botocore_store: FaultyS3


@pytest_asyncio.fixture
async def pair(seaweed: EmbeddedS3, make_target: MakeTarget) -> AsyncIterator[Pair]:
    async with FaultyS3(seaweed.endpoint) as direct_store, FaultyS3(seaweed.endpoint) as botocore_store:
        properties = {**seaweed_properties(seaweed), "max_attempts": "3"}
        direct, botocore = await both_ways(make_target, {**properties, "endpoint": direct_store.endpoint}, {**properties, "endpoint": botocore_store.endpoint})
        yield Pair(direct, botocore, direct_store, botocore_store)


async def both_ways(make_target: MakeTarget, direct_properties: dict[str, str], botocore_properties: dict[str, str] | None = None) -> tuple[S3Target, S3Target]:
    """Two targets: one making its direct calls, one whose every call takes aiobotocore's way."""
    direct = await make_target(**direct_properties)
    botocore = await make_target(**(direct_properties if botocore_properties is None else botocore_properties))
    assert direct._client is not None and direct._client.direct is not None and botocore._client is not None
    botocore._client.direct = None
    return direct, botocore


async def outcome(target: S3Target, store: FaultyS3 | StubS3 | str, data: bytes = b"", **metadata: str) -> tuple[Any, ...]:
    """The reply, or the error's text, code and retryable flag; the store's address (``store``'s endpoint, or the address given) and its request and host ids left out."""
    try:
        reply = await call(target, data, **metadata)
    except RequestError as exc:
        return ("error", re.sub(r"request id: [^,]*, host id: .*", "request id: <id>, host id: <id>", str(exc)), exc.code, exc.retryable)
    endpoint = store if isinstance(store, str) else store.endpoint
    shown = {name: value.replace(endpoint, "<store>") for name, value in reply.metadata.items()}
    return ("reply", shown, (reply.data or b"").replace(endpoint.encode(), b"<store>"))


async def both(pair: Pair, data: bytes = b"", **metadata: str) -> tuple[Any, ...]:
    direct = await outcome(pair.direct, pair.direct_store, data, **metadata)
    botocore = await outcome(pair.botocore, pair.botocore_store, data, **metadata)
    assert direct == botocore
    return direct


@pytest.mark.parametrize("key", KEYS)
async def test_uploads_and_downloads_are_the_same_on_both_paths(pair: Pair, bucket: str, key: str) -> None:
    data = key.encode() * 50
    assert (await both(pair, data, method="upload_item", bucket_name=bucket, item_name=key))[0] == "reply"
    got = await both(pair, method="get_item", bucket_name=bucket, item_name=key)
    assert got[0] == "reply" and got[2] == data
    ranged = await both(pair, method="get_item", bucket_name=bucket, item_name=key, range="bytes=2-9")
    assert ranged[2] == data[2:10]
    # The same requests reached the store, in the same form (the raw path is what was signed).
    assert pair.direct_store.requests == pair.botocore_store.requests
    assert pair.direct._client is not None and pair.direct._client.direct is not None
    assert bucket in pair.direct._client.direct._buckets, "the direct target's calls went the direct way"


async def test_s3_errors_read_the_same_on_both_paths(pair: Pair, bucket: str) -> None:
    missing = await both(pair, method="get_item", bucket_name=bucket, item_name="missing")
    assert missing[0] == "error" and missing[2] == "NoSuchKey"
    no_bucket = await both(pair, method="get_item", bucket_name=f"{bucket}-gone", item_name="k")
    assert no_bucket[2] == "NoSuchBucket"
    await both(pair, b"x", method="upload_item", bucket_name=f"{bucket}-gone", item_name="k")
    await both(pair, b"x", method="upload_item", bucket_name=bucket, item_name="v")
    # SeaweedFS ignores a version id on a bucket without versioning: both paths must say the same, whatever it is.
    await both(pair, method="get_item", bucket_name=bucket, item_name="v", version_id="no-such-version")
    beyond = await both(pair, method="get_item", bucket_name=bucket, item_name="v", range="bytes=50-60")
    assert beyond[2] == "InvalidRange"


@pytest.mark.parametrize("failures", [2, FOREVER], ids=["recovers within max_attempts", "keeps failing"])
async def test_a_store_in_trouble_is_retried_alike_on_both_paths(pair: Pair, bucket: str, failures: float) -> None:
    await both(pair, b"v" * 100, method="upload_item", bucket_name=bucket, item_name="k")
    for store in (pair.direct_store, pair.botocore_store):
        store.requests.clear()
        store.fail_next(failures)
    got = await both(pair, method="get_item", bucket_name=bucket, item_name="k")
    assert got[0] == ("reply" if failures == 2 else "error")
    for store in (pair.direct_store, pair.botocore_store):
        store.fail_next(failures)
    await both(pair, b"w" * 100, method="upload_item", bucket_name=bucket, item_name="k")
    assert pair.direct_store.requests == pair.botocore_store.requests
    # Two calls of three attempts each: two failures then success, or three failures.
    assert len(pair.direct_store.requests) == 6


async def test_an_upload_that_asks_for_more_than_the_bytes_goes_aiobotocores_way(pair: Pair, bucket: str, s3_client: Any) -> None:
    reply = await both(
        pair, b"{}", method="upload_item", bucket_name=bucket, item_name="typed", content_type="application/json", checksum_sha256=base64.b64encode(hashlib.sha256(b"{}").digest()).decode()
    )
    assert reply[0] == "reply"
    stored = await s3_client.head_object(Bucket=bucket, Key="typed")
    assert stored["ContentType"] == "application/json"


async def test_with_tracing_on_calls_go_aiobotocores_way(pair: Pair, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert pair.direct._client is not None and pair.direct._client.direct is not None
    await both(pair, b"v", method="upload_item", bucket_name=bucket, item_name="k")
    monkeypatch.setattr(tracing, "active", lambda: object())
    direct = pair.direct._client.direct
    assert await direct.get_object(bucket, "k", byte_range=None, version_id=None) is None
    assert await direct.put_object(bucket, "k", b"v") is None


async def test_a_redirect_is_left_to_botocores_redirector(stub_s3: StubS3, seaweed: EmbeddedS3, make_target: MakeTarget) -> None:
    target = await make_target(**{**seaweed_properties(seaweed), "endpoint": stub_s3.endpoint, "max_attempts": "1"})
    assert target._client is not None and target._client.direct is not None
    moved = b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>PermanentRedirect</Code><Message>The bucket is in this region: eu-west-1.</Message></Error>'
    stub_s3.replies = [(301, moved), (200, b"from botocore")]
    got = await call(target, method="get_item", bucket_name="bucket", item_name="k")
    assert got.data == b"from botocore"
    assert [method for method, _, _ in stub_s3.requests] == ["GET", "GET"]


async def test_headers_botocore_cannot_read_fail_alike_on_both_paths(stub_s3: StubS3, seaweed: EmbeddedS3, make_target: MakeTarget) -> None:
    properties = {**seaweed_properties(seaweed), "endpoint": stub_s3.endpoint, "max_attempts": "1"}
    direct, botocore = await both_ways(make_target, properties)
    stub_s3.headers = {"x-amz-tagging-count": "many"}  # an integer member
    unreadable = [await outcome(target, stub_s3, method="get_item", bucket_name="bucket", item_name="k") for target in (direct, botocore)]
    assert unreadable[0] == unreadable[1] and unreadable[0][0] == "error"
    # The direct path goes on serving the next call.
    stub_s3.headers = {}
    stub_s3.replies = [(200, b"fine")]
    answer = await outcome(direct, stub_s3, method="get_item", bucket_name="bucket", item_name="k")
    assert answer[2] == b"fine", answer
    # An Expires that is no date is set aside by botocore's S3 handler (kept as ExpiresString), not a failure.
    stub_s3.headers = {"Expires": "never"}
    stub_s3.replies = [(200, b"fine"), (200, b"fine")]
    expiring = [await outcome(target, stub_s3, method="get_item", bucket_name="bucket", item_name="k") for target in (direct, botocore)]
    assert expiring[0] == expiring[1] and expiring[0][2] == b"fine"
    assert "bucket" in direct._client.direct._buckets


async def test_a_body_is_checked_against_the_stored_checksum_alike_on_both_paths(stub_s3: StubS3, seaweed: EmbeddedS3, make_target: MakeTarget) -> None:
    properties = {**seaweed_properties(seaweed), "endpoint": stub_s3.endpoint, "max_attempts": "1"}
    direct, botocore = await both_ways(make_target, properties)
    crc = base64.b64encode(zlib.crc32(b"fine").to_bytes(4, "big")).decode()
    for stored, intact in ((crc, True), (base64.b64encode(b"\0\0\0\0").decode(), False), (f"{crc}-3", True)):  # a part-derived one is not checked
        stub_s3.headers = {"x-amz-checksum-crc32": stored}
        stub_s3.replies = [(200, b"fine"), (200, b"fine")]
        answers = [await outcome(target, stub_s3, method="get_item", bucket_name="bucket", item_name="k") for target in (direct, botocore)]
        assert answers[0] == answers[1]
        assert (answers[0][2] == b"fine") if intact else ("did not match calculated checksum" in answers[0][1])
    # Both asked the store for its checksum.
    assert [headers.get("x-amz-checksum-mode") for headers in stub_s3.request_headers] == ["ENABLED"] * len(stub_s3.request_headers)


async def test_an_s3_error_in_a_200_answer_to_an_upload_is_retried_alike_on_both_paths(stub_s3: StubS3, seaweed: EmbeddedS3, make_target: MakeTarget) -> None:
    properties = {**seaweed_properties(seaweed), "endpoint": stub_s3.endpoint, "max_attempts": "2"}
    direct, botocore = await both_ways(make_target, properties)
    hidden = b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>'
    for replies, failed in (([(200, hidden), (200, b"")], False), ([(200, hidden), (200, b"<Error><Code>Slow")], True)):
        answers = []
        for target in (direct, botocore):
            stub_s3.replies = list(replies)
            stub_s3.requests.clear()
            answers.append(await outcome(target, stub_s3, b"data", method="upload_item", bucket_name="bucket", item_name="k"))
            assert len(stub_s3.requests) == 2, "the hidden error was retried"
        assert answers[0] == answers[1] and (answers[0][0] == "error") is failed


async def _broken_store(mode: str) -> asyncio.Server:
    """A store that fails below HTTP: it closes the connection once it has the request, or answers a line that is not HTTP."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            if mode == "garbage":
                writer.write(b"NOT-HTTP 200 nonsense\r\n\r\n")
                await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


@pytest.mark.parametrize("mode", ["refused", "closed", "garbage"])
async def test_a_connection_that_fails_below_http_reads_the_same_on_both_paths(seaweed: EmbeddedS3, make_target: MakeTarget, mode: str) -> None:
    server = None if mode == "refused" else await _broken_store(mode)
    port = free_port() if server is None else server.sockets[0].getsockname()[1]
    try:
        properties = {**seaweed_properties(seaweed), "endpoint": f"http://127.0.0.1:{port}", "max_attempts": "2"}
        direct, botocore = await both_ways(make_target, properties)
        for metadata in ({"method": "get_item"}, {"method": "upload_item"}):
            answers = [await outcome(target, properties["endpoint"], b"x", bucket_name="bucket", item_name="k", **metadata) for target in (direct, botocore)]
            assert answers[0] == answers[1] and answers[0][0] == "error"
        assert "bucket" in direct._client.direct._buckets, "the direct target's calls went the direct way"
    finally:
        if server is not None:
            server.close()


@needs_openssl
async def test_over_tls_both_paths_verify_the_store_and_answer_the_same(seaweed: EmbeddedS3, make_target: MakeTarget, pki: PKI, bucket: str) -> None:
    async with FaultyS3(seaweed.endpoint, tls=(pki.server_cert, pki.server_key)) as direct_store, FaultyS3(seaweed.endpoint, tls=(pki.server_cert, pki.server_key)) as botocore_store:
        properties = {**seaweed_properties(seaweed), "max_attempts": "2", "ca_file": pki.ca}
        pair = Pair(*await both_ways(make_target, {**properties, "endpoint": direct_store.endpoint}, {**properties, "endpoint": botocore_store.endpoint}), direct_store, botocore_store)
        assert pair.direct._client is not None and pair.direct._client.direct is not None
        # Over HTTPS an upload's payload goes unsigned, its CRC32 checked by the store (botocore's choice).
        data = b"over tls " * 100
        assert (await both(pair, data, method="upload_item", bucket_name=bucket, item_name="tls/k"))[0] == "reply"
        assert (await both(pair, method="get_item", bucket_name=bucket, item_name="tls/k"))[2] == data
        assert (await both(pair, method="get_item", bucket_name=bucket, item_name="tls/missing"))[2] == "NoSuchKey"
        assert pair.direct_store.requests == pair.botocore_store.requests
        assert bucket in pair.direct._client.direct._buckets, "the direct target's calls went the direct way"
        # Without the CA neither path trusts the store, and both say so alike.
        untrusting = {**seaweed_properties(seaweed), "max_attempts": "1", "endpoint": direct_store.endpoint}
        direct, botocore = await both_ways(make_target, untrusting)
        refused = [await outcome(target, direct_store, method="get_item", bucket_name=bucket, item_name="tls/k") for target in (direct, botocore)]
        assert refused[0] == refused[1] and refused[0][0] == "error" and "SSL" in refused[0][1]


async def test_a_ca_file_that_holds_no_certificate_fails_alike_on_both_paths(seaweed: EmbeddedS3, make_target: MakeTarget, tmp_path: Path) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    properties = {**seaweed_properties(seaweed), "max_attempts": "2", "ca_file": str(empty)}
    direct, botocore = await both_ways(make_target, properties)
    answers = [await outcome(target, seaweed.endpoint, method="get_item", bucket_name="bucket", item_name="k") for target in (direct, botocore)]
    assert answers[0] == answers[1] and answers[0][0] == "error"


async def test_a_store_failing_for_long_exhausts_the_retry_budget_as_botocore_standard_mode_does(stub_s3: StubS3, seaweed: EmbeddedS3, make_target: MakeTarget) -> None:
    target = await make_target(**{**seaweed_properties(seaweed), "endpoint": stub_s3.endpoint, "max_attempts": "3"})
    assert target._client is not None and target._client.direct is not None
    direct = target._client.direct
    direct._backoff.delay_amount = lambda _: 0  # the budget, not the waits, is under test
    failing = b"<Error><Code>InternalError</Code><Message>down</Message></Error>"
    stub_s3.replies = [(500, failing)] * 1000
    for _ in range(60):
        answer = await outcome(target, stub_s3, method="get_item", bucket_name="bucket", item_name="k")
        assert answer[0] == "error"
    # A budget of 500, 5 per retry: 50 calls are retried twice, then calls get one attempt each.
    assert len(stub_s3.requests) == 50 * 3 + 10
    # A success gives budget back: one retried call works again after some do.
    stub_s3.replies = [(200, b"ok")] * 20 + [(500, failing), (200, b"ok")]
    for _ in range(20):
        await outcome(target, stub_s3, method="get_item", bucket_name="bucket", item_name="k")
    stub_s3.requests.clear()
    assert (await outcome(target, stub_s3, method="get_item", bucket_name="bucket", item_name="k"))[2] == b"ok"
    assert len(stub_s3.requests) == 2
