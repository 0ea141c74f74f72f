"""The direct calls' SigV4 signer (connector/s3/sigv4.py) makes exactly the headers botocore's S3SigV4Auth makes.

Generated requests of the shapes the direct calls send (a GET with an
optional range and version id, a PUT with a CRC32 header and a body) over
generated hosts, ports, schemes, keys, regions, credentials and instants are
signed both ways; every header, its value and their order must agree.
"""

from __future__ import annotations

import base64
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials
from botocore.utils import percent_encode, percent_encode_sequence
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.s3.sigv4 import Signer, origin_of, payload_hash

# Header values and keys: any text but lone surrogates (they cannot be sent as UTF-8 either way).
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
HOSTS = st.sampled_from(["127.0.0.1", "localhost", "S3.Eu-West-3.AmazonAWS.com", "my-bucket.s3.amazonaws.com", "[::1]", "[2001:DB8::7]", "minio.internal"])
PORTS = st.sampled_from([None, 80, 443, 8333, 9000])
INSTANTS = st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2099, 12, 31)).map(lambda moment: moment.replace(microsecond=0))
CHECKSUM = "x-amz-checksum-crc32"


def botocore_headers(method: str, url: str, headers: dict[str, str], body: bytes, credentials: ReadOnlyCredentials, region: str, moment: datetime) -> list[tuple[str, str]]:
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    request.context["has_streaming_input"] = method == "PUT"
    if CHECKSUM in headers:
        request.context["checksum"] = {"request_algorithm": {"in": "header", "name": CHECKSUM}}
    with mock.patch("botocore.auth.get_current_datetime", lambda: moment):
        S3SigV4Auth(credentials, "s3", region).add_auth(request)
    return list(request.headers.items())


@settings(max_examples=400, deadline=None)
@given(
    scheme=st.sampled_from(["http", "https"]),
    host=HOSTS,
    port=PORTS,
    bucket_in_path=st.sampled_from(["", "bucket-1/", "Dots.In.Name/"]),
    key=TEXT,
    version_id=st.none() | TEXT,
    byte_range=st.none() | TEXT,
    put=st.booleans(),
    body=st.binary(max_size=64),
    access_key=TEXT.filter(bool),
    secret_key=TEXT,
    token=st.none() | TEXT,
    region=st.sampled_from(["us-east-1", "eu-west-3", "ap-southeast-2", "local"]),
    moment=INSTANTS,
)
def test_every_header_is_the_one_botocore_signs(
    scheme: str, host: str, port: int | None, bucket_in_path: str, key: str, version_id: str | None, byte_range: str | None, put: bool, body: bytes,
    access_key: str, secret_key: str, token: str | None, region: str, moment: datetime,
) -> None:  # fmt: skip
    prefix = f"{scheme}://{host}{'' if port is None else f':{port}'}/{bucket_in_path}"
    path = percent_encode(key, safe="/~")
    credentials = ReadOnlyCredentials(access_key, secret_key, token)
    if put:
        method, query, headers = "PUT", "", {CHECKSUM: base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()}
    else:
        method, body = "GET", b""
        query = "" if version_id is None else percent_encode_sequence({"versionId": version_id})
        headers = {} if byte_range is None else {"Range": byte_range}
    url = prefix + path + ("?" + query if query else "")
    origin = origin_of(prefix)
    ours = Signer(region).sign(method, origin, path, query, headers, payload_hash(origin, body, checksum_header=put), credentials, now=moment.replace(tzinfo=UTC).timestamp())
    assert list(ours.items()) == botocore_headers(method, url, headers, body, credentials, region, moment)


def test_the_signing_key_is_derived_again_for_a_new_day_and_a_new_secret() -> None:
    signer, origin = Signer("us-east-1"), origin_of("http://127.0.0.1:8333/bucket/")
    day = datetime(2026, 12, 6, 23, 59, 59)

    def both(secret: str, moment: datetime) -> tuple[Any, Any]:
        credentials = ReadOnlyCredentials("AKID", secret, None)
        ours = signer.sign("GET", origin, "key", "", {}, payload_hash(origin, b"", checksum_header=False), credentials, now=moment.replace(tzinfo=UTC).timestamp())
        return list(ours.items()), botocore_headers("GET", "http://127.0.0.1:8333/bucket/key", {}, b"", credentials, "us-east-1", moment)

    for secret, moment in [("first", day), ("first", day + timedelta(seconds=1)), ("rotated", day + timedelta(seconds=1)), ("first", day)]:
        ours, botocores = both(secret, moment)
        assert ours == botocores
