"""The direct calls read GetObject's and PutObject's headers (connector/s3/output_headers.py) exactly as botocore's parser does.

Generated responses carry any of the outputs' modeled headers, with values
valid and not, user metadata and unmodeled headers; both readers must give
the same output, key order included, or fail alike.
"""

from __future__ import annotations

import base64
from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import HeadersDict
from botocore.handlers import handle_expires_header
from botocore.parsers import DEFAULT_TIMESTAMP_PARSER, RestXMLParser
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.s3.output_headers import OutputHeaders, parse_timestamp

MODEL = botocore.session.get_session().get_service_model("s3")
OPERATIONS = ["GetObject", "PutObject"]
HEADERS = sorted(
    {member.serialization["name"].lower() for name in OPERATIONS for member in MODEL.operation_model(name).output_shape.members.values() if member.serialization.get("location") == "header"}
)
VALUES = st.sampled_from(
    ["", "true", "false", "True", "0", "1024", "-7", "12abc", " 5", "Sun, 06 Dec 2026 18:31:45 GMT", "2026-12-06T18:31:45.000Z", "nonsense", "never", "0", '"etag"', "bytes 0-9/10"]
)
HEADER_SETS = st.dictionaries(
    st.sampled_from(HEADERS) | st.sampled_from(["x-amz-request-id", "x-amzn-requestid", "x-amz-id-2", "server", "date"]) | st.from_regex(r"x-amz-meta-[a-z0-9-]{0,12}", fullmatch=True),
    VALUES | st.text(max_size=12),
    max_size=12,
)


def botocores(operation: str, status: int, headers: dict[str, str]) -> Any:
    """What aiobotocore's way gives: its S3 handler of Expires, then botocore's parser with its own timestamp reader."""
    model = MODEL.operation_model(operation)
    response = {"status_code": status, "headers": HeadersDict(headers), "body": b""}
    customized: dict[str, Any] = {}
    try:
        handle_expires_header(model, response, customized)
        parsed = RestXMLParser(timestamp_parser=DEFAULT_TIMESTAMP_PARSER).parse(response, model.output_shape)
    except Exception as exc:  # noqa: BLE001 - a value botocore cannot convert: ours must fail alike
        return ("raised", type(exc))
    parsed.update(customized)
    parsed.pop("Body", None)
    return parsed


def ours(operation: str, status: int, headers: dict[str, str]) -> Any:
    try:
        return OutputHeaders(MODEL.operation_model(operation).output_shape).read(status, headers)
    except Exception as exc:  # noqa: BLE001 - compared with botocore's failure
        return ("raised", type(exc))


@pytest.mark.parametrize("operation", OPERATIONS)
@settings(max_examples=400, deadline=None)
@given(headers=HEADER_SETS, status=st.sampled_from([200, 206]))
def test_generated_headers_read_the_same_as_botocore_reads_them(operation: str, headers: dict[str, str], status: int) -> None:
    mine, theirs = ours(operation, status, headers), botocores(operation, status, headers)
    assert mine == theirs
    if isinstance(mine, dict):
        assert list(mine) == list(theirs), "the output's keys come in botocore's order"


def test_a_typical_get_object_response_is_read_whole() -> None:
    headers = {
        "content-length": "1024",
        "etag": '"0f343b09"',
        "last-modified": "Sun, 06 Dec 2026 18:31:45 GMT",
        "x-amz-request-id": "R1",
        "x-amz-meta-owner": "ops",
        "x-amz-tagging-count": "2",
        "x-amz-delete-marker": "false",
    }
    read = ours("GetObject", 200, headers)
    assert read == botocores("GetObject", 200, headers)
    assert read["ContentLength"] == 1024 and read["Metadata"] == {"owner": "ops"} and read["TagCount"] == 2 and read["DeleteMarker"] is False
    assert read["ResponseMetadata"] == {"RequestId": "R1", "HostId": "", "HTTPStatusCode": 200, "HTTPHeaders": headers}


def test_a_member_of_a_type_it_does_not_convert_leaves_the_whole_response_to_botocore() -> None:
    shape = MODEL.operation_model("GetObject").output_shape
    reader = OutputHeaders(shape)
    reader._members = [member._replace(convert=None) if member.name == "ETag" else member for member in reader._members]
    headers = {"etag": '"x"', "content-length": "1"}
    assert reader.read(200, headers) == botocores("GetObject", 200, headers)


def _read_by(parse: Any, value: str) -> Any:
    try:
        moment = parse(value)
    except Exception:  # noqa: BLE001 - an unreadable date must be unreadable to both
        return "unreadable"
    return (moment, moment.utcoffset())


HTTP_DATES = st.builds(
    "{}, {:02d} {} {:04d} {:02d}:{:02d}:{:02d} GMT".format,
    st.sampled_from(["Sun", "Mon", "Thu", "Xyz"]),
    st.integers(0, 32),
    st.sampled_from(["Jan", "Feb", "Jun", "Dec", "Foo"]),
    st.integers(1, 9999),
    st.integers(0, 24),
    st.integers(0, 60),
    st.integers(0, 61),
)


@settings(max_examples=400, deadline=None)
@given(value=HTTP_DATES | st.sampled_from(["Sun, 06 Dec 2026 13:56:35 +0000", "2026-12-06T13:56:35.123Z", "2030-01-01T00:00:00+02:00", "Sun,  6 Dec 2026 18:31:45 GMT"]))
def test_http_dates_are_read_as_botocore_reads_them(value: str) -> None:
    assert _read_by(parse_timestamp, value) == _read_by(DEFAULT_TIMESTAMP_PARSER, value)


def test_a_json_value_header_is_decoded_as_botocore_decodes_it() -> None:
    # No S3 output has one today; a model that does shows the reader leaves it to botocore's parser.
    shape = botocore.session.get_session().get_service_model("lex-runtime").operation_model("PostContent").output_shape
    header = shape.members["sessionAttributes"].serialization["name"].lower()
    headers = {header: base64.b64encode(b'{"team": "ops"}').decode(), "x-amzn-requestid": "R1"}
    read = OutputHeaders(shape).read(200, headers)
    assert read["sessionAttributes"] == {"team": "ops"}
    assert read == RestXMLParser(timestamp_parser=DEFAULT_TIMESTAMP_PARSER).parse({"status_code": 200, "headers": HeadersDict(headers), "body": b""}, shape)
