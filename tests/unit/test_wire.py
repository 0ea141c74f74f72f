"""kubemq-targets' request parse rules, case by case, and the reply body shape."""

import base64
import binascii
import json
import os
import re

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
    with pytest.raises(InvalidRequestError, match=r"^invalid request format, empty request$"):
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
    assert json.loads(Response.failure('boom "quoted"').to_json()) == {"metadata": {}, "data": None, "is_error": True, "error": 'boom "quoted"'}


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
    """What the large-body path and the general path make of ``raw``.

    The large path is also given ``raw`` as a view into the middle of a larger
    buffer (as a source hands over a large body), searched back 4 bytes at a
    time, and must make the same of it.
    """

    def run(threshold: int, body: wire.Body) -> object:
        original = wire.LARGE_BODY, wire.BASE64_CHECK_CHUNK
        wire.LARGE_BODY = threshold
        wire.BASE64_CHECK_CHUNK = 4 if isinstance(body, memoryview) else original[1]
        try:
            return wire.parse_request(body)
        except InvalidRequestError as exc:
            return ("error", str(exc))
        finally:
            wire.LARGE_BODY, wire.BASE64_CHECK_CHUNK = original

    fast = run(1, raw)
    assert run(1, memoryview(b'"x' + raw + b'"}')[2:-2]) == fast
    return fast, run(10**12, raw)


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


# Data left as base64 in a large body: decoded whole, or a part at a time ----------------------

PADDINGS = [bytes(range(n)) for n in (0, 1, 2, 3, 4, 5, 6, 7, 10, 11)]  # every padding: none, "=", "=="


def large(data: bytes) -> Request:
    """What the large-body path makes of a request carrying ``data``."""
    parsed = wire._parse_large(b'{"metadata":{"method":"upload_item"},"data":"' + base64.b64encode(data) + b'"}')
    assert parsed is not None
    return parsed


@pytest.mark.parametrize("data", PADDINGS)
def test_the_size_of_base64_data_is_known_before_it_is_decoded(data: bytes) -> None:
    request = large(data)
    assert request.size == len(data)
    assert request.data == data and request.size == len(data)


@pytest.mark.parametrize("data", PADDINGS)
def test_every_part_of_base64_data_decodes_to_that_slice(data: bytes) -> None:
    request = large(data)
    for start in range(len(data) + 2):
        for size in range(1, len(data) + 3):
            assert bytes(request.part(start, size)) == data[start : start + size], (start, size)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200), start=st.integers(0, 210), size=st.integers(1, 210))
def test_parts_agree_with_the_decoded_data(data: bytes, start: int, size: int) -> None:
    lazy, decoded = large(data), Request(data=data)
    assert bytes(lazy.part(start, size)) == bytes(decoded.part(start, size)) == data[start : start + size]


def test_a_part_is_decoded_from_its_own_base64_groups_only() -> None:
    data = os.urandom(3 * 1000 + 2)
    request = large(data)
    part = request.part(1500, 700)  # starts inside a 3-byte group, ends inside another
    assert bytes(part) == data[1500:2200] and len(part.obj) <= 700 + 4


BASE64_TEXT = st.one_of(st.text(alphabet="QUJDRUZHAa+/=\n -_é", max_size=40), st.binary(max_size=30).map(lambda b: base64.b64encode(b).decode()))


@settings(max_examples=500, deadline=None)
@given(text=BASE64_TEXT, chunk=st.sampled_from([4, 8, 4 * 1024 * 1024]))
def test_what_the_base64_check_accepts_strict_binascii_decodes_the_same(text: str, chunk: int) -> None:
    """Accepted: decoded as the general path decodes it. Refused: the general path decides (see the fallback test).

    Only canonical base64 is accepted: binascii's strict mode also takes stray
    padding after whole groups (``QUJD=``), which is left to the general path.
    """
    encoded = text.encode()
    original = wire.BASE64_CHECK_CHUNK
    wire.BASE64_CHECK_CHUNK = chunk  # small chunks put padding and bad characters on chunk boundaries
    try:
        accepted = wire.is_base64(memoryview(encoded))
    finally:
        wire.BASE64_CHECK_CHUNK = original
    if accepted:
        assert Request.with_base64_data({}, memoryview(encoded)).data == binascii.a2b_base64(encoded, strict_mode=True)
    elif _is_strict(encoded):  # refused though binascii decodes it: not canonical
        assert base64.b64encode(binascii.a2b_base64(encoded, strict_mode=True)) != encoded


def _is_strict(encoded: bytes) -> bool:
    try:
        binascii.a2b_base64(encoded, strict_mode=True)
    except binascii.Error:
        return False
    return True


@pytest.mark.parametrize(
    ("data", "decoded"),
    [
        ("QQ==QUJD", None),  # padding before the end: the whole string is text, as the general path takes it
        ("QUJD QUJD", None),
        ("not base64!", None),
        ("QUJ", None),
        ("QUJD=", b"ABC"),  # stray padding: left to the general path, which takes it as binascii does
        ("QUJD\\nQUJD", b"ABCABC"),  # a JSON-escaped newline: the general path drops it, as Go's decoder does
        ("QUJD\\r\\nQUJD", b"ABCABC"),
    ],
)
def test_base64_the_large_path_cannot_take_falls_back_to_the_general_path(data: str, decoded: bytes | None) -> None:
    run = "QUJD" * (wire.LARGE_BODY // 4)
    raw = ('{"metadata":{"method":"upload_item"},"data":"' + run + data + '"}').encode()
    fast, general = both_paths(raw)
    assert fast == general and isinstance(fast, Request)
    assert fast.data == ((run + data).encode() if decoded is None else b"ABC" * (wire.LARGE_BODY // 4) + decoded)


REPLY_TEXT = st.text(st.one_of(st.characters(exclude_categories=()), st.sampled_from(["\ud800", "\udfff", "<", "&", "\b", "\x7f"])), max_size=8)


@settings(max_examples=200, deadline=None)
@given(
    metadata=st.dictionaries(REPLY_TEXT, REPLY_TEXT, max_size=4),
    data=st.one_of(st.none(), st.binary(max_size=300)),
    is_error=st.booleans(),
    error=REPLY_TEXT,
)
def test_the_reply_body_reads_back_as_kubemq_targets_four_keys(metadata: dict[str, str], data: bytes | None, is_error: bool, error: str) -> None:
    """Go's encoding (sorted map keys, UTF-8 as is, lone surrogates as U+FFFD) that any JSON reader reads back; the differential suite checks the bytes."""
    response = Response(metadata=metadata, data=data, is_error=is_error, error=error)
    body = response.to_json()
    assert body == b"".join(response.json_parts())
    valid = {gojson_text(key): gojson_text(value) for key, value in metadata.items()}
    expected = {"metadata": dict(sorted(valid.items())), "data": None if data is None else base64.b64encode(data).decode(), "is_error": is_error, "error": gojson_text(error)}
    assert json.loads(body) == expected and list(json.loads(body)["metadata"]) == sorted(valid)
    assert not re.search(rb"[<>&\x00-\x1f]", body) and b"\\ud8" not in body


def gojson_text(text: str) -> str:
    return re.sub("[\ud800-\udfff]", "\ufffd", text)


def test_the_reply_body_escapes_as_go_does() -> None:
    response = Response(metadata={"k": "ü<&>\u2028\x7f\x01\b"}, data=b"x", error="a\nb")
    assert response.to_json() == b'{"metadata":{"k":"\xc3\xbc\\u003c\\u0026\\u003e\\u2028\x7f\\u0001\\u0008"},"data":"eA==","is_error":false,"error":"a\\nb"}'


# The request body is built in pieces; it must be exactly what json.dumps writes ----------

# Any character, surrogates included, plus the ones JSON must escape or that encoders treat apart.
WIRE_TEXT = st.text(
    st.one_of(st.characters(exclude_categories=()), st.sampled_from(['"', "\\", "/", "\x00", "\x1f", "\n", "\u2028", "<", "&", ">", "\ud800", "\udfff", "é", "\U0001f600"])), max_size=12
)


@settings(max_examples=300, deadline=None)
@given(metadata=st.dictionaries(WIRE_TEXT, WIRE_TEXT, max_size=5), data=st.binary(max_size=300), lazy=st.booleans())
def test_the_request_body_is_byte_for_byte_what_json_dumps_writes(metadata: dict[str, str], data: bytes, lazy: bool) -> None:
    request = Request.with_base64_data(metadata, memoryview(base64.b64encode(data))) if lazy else Request(metadata=metadata, data=data)
    document: dict[str, object] = {}
    if metadata:
        document["metadata"] = metadata
    if data:
        document["data"] = base64.b64encode(data).decode()
    assert request.to_json() == json.dumps(document, separators=(",", ":")).encode()


# Metadata without a lone surrogate skips the per-string replacement, with the same result ---------


@settings(max_examples=300, deadline=None)
@given(metadata=st.dictionaries(WIRE_TEXT, WIRE_TEXT, max_size=5))
def test_the_metadata_check_gives_what_replacing_each_string_gives(metadata: dict[str, str]) -> None:
    checked = wire._valid_text_map(dict(metadata))
    replaced = {wire._valid_text(key): wire._valid_text(value) for key, value in metadata.items()}
    assert list(checked.items()) == list(replaced.items())
    if not any(0xD800 <= ord(char) <= 0xDFFF for text in [*metadata, *metadata.values()] for char in text):
        assert wire._valid_text_map(metadata) is metadata  # the fast path: nothing copied


@settings(max_examples=300, deadline=None)
@given(metadata=st.dictionaries(WIRE_TEXT, WIRE_TEXT, max_size=5), ensure_ascii=st.booleans())
def test_parsed_metadata_is_each_string_as_go_reads_it(metadata: dict[str, str], ensure_ascii: bool) -> None:
    # ensure_ascii keeps a lone surrogate as a \ud800 escape; without it, it becomes invalid UTF-8 (three U+FFFD).
    raw = json.dumps({"metadata": metadata}, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")
    sent = json.loads(raw.decode("utf-8", "replace"))["metadata"]
    assert parse_request(raw).metadata == {wire._valid_text(key): wire._valid_text(value) for key, value in sent.items()}
