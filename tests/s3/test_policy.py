"""Least privilege per binding: allowed_methods, allowed_buckets, allowed_keys and read_only, on SeaweedFS.

The cases are built from the method table, so a method added later is covered
without touching this file; a new required metadata key fails ``sample`` by
name until it gets a sample value here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from bindings.config import parse_config
from bindings.errors import ConfigError
from bindings.wire import Request
from connector.app import registry
from connector.s3 import METHODS, S3Target
from connector.s3.policy import POLICY_DENIED, Patterns, PolicyDenied
from connector.s3.target import DECLARATIONS, REACHES
from tests.fixtures.s3 import unique_bucket_name
from tests.fixtures.s3_targets import MakeTarget, StubS3
from tests.s3.support import body, call, keys_in

KEY = "incoming/a.txt"
OPERATIONS_OF_PRESIGN = (("put", {}), ("delete", {}), ("upload_part", {"upload_id": "sample-upload", "part_number": "1"}))
SAMPLE_UPLOAD = "sample-upload"  # replaced by a real upload where a read needs one


def sample(method: str, bucket: str, **extra: str) -> dict[str, str]:
    """The smallest valid request for ``method``: its required keys, with sample values."""
    values = {"bucket_name": bucket, "item_name": KEY, "copy_source": f"{bucket}/{KEY}", "upload_id": SAMPLE_UPLOAD, "part_number": "1"}
    fields = next(m for m in METHODS if m.name == method).metadata.model_fields
    required = [info.alias or name for name, info in fields.items() if info.is_required()]
    assert set(required) <= set(values), f"{method}: give the policy tests a sample value for {set(required) - set(values)}"
    return {"method": method, **{key: values[key] for key in required}, **extra}


def example_data(method: str) -> bytes:
    """The data of the method's declared example (``delete_items`` reads its keys there)."""
    return next(declared for declared in DECLARATIONS if declared.name == method).example_data


def writes(request: dict[str, str]) -> bool:
    """Whether the request writes, by the method table's own declaration."""
    call = METHODS.resolve(Request(metadata=request, data=example_data(request["method"])))
    return any(access.writes for access in REACHES[call.name](call.metadata, call.request))


# One request per method, and presign_url once more per writing operation.
CASES = [(m.name, {}) for m in METHODS] + [("presign_url", {"operation": operation, **keys}) for operation, keys in OPERATIONS_OF_PRESIGN]
WRITES = [case for case in CASES if writes(sample(case[0], "b", **case[1]))]
READS = [case for case in CASES if case not in WRITES]
NAMES_A_BUCKET = [case for case in CASES if "bucket_name" in next(m for m in METHODS if m.name == case[0]).metadata.model_fields]


def case_id(case: tuple[str, dict[str, str]]) -> str:
    name, extra = case
    return "-".join([name, *extra.values()][:2])


async def refusal(target: S3Target, request: dict[str, str]) -> PolicyDenied:
    with pytest.raises(PolicyDenied) as caught:
        await call(target, data=example_data(request["method"]), **request)
    assert caught.value.code == POLICY_DENIED and caught.value.retryable is False
    return caught.value


async def state(s3_client: Any, bucket: str) -> list[tuple[str, str]]:
    """What a write would change: every object of ``bucket`` with its ETag."""
    listed = await s3_client.list_objects_v2(Bucket=bucket)
    return [(item["Key"], item["ETag"]) for item in listed.get("Contents", [])]


def test_the_method_table_declares_the_writes() -> None:
    # What writes is each method's own declaration (its reach, see test_declarations.py); presign_url writes by its operation.
    assert {name for name, extra in WRITES if not extra} == {method.name for method in DECLARATIONS if not method.read_only}
    assert [extra["operation"] for name, extra in WRITES if name == "presign_url"] == [operation for operation, _ in OPERATIONS_OF_PRESIGN]
    assert set(REACHES) == {method.name for method in METHODS}


@pytest.mark.parametrize("case", WRITES, ids=case_id)
async def test_read_only_refuses_every_write_before_any_s3_call(make_target: MakeTarget, stub_s3: StubS3, case: tuple[str, dict[str, str]]) -> None:
    target = await make_target(endpoint=stub_s3.endpoint, read_only="true")
    name, extra = case
    denied = await refusal(target, sample(name, "reports", **extra))
    via = f" with operation={extra['operation']}" if extra else ""
    assert str(denied) == f"AccessDenied: method {name}{via} writes, and binding 't' is read-only (read_only)"
    assert stub_s3.requests == []


@pytest.mark.parametrize("case", READS, ids=case_id)
async def test_read_only_serves_every_read_and_changes_nothing(make_target: MakeTarget, s3_client: Any, bucket: str, case: tuple[str, dict[str, str]]) -> None:
    await s3_client.put_object(Bucket=bucket, Key=KEY, Body=b"report")
    upload = await s3_client.create_multipart_upload(Bucket=bucket, Key=KEY)  # for the reads of an upload (list_parts)
    before = await state(s3_client, bucket)
    target = await make_target(read_only="true")
    name, extra = case
    request = sample(name, bucket, **extra)
    reply = await call(target, data=example_data(name), **{**request, **({"upload_id": upload["UploadId"]} if "upload_id" in request else {})})
    assert reply.metadata["result"] == "ok"
    assert await state(s3_client, bucket) == before


@pytest.mark.parametrize("case", NAMES_A_BUCKET, ids=case_id)
async def test_a_bucket_outside_allowed_buckets_is_refused_for_every_method(make_target: MakeTarget, stub_s3: StubS3, case: tuple[str, dict[str, str]]) -> None:
    target = await make_target(endpoint=stub_s3.endpoint, allowed_buckets="reports-*, audit")
    name, extra = case
    denied = await refusal(target, sample(name, "payroll", **extra))
    assert re.fullmatch(r"AccessDenied: (source )?bucket 'payroll' is not allowed on binding 't' \(allowed_buckets\)", str(denied))
    assert stub_s3.requests == []


async def test_a_copy_from_a_bucket_outside_allowed_buckets_is_refused(make_target: MakeTarget, s3_client: Any, bucket: str) -> None:
    secret = unique_bucket_name("payroll")
    await s3_client.create_bucket(Bucket=secret)
    try:
        await s3_client.put_object(Bucket=secret, Key="salaries.csv", Body=b"confidential")
        target = await make_target(allowed_buckets=[bucket])
        for source in ({"copy_source": f"{secret}/salaries.csv"}, {"source_bucket": secret, "source_item": "salaries.csv"}):
            denied = await refusal(target, {"method": "copy_item", "bucket_name": bucket, "item_name": "stolen.csv", **source})
            assert str(denied) == f"AccessDenied: source bucket '{secret}' is not allowed on binding 't' (allowed_buckets)"
        assert await keys_in(s3_client, bucket) == []
        await s3_client.put_object(Bucket=bucket, Key="a.csv", Body=b"public")
        copied = await call(target, method="copy_item", bucket_name=bucket, item_name="b.csv", copy_source=f"{bucket}/a.csv")
        assert copied.metadata["result"] == "ok" and await keys_in(s3_client, bucket) == ["a.csv", "b.csv"]
    finally:
        await s3_client.delete_object(Bucket=secret, Key="salaries.csv")
        await s3_client.delete_bucket(Bucket=secret)


async def test_list_buckets_shows_only_the_allowed_buckets(make_target: MakeTarget, s3_client: Any, bucket: str) -> None:
    family = unique_bucket_name("reports")
    names = [f"{family}-eu", f"{family}-us"]
    for name in names:
        await s3_client.create_bucket(Bucket=name)
    try:
        target = await make_target(allowed_buckets=f"{family}-*")
        assert [b["Name"] for b in body(await call(target, method="list_buckets"))["Buckets"]] == names
        unfiltered = await make_target()
        assert {*names, bucket} <= {b["Name"] for b in body(await call(unfiltered, method="list_buckets"))["Buckets"]}
    finally:
        for name in names:
            await s3_client.delete_bucket(Bucket=name)


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("incoming/*", "incoming/a.csv", True),
        ("incoming/*", "incoming/2024/05/a.csv", True),  # `*` crosses `/`, as in IAM resource patterns
        ("incoming/*", "incoming", False),
        ("incoming/*", "Incoming/a.csv", False),  # case-sensitive, as S3 keys are
        ("reports/??.pdf", "reports/q1.pdf", True),
        ("reports/??.pdf", "reports/q10.pdf", False),
        ("*.csv", "a/b/c.csv", True),
        ("data[1].json", "data[1].json", True),  # `[` is an ordinary key character
        ("data[1].json", "data1.json", False),
        ("a.b", "axb", False),
        ("line*", "line\nbreak", True),
    ],
)
def test_patterns_follow_iam_wildcards(pattern: str, name: str, matches: bool) -> None:
    assert Patterns([pattern]).match(name) is matches


@pytest.mark.parametrize(
    ("pattern", "prefix", "covered"),
    [
        ("incoming/*", "incoming/", True),
        ("incoming/*", "incoming/2024/", True),
        ("incoming/*", "incoming", False),  # would also reach incoming.bak
        ("incoming/*", "", False),
        ("*", "", True),
        ("*.csv", "a/", False),  # a/b.txt is under the prefix but not allowed
        ("reports/*/2024/*", "reports/eu/2024/", True),
    ],
)
def test_a_prefix_is_covered_by_a_pattern_ending_in_a_wildcard(pattern: str, prefix: str, covered: bool) -> None:
    assert Patterns([pattern]).cover(prefix) is covered


async def test_allowed_keys_limit_every_key_a_request_reaches(make_target: MakeTarget, s3_client: Any, bucket: str) -> None:
    await s3_client.put_object(Bucket=bucket, Key="outgoing/x.txt", Body=b"x")
    target = await make_target(allowed_keys=["incoming/*", "reports/??.pdf"])
    assert (await call(target, b"in", method="upload_item", bucket_name=bucket, item_name="incoming/deep/a.txt")).metadata["result"] == "ok"
    assert (await call(target, b"q1", method="upload_item", bucket_name=bucket, item_name="reports/q1.pdf")).metadata["result"] == "ok"
    refused = {
        "upload_item": ({"item_name": "outgoing/a.txt"}, "key 'outgoing/a.txt' is not allowed"),
        "get_item": ({"item_name": "reports/q10.pdf"}, "key 'reports/q10.pdf' is not allowed"),
        "presign_url": ({"item_name": "outgoing/x.txt"}, "key 'outgoing/x.txt' is not allowed"),
        "copy_item": ({"item_name": "incoming/x.txt", "copy_source": f"{bucket}/outgoing/x.txt"}, "source key 'outgoing/x.txt' is not allowed"),
        "list_bucket_items": ({}, "method list_bucket_items reaches every key of the bucket, beyond what is allowed"),
        "delete_all_items_from_bucket": ({"prefix": "in"}, "method delete_all_items_from_bucket reaches every key under prefix 'in', beyond"),
        "delete_bucket": ({"force": "true"}, "method delete_bucket reaches every key of the bucket"),
    }
    for method, (metadata, reason) in refused.items():
        denied = await refusal(target, {"method": method, "bucket_name": bucket, **metadata})
        assert str(denied).startswith(f"AccessDenied: {reason}") and str(denied).endswith(
            "(allowed_keys; give a prefix that a pattern ending in * matches)" if "reaches" in reason else "(allowed_keys)"
        )
    listed = body(await call(target, method="list_bucket_items", bucket_name=bucket, prefix="incoming/"))
    assert [item["Key"] for item in listed["Contents"]] == ["incoming/deep/a.txt"]
    deleted = await call(target, method="delete_all_items_from_bucket", bucket_name=bucket, prefix="incoming/")
    assert deleted.metadata["deleted"] == "1"
    assert await keys_in(s3_client, bucket) == ["outgoing/x.txt", "reports/q1.pdf"]


async def test_allowed_methods_refuse_the_others_by_name(make_target: MakeTarget, s3_client: Any, bucket: str) -> None:
    await s3_client.put_object(Bucket=bucket, Key=KEY, Body=b"report")
    target = await make_target(allowed_methods="get_item,head_item")
    assert (await call(target, method="get_item", bucket_name=bucket, item_name=KEY)).data == b"report"
    denied = await refusal(target, {"method": "delete_bucket", "bucket_name": bucket})
    assert str(denied) == "AccessDenied: method delete_bucket is not allowed on binding 't' (allowed_methods)"
    assert await keys_in(s3_client, bucket) == [KEY]


def config_with(properties: str) -> str:
    return f"""
bindings:
  - name: reports
    source:
      kind: kubemq.query
      properties:
        address: "localhost:50000"
        channel: "query.reports"
    target:
      kind: aws.s3
      properties:
        region: "eu-west-1"{properties}
"""


def test_an_unknown_allowed_method_fails_validation_with_a_suggestion() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config_with('\n        allowed_methods: "get_item, delete_buckets"'), registry())
    (problem,) = caught.value.problems
    assert (problem.line, problem.location, problem.binding) == (13, "bindings[0].target.properties.allowed_methods", "reports")
    assert problem.message.startswith("unknown method 'delete_buckets' (did you mean 'delete_bucket'?); methods: list_buckets, ")


@pytest.mark.parametrize(
    ("properties", "location", "message"),
    [
        ('allowed_buckets: "reports-*"\n        bucket: "payroll"', "", "the default bucket 'payroll' is outside allowed_buckets"),
        ('allowed_buckets: "reports/*"', ".allowed_buckets", "bucket names hold no '/', so 'reports/*' can never match (key patterns go in allowed_keys)"),
        ('allowed_keys: " , "', ".allowed_keys", "Value should have at least 1 item"),
    ],
)
def test_policies_that_cannot_work_fail_validation(properties: str, location: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config_with(f"\n        {properties}"), registry())
    (problem,) = caught.value.problems
    assert problem.location == f"bindings[0].target.properties{location}" and message in problem.message


def test_policy_properties_take_yaml_lists_or_comma_separated_strings() -> None:
    listed = parse_config(config_with("\n        allowed_buckets: [reports-*, audit]\n        allowed_keys:\n          - incoming/*\n        read_only: true"), registry())
    quoted = parse_config(config_with('\n        allowed_buckets: "reports-*, audit"\n        allowed_keys: "incoming/*"\n        read_only: "true"'), registry())
    for config in (listed, quoted):
        properties = config.bindings[0].target.properties
        assert (properties.allowed_buckets, properties.allowed_keys, properties.read_only) == (["reports-*", "audit"], ["incoming/*"], True)


def test_the_documented_read_only_binding_is_a_valid_config() -> None:
    operations = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    section = operations.split("## Least privilege", 1)[1].split("\n## ", 1)[0]
    (example,) = re.findall(r"```yaml\n(.*?)```", section, re.S)
    properties = parse_config(example, registry()).bindings[0].target.properties
    assert properties.read_only is True and properties.allowed_buckets and properties.allowed_keys
