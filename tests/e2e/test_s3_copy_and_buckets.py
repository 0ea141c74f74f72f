"""copy_item across buckets with its metadata directives, and the bucket conveniences: default bucket, force delete, prefix delete."""

from __future__ import annotations

from typing import Any

from tests.e2e.support import Send, bucket_exists, drop_bucket, keys_in, ok, put_many, s3_failure, stored, target_properties
from tests.fixtures.kubemq import StartConnector, s3_binding_yaml
from tests.fixtures.s3 import unique_bucket_name


async def test_copy_across_buckets_then_delete_the_copy_bucket_with_force(connector_send: Send, s3_client: Any, bucket: str) -> None:
    await s3_client.put_object(Bucket=bucket, Key="src/a b.txt", Body=b"quarterly", ContentType="text/plain", Metadata={"owner": "a"})
    destination = unique_bucket_name("e2e-copy")
    source = {"source_bucket": bucket, "source_item": "src/a b.txt"}
    try:
        ok(await connector_send({"method": "create_bucket", "bucket_name": destination}))
        replaced = await connector_send(
            {"method": "copy_item", "bucket_name": destination, "item_name": "q.json", **source, "metadata_directive": "REPLACE", "content_type": "application/json", "meta_owner": "b"}
        )
        assert replaced.metadata == {"result": "ok", "bucket": destination, "key": "q.json"}
        # SeaweedFS itself writes CopyObjectResult's ETag without the quotes AWS puts around it; the connector passes it on.
        source_etag = (await s3_client.head_object(Bucket=bucket, Key="src/a b.txt"))["ETag"]
        assert ok(replaced)["CopyObjectResult"]["ETag"].strip('"') == source_etag.strip('"')
        head = await s3_client.head_object(Bucket=destination, Key="q.json")
        assert (head["ContentType"], head["Metadata"]) == ("application/json", {"owner": "b"})
        ok(await connector_send({"method": "copy_item", "bucket_name": destination, "item_name": "kept.txt", **source}))  # COPY by default
        kept = await s3_client.head_object(Bucket=destination, Key="kept.txt")
        assert (kept["ContentType"], kept["Metadata"]) == ("text/plain", {"owner": "a"})
        assert await stored(s3_client, destination, "q.json") == await stored(s3_client, destination, "kept.txt") == b"quarterly"
        # COPY with new attributes contradicts itself and is refused before anything is copied.
        refused = await connector_send({"method": "copy_item", "bucket_name": destination, "item_name": "x", **source, "metadata_directive": "COPY", "content_type": "a/b"})
        assert refused.is_error and "require metadata_directive replace" in refused.error
        assert s3_failure(await connector_send({"method": "delete_bucket", "bucket_name": destination}))[:2] == ("BucketNotEmpty", 409)
        forced = await connector_send({"method": "delete_bucket", "bucket_name": destination, "force": "true"})
        assert ok(forced) is None and forced.metadata == {"result": "ok", "bucket": destination, "deleted": "2"}
        assert not await bucket_exists(s3_client, destination)
    finally:
        await drop_bucket(s3_client, destination)


async def test_delete_all_items_with_a_prefix_deletes_only_under_it(connector_send: Send, s3_client: Any, bucket: str) -> None:
    await put_many(s3_client, bucket, ["tmp/1", "tmp/2", "tmp/deep/3", "tmp2/not-under", "keep/tmp/4", "top"])
    reply = await connector_send({"method": "delete_all_items_from_bucket", "bucket_name": bucket, "prefix": "tmp/"})
    assert ok(reply) == {"Deleted": 3} and reply.metadata["deleted"] == "3"
    assert await keys_in(s3_client, bucket) == ["keep/tmp/4", "tmp2/not-under", "top"]


DEFAULT_BUCKET_CHANNEL = "query.aws.s3.e2e.default-bucket"


async def test_a_target_default_bucket_serves_requests_without_bucket_name(start_connector: StartConnector, connector_send: Send, seaweed: Any, s3_client: Any, bucket: str) -> None:
    await start_connector(s3_binding_yaml(seaweed, DEFAULT_BUCKET_CHANNEL, extra_target=target_properties(bucket=bucket)))

    async def send(metadata: dict[str, str], data: bytes | None = None) -> Any:
        return await connector_send(metadata, data, channel=DEFAULT_BUCKET_CHANNEL)

    uploaded = await send({"method": "upload_item", "item_name": "a.txt"}, b"default bucket")
    assert uploaded.metadata["bucket"] == bucket and await stored(s3_client, bucket, "a.txt") == b"default bucket"
    got = await send({"method": "get_item", "item_name": "a.txt"})
    assert (got.data, got.metadata["bucket"]) == (b"default bucket", bucket)
    assert ok(await send({"method": "head_item", "item_name": "a.txt"}))["ContentLength"] == 14
    ok(await send({"method": "copy_item", "item_name": "b.txt", "source_item": "a.txt"}))
    assert await stored(s3_client, bucket, "b.txt") == b"default bucket"
    listing = ok(await send({"method": "list_bucket_items"}))
    assert [item["Key"] for item in listing["Contents"]] == ["a.txt", "b.txt"] and listing["Name"] == bucket
    assert f"/{bucket}/a.txt?" in ok(await send({"method": "presign_url", "item_name": "a.txt"}))["url"]
    ok(await send({"method": "delete_item_from_bucket", "item_name": "b.txt"}))
    assert await keys_in(s3_client, bucket) == ["a.txt"]
    # The request's own bucket_name always wins over the default.
    elsewhere = await send({"method": "get_item", "bucket_name": unique_bucket_name("elsewhere"), "item_name": "a.txt"})
    assert s3_failure(elsewhere)[:2] == ("NoSuchBucket", 404)
    assert ok(await send({"method": "delete_all_items_from_bucket"})) == {"Deleted": 1}
    assert await keys_in(s3_client, bucket) == []


async def test_an_empty_bucket_name_falls_back_to_the_default_bucket(start_connector: StartConnector, connector_send: Send, seaweed: Any, s3_client: Any, bucket: str) -> None:
    """docs/methods.md: a key sent empty counts as not sent, and bucket_name may be left out when the target has a default."""
    channel = "query.aws.s3.e2e.default-bucket-empty"
    await start_connector(s3_binding_yaml(seaweed, channel, extra_target=target_properties(bucket=bucket)))
    reply = await connector_send({"method": "upload_item", "bucket_name": "", "item_name": "empty-name.txt"}, b"x", channel=channel)
    assert not reply.is_error, reply.error
    assert await stored(s3_client, bucket, "empty-name.txt") == b"x"
