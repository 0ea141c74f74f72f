"""kubemq-targets' request parse rules, case by case, and the reply body shape."""

import base64
import json

import pytest

from bindings.errors import InvalidRequestError
from bindings.wire import Request, Response, parse_request


def body(value: object) -> bytes:
    return json.dumps(value).encode()


def test_metadata_and_base64_data() -> None:
    request = parse_request(body({"metadata": {"method": "get_item", "bucket_name": "b"}, "data": base64.b64encode(b"\x00\xffbin").decode()}))
    assert request.metadata == {"method": "get_item", "bucket_name": "b"}
    assert request.data == b"\x00\xffbin"


def test_empty_body_is_an_error() -> None:
    with pytest.raises(InvalidRequestError, match="^invalid request format, empty request$"):
        parse_request(b"")


@pytest.mark.parametrize("raw", [b"not json at all", b"\xff\xfe binary", b"[1, 2, 3]", b'"just a string"'])
def test_non_object_body_becomes_raw_data(raw: bytes) -> None:
    request = parse_request(raw)
    assert request.metadata == {}
    assert request.data == raw


def test_non_string_metadata_value_makes_the_body_raw_data() -> None:
    raw = body({"metadata": {"method": "get_item", "size": 3}, "data": "dGVzdA=="})
    assert parse_request(raw) == Request(metadata={}, data=raw)


def test_missing_or_null_data_is_empty() -> None:
    assert parse_request(body({"metadata": {"method": "list_buckets"}})).data == b""
    assert parse_request(body({"metadata": {"method": "list_buckets"}, "data": None})).data == b""


def test_data_string_that_is_not_base64_is_taken_as_text() -> None:
    assert parse_request(body({"data": "hello world!"})).data == b"hello world!"


def test_data_string_that_happens_to_be_base64_is_decoded_like_kubemq_targets() -> None:
    assert parse_request(body({"data": "test"})).data == base64.b64decode("test")


def test_data_object_is_reencoded_as_compact_sorted_json() -> None:
    request = parse_request(body({"data": {"b": 1, "a": {"d": [1, 2], "c": "<x>"}}}))
    assert request.data == b'{"a":{"c":"\\u003cx\\u003e","d":[1,2]},"b":1}'


@pytest.mark.parametrize(("data", "go_type"), [(3, "float64"), (1.5, "float64"), ([1], "[]interface {}"), (True, "bool")])
def test_other_data_types_are_refused_with_the_go_type_name(data: object, go_type: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        parse_request(body({"metadata": {}, "data": data}))
    assert str(raised.value) == f"invalid request format, invalid data format, {go_type}"


def test_json_null_body_is_an_empty_request() -> None:
    assert parse_request(b"null") == Request()


def test_reply_has_all_four_keys_in_kubemq_targets_order() -> None:
    encoded = Response.ok(b"hi", key="k", bucket="b").to_json()
    assert encoded == b'{"metadata":{"bucket":"b","key":"k","result":"ok"},"data":"aGk=","is_error":false,"error":""}'
    assert json.loads(encoded) == {"metadata": {"bucket": "b", "key": "k", "result": "ok"}, "data": "aGk=", "is_error": False, "error": ""}


def test_error_reply_has_empty_metadata_and_null_data() -> None:
    assert json.loads(Response.failure("boom \"quoted\"").to_json()) == {"metadata": {}, "data": None, "is_error": True, "error": 'boom "quoted"'}


def test_reply_round_trips_binary_and_bytearray_data() -> None:
    payload = bytearray(range(256))
    decoded = Response.from_json(Response(metadata={"result": "ok"}, data=payload).to_json())
    assert decoded.data == bytes(payload)


def test_request_encoding_round_trips() -> None:
    request = Request(metadata={"method": "upload_item"}, data=b"\x01\x02")
    assert parse_request(request.to_json()) == request


# The large-body path must give exactly what the general path gives -------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bindings import wire  # noqa: E402



def both_paths(raw: bytes) -> tuple[object, object]:
    def run(threshold: int) -> object:
        original = wire.LARGE_BODY
        wire.LARGE_BODY = threshold
        try:
            return wire.parse_request(raw)
        except InvalidRequestError as exc:
            return ("error", str(exc))
        finally:
            wire.LARGE_BODY = original

    return run(1), run(10**12)


def test_large_body_is_decoded_from_the_buffer() -> None:
    payload = bytes(range(256)) * 1024
    raw = Request(metadata={"method": "upload_item", "item_name": "k"}, data=payload).to_json()
    assert len(raw) >= wire.LARGE_BODY
    assert wire._parse_large(raw) == Request(metadata={"method": "upload_item", "item_name": "k"}, data=payload)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"metadata":{"a":"b"},"data":"QUJD"}',
        b'{ "metadata" : { "a" : "b" } , "data" : "QUJD" }\n',
        b'{"data":"QUJD"}',
        b'{,"data":"QUJD"}',
        b'{"metadata":{}"data":"QUJD"}',
        b'{"metadata":{"x":"y"}},"data":"QUJD"}',
        b'{"metadata":{"data":"QUJD"}}',
        b'{"metadata":{"a":1},"data":"QUJD"}',
        b'{"a":"\\"data\\":\\"QUJD"}',
        b'{"a":"x","data":"QU JD"}',
        b'{"a":"x","data":"QUJ"}',
        b'{"data":"QUJD","data":"RUZH"}',
        b'{"metadata":{"k":"v"},"data":"QUJD=="}',
        b'["x","data":"QUJD"}',
        b'{"metadata":null,"data":"QUJD"}',
        b'{"metadata":{"k":"v"},"data":"dGVzdA=="}',
    ],
)
def test_large_path_agrees_on_tricky_bodies(raw: bytes) -> None:
    fast, general = both_paths(raw)
    assert fast == general


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8), lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3), max_leaves=6)


@settings(max_examples=300, deadline=None)
@given(
    metadata=st.one_of(st.none(), st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=4), json_values),
    data=st.one_of(st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()), st.text(max_size=12), json_values),
    spaces=st.sampled_from(["", " ", "\n  "]),
    extra=st.dictionaries(st.sampled_from(["x", "data", "Metadata"]), json_values, max_size=2),
)
def test_large_path_agrees_with_the_general_path(metadata: object, data: object, spaces: str, extra: dict[str, object]) -> None:
    document: dict[str, object] = {**extra, "metadata": metadata, "data": data}
    raw = json.dumps(document, separators=("," + spaces, ":" + spaces)).encode()
    fast, general = both_paths(raw)
    assert fast == general
