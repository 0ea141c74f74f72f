"""Pure formatting rules: object URLs per addressing style, RFC 3339 times, media types."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from connector.s3 import S3Properties
from connector.s3.client import S3Client
from connector.s3.content import media_type
from connector.s3.results import rfc3339


@pytest.mark.parametrize(
    ("properties", "region", "bucket", "url"),
    [
        ({}, "us-east-1", "demo", "https://demo.s3.amazonaws.com/a%20b/%C3%BC.txt"),
        ({}, "eu-west-1", "demo", "https://demo.s3.eu-west-1.amazonaws.com/a%20b/%C3%BC.txt"),
        ({}, "eu-west-1", "my.dotted.bucket", "https://s3.eu-west-1.amazonaws.com/my.dotted.bucket/a%20b/%C3%BC.txt"),
        ({"force_path_style": "true"}, "us-east-1", "demo", "https://s3.amazonaws.com/demo/a%20b/%C3%BC.txt"),
        ({}, "cn-north-1", "demo", "https://demo.s3.cn-north-1.amazonaws.com.cn/a%20b/%C3%BC.txt"),
        ({"endpoint": "http://127.0.0.1:9000"}, "us-east-1", "demo", "http://127.0.0.1:9000/demo/a%20b/%C3%BC.txt"),
        ({"endpoint": "https://minio.example:9000/", "force_path_style": "false"}, "us-east-1", "demo", "https://demo.minio.example:9000/a%20b/%C3%BC.txt"),
    ],
)
def test_object_url_follows_the_addressing_style(properties: dict[str, str], region: str, bucket: str, url: str) -> None:
    props = S3Properties(**properties)
    client = S3Client(props)
    client.region = region
    assert client.object_url(bucket, "a b/ü.txt") == url


def test_rfc3339_is_utc_with_z_and_no_empty_fraction() -> None:
    assert rfc3339(datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)) == "2024-05-01T12:00:00Z"
    assert rfc3339(datetime(2024, 5, 1, 14, 0, 0, 795000, tzinfo=timezone(timedelta(hours=2)))) == "2024-05-01T12:00:00.795Z"


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        ("application/json", ("application/json", None)),
        ("Application/JSON; Charset=UTF-8", ("application/json", "utf-8")),
        ('text/plain; format=flowed; charset="iso-8859-1"', ("text/plain", "iso-8859-1")),
        (None, ("", None)),
    ],
)
def test_media_type_and_charset(header: str | None, parsed: tuple[str, str | None]) -> None:
    assert media_type(header) == parsed
