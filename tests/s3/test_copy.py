"""copy_item: copy_source plain or URL-encoded (with a version), a bare bucket, separate source keys, metadata, multipart copy."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from bindings.errors import InvalidRequestError, TargetError
from connector.s3 import S3Target, items
from tests.fixtures.s3_targets import MakeTarget, StubS3
from tests.s3.support import body, call

MIB = 1024 * 1024
SOURCE_KEY = "in box/résumé 2024.pdf"


async def read(client: Any, bucket: str, key: str) -> bytes:
    return await (await client.get_object(Bucket=bucket, Key=key))["Body"].read()  # type: ignore[no-any-return]


@pytest.fixture
async def source(s3_client: Any, bucket: str) -> str:
    await s3_client.put_object(Bucket=bucket, Key=SOURCE_KEY, Body=b"original", ContentType="application/pdf", Metadata={"owner": "ann"})
    return bucket


async def test_copy_source_as_bucket_slash_key_with_spaces_and_unicode(target: S3Target, s3_client: Any, source: str) -> None:
    reply = await call(target, method="copy_item", bucket_name=source, item_name="copy.pdf", copy_source=f"{source}/{SOURCE_KEY}", wait_for_completion="true")
    assert reply.metadata == {"result": "ok", "bucket": source, "key": "copy.pdf"}
    output = body(reply)
    assert list(output)[:2] == ["BucketKeyEnabled", "CopyObjectResult"]
    assert set(output["CopyObjectResult"]) == {"ETag", "LastModified"}
    assert await read(s3_client, source, "copy.pdf") == b"original"
    head = await s3_client.head_object(Bucket=source, Key="copy.pdf")
    assert (head["ContentType"], head["Metadata"]) == ("application/pdf", {"owner": "ann"})


async def test_copy_source_as_a_bare_bucket_copies_item_name_across_buckets(target: S3Target, s3_client: Any, source: str) -> None:
    # kubemq-targets' README describes copy_source as the source bucket; the key is then item_name in both.
    destination = f"{source}-dst"
    await s3_client.create_bucket(Bucket=destination)
    try:
        await call(target, method="copy_item", bucket_name=destination, item_name=SOURCE_KEY, copy_source=source)
        assert await read(s3_client, destination, SOURCE_KEY) == b"original"
    finally:
        await s3_client.delete_object(Bucket=destination, Key=SOURCE_KEY)
        await s3_client.delete_bucket(Bucket=destination)


@pytest.mark.parametrize(
    "keys",
    [
        lambda bucket: {"source_bucket": bucket, "source_item": SOURCE_KEY},
        lambda bucket: {"source_item": SOURCE_KEY},
        lambda bucket: {"copy_source": f"/{bucket}/{SOURCE_KEY}"},
    ],
    ids=["source_bucket+source_item", "source_item-only", "leading-slash"],
)
async def test_other_ways_to_name_the_source(target: S3Target, s3_client: Any, source: str, keys: Any) -> None:
    await call(target, method="copy_item", bucket_name=source, item_name="dup", **keys(source))
    assert await read(s3_client, source, "dup") == b"original"


async def test_copy_source_url_encoded_as_kubemq_targets_senders_write_it(target: S3Target, s3_client: Any, source: str) -> None:
    # kubemq-targets handed copy_source to AWS as is, so its senders URL-encode the key.
    await call(target, method="copy_item", bucket_name=source, item_name="copy.pdf", copy_source=f"{source}/{quote(SOURCE_KEY)}")
    assert await read(s3_client, source, "copy.pdf") == b"original"


async def test_a_literal_percent_is_written_25_in_copy_source_but_not_in_source_item(target: S3Target, s3_client: Any, bucket: str) -> None:
    await s3_client.put_object(Bucket=bucket, Key="rate 100%.txt", Body=b"percent")
    await s3_client.put_object(Bucket=bucket, Key="a%20b?versionId=1", Body=b"literal")
    await call(target, method="copy_item", bucket_name=bucket, item_name="one", copy_source=f"{bucket}/rate 100%25.txt")
    await call(target, method="copy_item", bucket_name=bucket, item_name="two", source_item="a%20b?versionId=1")
    assert (await read(s3_client, bucket, "one"), await read(s3_client, bucket, "two")) == (b"percent", b"literal")


@pytest.mark.parametrize("encode", [quote, str], ids=["url-encoded", "plain"])
async def test_copy_source_version_id_selects_the_source_version(target: S3Target, s3_client: Any, bucket: str, encode: Any) -> None:
    await s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = await s3_client.put_object(Bucket=bucket, Key=SOURCE_KEY, Body=b"first")
    await s3_client.put_object(Bucket=bucket, Key=SOURCE_KEY, Body=b"second")
    copy_source = f"{bucket}/{encode(SOURCE_KEY)}?versionId={quote(first['VersionId'], safe='')}"
    await call(target, method="copy_item", bucket_name=bucket, item_name="old", copy_source=copy_source)
    assert await read(s3_client, bucket, "old") == b"first"


async def test_a_copy_source_that_is_not_url_encoded_utf8_is_refused(target: S3Target, bucket: str) -> None:
    with pytest.raises(InvalidRequestError, match=r"^error parsing copy_source, '%FF\.bin' is URL-encoded but does not decode to UTF-8 text"):
        await call(target, method="copy_item", bucket_name=bucket, item_name="x", copy_source=f"{bucket}/%FF.bin")


async def test_copy_source_and_source_keys_are_exclusive(target: S3Target, source: str) -> None:
    with pytest.raises(InvalidRequestError, match="give either copy_source or source_bucket/source_item, not both"):
        await call(target, method="copy_item", bucket_name=source, item_name="x", copy_source=f"{source}/a", source_item="b")


async def test_replace_sets_new_metadata(target: S3Target, s3_client: Any, source: str) -> None:
    await call(
        target,
        method="copy_item",
        bucket_name=source,
        item_name="renamed.txt",
        copy_source=f"{source}/{SOURCE_KEY}",
        content_type="text/plain",
        meta_owner="bob",
    )
    head = await s3_client.head_object(Bucket=source, Key="renamed.txt")
    assert (head["ContentType"], head["Metadata"]) == ("text/plain", {"owner": "bob"})


async def test_explicit_copy_directive_refuses_new_metadata(target: S3Target, source: str) -> None:
    with pytest.raises(InvalidRequestError, match="require metadata_directive replace"):
        await call(target, method="copy_item", bucket_name=source, item_name="x", copy_source=f"{source}/{SOURCE_KEY}", metadata_directive="copy", meta_a="b")


async def test_copying_a_missing_source(target: S3Target, bucket: str) -> None:
    with pytest.raises(TargetError) as caught:
        await call(target, method="copy_item", bucket_name=bucket, item_name="x", copy_source=f"{bucket}/missing")
    assert str(caught.value).startswith("NoSuchKey: The specified key does not exist.\n\tstatus code: 404")
    with pytest.raises(TargetError) as caught:
        await call(target, method="copy_item", bucket_name=bucket, item_name="x", copy_source="no-such-bucket-kubemq/missing")
    assert caught.value.code == "NoSuchBucket"


async def test_sources_above_the_threshold_are_copied_in_parts_keeping_their_metadata(make_target: MakeTarget, s3_client: Any, bucket: str) -> None:
    # The threshold is 5 GiB in production; lowering it exercises the same choice without copying 5 GiB.
    target = await make_target(copy_multipart_threshold_mib="5", copy_part_size_mib="5")
    payload = bytes(range(256)) * (11 * MIB // 256)
    await s3_client.put_object(Bucket=bucket, Key="big", Body=payload, ContentType="video/mp4", Metadata={"take": "2"})
    await s3_client.put_object(Bucket=bucket, Key="small", Body=b"tiny")
    reply = await call(target, method="copy_item", bucket_name=bucket, item_name="big copy", copy_source=f"{bucket}/big")
    assert body(reply)["CopyObjectResult"]["ETag"].endswith('-3"')  # three parts: 5 + 5 + 1 MiB
    assert await read(s3_client, bucket, "big copy") == payload
    head = await s3_client.head_object(Bucket=bucket, Key="big copy")
    assert (head["ContentType"], head["Metadata"]) == ("video/mp4", {"take": "2"})
    small = await call(target, method="copy_item", bucket_name=bucket, item_name="small copy", copy_source=f"{bucket}/small")
    assert "-" not in body(small)["CopyObjectResult"]["ETag"]


async def test_a_multipart_copy_of_an_old_version_keeps_that_versions_attributes(make_target: MakeTarget, s3_client: Any, bucket: str) -> None:
    # A multipart copy takes the attributes from HEAD, so HEAD must ask for the same version as the copy.
    target = await make_target(copy_multipart_threshold_mib="5", copy_part_size_mib="5")
    await s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    payload = bytes(range(256)) * (11 * MIB // 256)
    old = await s3_client.put_object(Bucket=bucket, Key="doc", Body=payload, ContentType="video/mp4", Metadata={"take": "1"})
    await s3_client.put_object(Bucket=bucket, Key="doc", Body=payload[::-1], ContentType="text/plain", Metadata={"take": "2"})
    await call(target, method="copy_item", bucket_name=bucket, item_name="restored", copy_source=f"{bucket}/doc?versionId={old['VersionId']}")
    assert await read(s3_client, bucket, "restored") == payload
    head = await s3_client.head_object(Bucket=bucket, Key="restored")
    assert (head["ContentType"], head["Metadata"]) == ("video/mp4", {"take": "1"})


TOO_LARGE = b"<Error><Code>InvalidRequest</Code><Message>The specified copy source is larger than the maximum allowable size for a copy source: 5368709120</Message><RequestId>R1</RequestId></Error>"
NO_SUCH_KEY = b"<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>"


async def test_copyobject_goes_first_and_a_source_it_refuses_as_too_large_is_copied_part_by_part(make_target: MakeTarget, stub_s3: StubS3, monkeypatch: pytest.MonkeyPatch) -> None:
    """One call, as kubemq-targets makes it; the part-by-part copy only for what S3 says CopyObject cannot take."""
    target = await make_target(endpoint=stub_s3.endpoint, max_attempts="1")
    sizes: list[int] = []

    async def head(s3: object, source: dict[str, str]) -> dict[str, Any]:
        return {"ContentLength": 6 * 1024 * MIB}

    async def multipart(s3: object, metadata: items.CopyItemMetadata, described: dict[str, Any], threshold: int) -> dict[str, Any]:
        sizes.append(described["ContentLength"])
        return {"CopyObjectResult": {"ETag": '"joined-3"', "LastModified": None}}

    monkeypatch.setattr(items, "_head_source", head)
    monkeypatch.setattr(items, "_multipart_copy", multipart)
    stub_s3.replies = [(400, TOO_LARGE)]
    reply = await call(target, method="copy_item", bucket_name="b", item_name="huge", copy_source="src/huge")
    assert body(reply)["CopyObjectResult"]["ETag"] == '"joined-3"' and sizes == [6 * 1024 * MIB]
    assert [(method, path.split("?")[0]) for method, path, _ in stub_s3.requests] == [("PUT", "/b/huge")]


async def test_a_copyobject_refusal_is_s3s_own_answer(make_target: MakeTarget, stub_s3: StubS3) -> None:
    target = await make_target(endpoint=stub_s3.endpoint, max_attempts="1")
    stub_s3.replies = [(404, NO_SUCH_KEY)]
    with pytest.raises(TargetError, match=r"^NoSuchKey: The specified key does not exist\.\n\tstatus code: 404, request id: R1, host id: $"):
        await call(target, method="copy_item", bucket_name="b", item_name="k", copy_source="src/missing")
    assert len(stub_s3.requests) == 1  # no HEAD first
