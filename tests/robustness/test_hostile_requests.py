"""Hostile senders, at the engine level: whatever the body, one well-formed reply, and the binding keeps serving.

Bodies are generated (hypothesis) the way a careless or hostile sender writes
them: random bytes, truncated JSON, wrong types everywhere, huge numbers, lone
surrogates and invalid UTF-8 in every field, nesting swept across depths, NUL
bytes, very long values, unknown methods, odd keys and bucket names. Each goes
through ``Binding.process`` with the real ``aws.s3`` target on SeaweedFS, and a
valid request right after it must be served.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bindings.config import parse_config
from bindings.context import RequestContext
from bindings.engine import Binding
from bindings.errors import InvalidRequestError
from bindings.metrics import Metrics
from bindings.source import Outcome
from bindings.target import Call
from bindings.wire import MAX_DATA_DEPTH, Request, Response, parse_request
from connector.app import registry
from connector.s3.target import METHODS
from tests.fixtures.replies import STYLES, last_attempt
from tests.fixtures.s3 import seaweed_properties, unique_bucket_name

EXAMPLES = 1000  # per property and reply style; two S3-backed properties make thousands of requests a run
TRICKY_TEXT = [
    "",
    "\ud800",
    "\udc00",
    "a\udbffb",
    "\x00",
    "../../etc/passwd",
    "a//b",
    "//",
    "..",
    "ключ/ファイル.txt",
    "\u2028\u2029<&>",
    "x" * 70_000,
    "UPPER_Bucket",
    "-bad-",
    "a" * 64,
    "127.0.0.1",
    "%2F%00",
]
METHOD_NAMES = [method.name for method in METHODS]
METADATA_KEYS = ["method", "bucket_name", "item_name", "copy_source", "prefix", "max_keys", "range", "decode", "wait_for_completion", "expires_seconds", "operation"]


def hostile_text() -> st.SearchStrategy[str]:
    return st.one_of(st.text(max_size=40), st.sampled_from(TRICKY_TEXT))


def json_value(depth: int) -> Any:
    """A JSON value nested ``depth`` levels (objects and arrays alternating)."""
    value: Any = "leaf"
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


@st.composite
def metadata_maps(draw: st.DrawFn, bucket: str) -> dict[str, str]:
    metadata = {"method": draw(st.one_of(st.sampled_from(METHOD_NAMES), hostile_text()))}
    for key in draw(st.lists(st.one_of(st.sampled_from(METADATA_KEYS), hostile_text()), max_size=5)):
        metadata[key] = draw(st.one_of(hostile_text(), st.just(bucket)))
    return metadata


def data_values() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        hostile_text(),
        st.binary(max_size=64).map(lambda raw: base64.b64encode(raw).decode()),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(hostile_text(), st.one_of(hostile_text(), st.integers(), st.none()), max_size=4),
        st.integers(min_value=1, max_value=MAX_DATA_DEPTH * 3).map(lambda depth: {"d": json_value(depth)}),
    )


def encode(value: Any) -> str:
    """JSON text that keeps lone surrogates as ``\\ud800`` escapes, as a sender's encoder may write them."""
    return json.dumps(value, ensure_ascii=True)


@st.composite
def hostile_bodies(draw: st.DrawFn, bucket: str) -> bytes:
    metadata = draw(metadata_maps(bucket))
    well_formed = '{"metadata":' + encode(metadata) + ',"data":' + encode(draw(data_values())) + "}"
    shape = draw(st.sampled_from(["as is", "truncated", "raw bytes", "invalid utf-8", "huge number", "metadata of another type", "deep", "padded"]))
    if shape == "truncated":
        return well_formed.encode()[: draw(st.integers(min_value=0, max_value=len(well_formed)))]
    if shape == "raw bytes":
        return draw(st.binary(max_size=256))
    if shape == "invalid utf-8":
        raw = bytearray(well_formed.encode())
        position = draw(st.integers(min_value=0, max_value=len(raw)))
        raw[position:position] = draw(st.sampled_from([b"\xed\xa0\x80", b"\xff", b"\xc3", b"\x80\x80", b"\xf4\x90\x80\x80"]))
        return bytes(raw)
    if shape == "huge number":
        digits = "9" * draw(st.sampled_from([20, 309, 4301, 10_000]))
        return ('{"metadata":' + encode(metadata) + ',"data":' + digits + "}").encode()
    if shape == "metadata of another type":
        other = draw(st.sampled_from([[metadata], "text", 7, True, {"method": {"nested": "x"}}, {"method": 3}]))
        return ('{"metadata":' + encode(other) + ',"data":null}').encode()
    if shape == "deep":
        depth = draw(st.integers(min_value=1, max_value=2_000))
        return ('{"metadata":' + encode(metadata) + ',"data":' + "[" * depth + "]" * depth + "}").encode()
    if shape == "padded":
        return b" \t\r\n" + well_formed.encode() + b"\x00"
    return well_formed.encode()


def assert_well_formed(outcome: Outcome) -> dict[str, Any]:
    """The reply body has exactly kubemq-targets' four keys with their types; an error says what."""
    body = json.loads(outcome.response.to_json())
    assert list(body) == ["metadata", "data", "is_error", "error"]
    assert isinstance(body["metadata"], dict) and all(isinstance(v, str) for v in body["metadata"].values())
    assert body["data"] is None or isinstance(base64.b64decode(body["data"], validate=True), bytes)
    assert isinstance(body["is_error"], bool) and isinstance(body["error"], str)
    assert body["is_error"] == (outcome.error is not None)
    if body["is_error"]:
        assert body["error"] and "Traceback" not in body["error"]
        assert not last_attempt(body["error"]).startswith("internal error"), body["error"]
    return body


@pytest_asyncio.fixture(scope="module", params=STYLES)
async def s3_binding(seaweed: Any, s3_client: Any, request: pytest.FixtureRequest) -> AsyncIterator[tuple[Binding, str, str]]:
    """A binding of the real aws.s3 target on SeaweedFS (not subscribed: requests go straight to ``process``), in each reply style.

    With it, shared by the module's tests: the bucket hostile requests may name (so they may empty or delete
    it), and a probe bucket they never name, for what must still be there after them.
    """
    properties = "\n".join(f'          {key}: "{value}"' for key, value in seaweed_properties(seaweed).items())
    config = parse_config(
        f"""
bindings:
  - name: hostile
    source:
      kind: kubemq.query
      properties:
        address: "127.0.0.1:1"
        channel: "hostile"
    target:
      kind: aws.s3
      properties:
{properties}
    properties:
      log_level: "error"
      reply_style: "{request.param}"
""",
        registry(),
    )
    binding = Binding(config.bindings[0], registry(), Metrics())
    await binding.prepare()
    assert binding.target_ready, binding.last_error
    buckets_before = {b["Name"] for b in (await s3_client.list_buckets())["Buckets"]}
    bucket = unique_bucket_name("hostile")
    probe = unique_bucket_name("probe")
    for name in (bucket, probe):
        await s3_client.create_bucket(Bucket=name)
    await s3_client.put_object(Bucket=probe, Key="known.txt", Body=b"known")
    yield binding, bucket, probe
    await binding.target.close()
    for name in {b["Name"] for b in (await s3_client.list_buckets())["Buckets"]} - buckets_before:
        async for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=name):
            for item in page.get("Contents", []):
                await s3_client.delete_object(Bucket=name, Key=item["Key"])
        await s3_client.delete_bucket(Bucket=name)


async def served_after(binding: Binding, probe: str) -> None:
    """A valid request right after a hostile one is served as usual (on a bucket no hostile request names, which one may empty)."""
    valid = Request(metadata={"method": "get_item", "bucket_name": probe, "item_name": "known.txt"})
    outcome = await binding.process(valid.to_json(), RequestContext(binding="hostile", request_id="valid"))
    assert (outcome.error, outcome.response.data) == (None, b"known")


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
async def test_every_hostile_body_gets_one_well_formed_reply(s3_binding: tuple[Binding, str, str], data: st.DataObject) -> None:
    binding, bucket, probe = s3_binding
    body = data.draw(hostile_bodies(bucket))
    outcome = await binding.process(body, RequestContext(binding="hostile", request_id="h"))
    assert_well_formed(outcome)
    await served_after(binding, probe)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
async def test_requests_with_hostile_metadata_are_served_or_refused_by_name(s3_binding: tuple[Binding, str, str], data: st.DataObject) -> None:
    """Valid JSON with generated metadata: a refusal names the request's problem, never an internal error."""
    binding, bucket, _ = s3_binding
    metadata = data.draw(metadata_maps(bucket))
    outcome = await binding.process(Request(metadata=metadata, data=data.draw(st.binary(max_size=32))).to_json(), RequestContext(binding="hostile", request_id="m"))
    body = assert_well_formed(outcome)
    if metadata["method"] not in METHOD_NAMES:
        assert body["is_error"] and last_attempt(body["error"]).startswith("invalid method type"), body["error"]


# Known cases, each pinned: what kubemq-targets (Go's encoding/json) does with them, or the documented refusal.
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"metadata":{"method":"list_buckets"},"data":' + b"1" * 5000 + b"}", "invalid request format, invalid data format, float64"),
        (b'{"metadata":{"method":"list_buckets"},"data":{"n":' + b"1" * 5000 + b"}}", "invalid request format, invalid data format, number out of range"),
        (b'{"metadata":{"method":"list_buckets"},"data":' + b"[" * 400 + b"]" * 400 + b"}", "invalid request format, invalid data format, []interface {}"),
        (b'{"metadata":{"method":"list_buckets"},"data":{"d":' + b"[" * 600 + b"]" * 600 + b"}}", f"invalid request format, invalid data format, nested deeper than {MAX_DATA_DEPTH} levels"),
        (b'{"metadata":{"method":"list_buckets"},"data":' + b"[" * 5000 + b"]" * 5000 + b"}", f"invalid request format, JSON nested deeper than {MAX_DATA_DEPTH} levels"),
    ],
    ids=["huge-number-data", "huge-number-in-object", "deep-array", "deep-object-past-the-limit", "deeper-than-the-decoder"],
)
def test_numbers_and_nesting_are_refused_with_kubemq_targets_words(body: bytes, expected: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        parse_request(body)
    assert str(raised.value) == expected


@pytest.mark.parametrize(
    ("body", "metadata", "data"),
    [
        (b'{"metadata":{"method":"m"},"data":"\\ud800"}', {"method": "m"}, "\ufffd".encode()),
        (b'{"metadata":{"method":"m"},"data":{"k":"\\ud800"}}', {"method": "m"}, '{"k":"\ufffd"}'.encode()),
        (b'{"metadata":{"method":"m"},"data":{"\\udc00":"v"}}', {"method": "m"}, '{"\ufffd":"v"}'.encode()),
        (b'{"metadata":{"method":"m","item_name":"a\\ud800b"}}', {"method": "m", "item_name": "a\ufffdb"}, b""),
        (b'{"metadata":{"method":"m","item_name":"a\xed\xa0\x80b"}}', {"method": "m", "item_name": "a\ufffd\ufffd\ufffdb"}, b""),
        (b'{"metadata":{"method":"m"},"data":"\xff\xfe"}', {"method": "m"}, "\ufffd\ufffd".encode()),
        (b'{"metadata":{"method":"m"},"data":"\\ud83d\\ude00"}', {"method": "m"}, "\U0001f600".encode()),
    ],
    ids=["data-string", "data-object-value", "data-object-key", "metadata-escape", "metadata-raw-bytes", "data-invalid-utf8", "valid-pair-kept"],
)
def test_invalid_text_becomes_the_replacement_character_as_go_reads_it(body: bytes, metadata: dict[str, str], data: bytes) -> None:
    assert parse_request(body) == Request(metadata=metadata, data=data)


async def test_a_lone_surrogate_in_the_key_is_served_not_an_internal_error(s3_binding: tuple[Binding, str, str], s3_client: Any) -> None:
    binding, _, probe = s3_binding  # hostile requests before may have deleted the other bucket
    body = b'{"metadata":{"method":"upload_item","bucket_name":"' + probe.encode() + b'","item_name":"odd\\ud800name"},"data":"aGk="}'
    outcome = await binding.process(body, RequestContext(binding="hostile", request_id="s"))
    assert outcome.error is None, outcome.response.error
    stored = await s3_client.get_object(Bucket=probe, Key="odd\ufffdname")
    assert await stored["Body"].read() == b"hi"


async def test_a_target_that_raises_anything_still_gives_one_error_reply(s3_binding: tuple[Binding, str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """By construction, not by case: an exception of any type from anywhere in the chain becomes the error reply."""
    binding, _, _ = s3_binding

    async def broken(call: Call, context: RequestContext) -> Response:
        raise UnicodeEncodeError("utf-8", "x", 0, 1, "surrogates not allowed")

    monkeypatch.setattr(binding, "_chain", broken)
    outcome = await binding.process(Request(metadata={"method": "list_buckets"}).to_json(), RequestContext(binding="hostile", request_id="b"))
    body = json.loads(outcome.response.to_json())
    assert body["is_error"] and re.fullmatch(r"internal error: UnicodeEncodeError: .*surrogates not allowed", last_attempt(body["error"]))
