"""delete_items: any number of keys, 1000 per DeleteObjects call, each refusal reported; missing keys count as deleted."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from bindings.errors import InvalidRequestError
from connector.s3 import S3Target
from connector.s3.policy import PolicyDenied
from tests.fixtures.s3_targets import MakeTarget, StubS3
from tests.s3.support import body, call, keys_in, put_many

DELETE_RESULT = '<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{}</DeleteResult>'


def keys(data: list[str]) -> bytes:
    return json.dumps(data).encode()


async def test_2500_keys_some_missing_are_all_deleted(target: S3Target, s3_client: Any, bucket: str) -> None:
    present = [f"logs/{i:04d}.txt" for i in range(0, 2500, 10)]
    await put_many(s3_client, bucket, [*present, "keep/me.txt"])
    asked = [f"logs/{i:04d}.txt" for i in range(2500)]  # 2250 of them never existed
    reply = await call(target, keys(asked), method="delete_items", bucket_name=bucket)
    assert reply.metadata == {"result": "ok", "bucket": bucket, "deleted": "2500", "errors": "0"}
    assert body(reply) == {"Deleted": asked, "Errors": []}  # S3 counts a missing key as deleted: it is absent afterwards
    assert await keys_in(s3_client, bucket) == ["keep/me.txt"]


async def test_keys_go_1000_per_call_and_each_refusal_is_reported(make_target: MakeTarget, stub_s3: StubS3) -> None:
    """A stand-in store, to see the batches and to refuse keys (SeaweedFS refuses none)."""
    refusal = "<Error><Key>k1500</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
    stub_s3.replies = [(200, DELETE_RESULT.format("").encode()), (200, DELETE_RESULT.format(refusal).encode()), (200, DELETE_RESULT.format("").encode())]
    target = await make_target(endpoint=stub_s3.endpoint)
    asked = [f"k{i}" for i in range(2500)]
    reply = await call(target, keys([*asked, "k7"]), method="delete_items", bucket_name="b")  # a key given twice is deleted once
    batches = [re.findall(rb"<Key>([^<]*)</Key>", request_body) for _, _, request_body in stub_s3.requests]
    assert [len(batch) for batch in batches] == [1000, 1000, 500] and b"".join(b"".join(batch) for batch in batches) == "".join(asked).encode()
    assert all(method == "POST" and path.startswith("/b?delete") for method, path, _ in stub_s3.requests)
    output = body(reply)
    assert output["Errors"] == [{"Code": "AccessDenied", "Key": "k1500", "Message": "Access Denied", "VersionId": None}]
    assert output["Deleted"] == [key for key in asked if key != "k1500"]
    assert reply.metadata == {"result": "ok", "bucket": "b", "deleted": "2499", "errors": "1"}


async def test_every_key_is_checked_against_the_binding_policy_before_anything_is_deleted(make_target: MakeTarget, stub_s3: StubS3) -> None:
    target = await make_target(endpoint=stub_s3.endpoint, allowed_keys="incoming/*")
    with pytest.raises(PolicyDenied, match=r"^AccessDenied: key 'reports/x.pdf' is not allowed on binding 't' \(allowed_keys\)$"):
        await call(target, keys(["incoming/a", "reports/x.pdf"]), method="delete_items", bucket_name="b")
    read_only = await make_target(endpoint=stub_s3.endpoint, read_only="true")
    with pytest.raises(PolicyDenied, match="method delete_items writes"):
        await call(read_only, keys(["incoming/a"]), method="delete_items", bucket_name="b")
    assert stub_s3.requests == []


async def test_an_empty_list_deletes_nothing(target: S3Target, bucket: str) -> None:
    reply = await call(target, b"[]", method="delete_items", bucket_name=bucket)
    assert body(reply) == {"Deleted": [], "Errors": []} and reply.metadata["deleted"] == "0"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", 'delete_items needs the keys as data: a JSON array of keys, e.g. ["logs/a.txt","logs/b.txt"]'),
        (b"logs/a.txt", "error parsing data, a JSON array of keys"),
        (b'{"Key": "a"}', "error parsing data, a JSON array of keys"),
        (b'["a", ""]', "(every key a non-empty string)"),
        (b'["a", 1]', "(every key a non-empty string)"),
    ],
)
async def test_keys_that_are_not_a_json_array_of_strings_are_refused(target: S3Target, data: bytes, message: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await call(target, data, method="delete_items", bucket_name="b")
    assert message in str(caught.value)
