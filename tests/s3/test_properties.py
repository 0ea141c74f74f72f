"""S3Properties: kubemq-targets' properties accepted, consistent combinations enforced, secrets never echoed."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bindings.properties import problems_from
from connector.s3 import S3Properties


def problems(**values: object) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        S3Properties(**values)
    return [str(p) for p in problems_from(caught.value, "bindings[0].target.properties", S3Properties)]


def test_kubemq_targets_properties_are_accepted_as_strings() -> None:
    props = S3Properties(aws_key="AKIA1", aws_secret_key="s3cr3t", region="eu-west-1", token="tok", downloader="true", uploader="false")
    assert props.region == "eu-west-1"
    assert props.aws_key is not None and props.aws_key.get_secret_value() == "AKIA1"
    assert props.downloader is True and props.uploader is False


def test_everything_is_optional_for_the_default_credential_chain() -> None:
    props = S3Properties()
    assert props.aws_key is None and props.region is None and props.endpoint is None
    assert props.path_style is False and props.verify is True


def test_path_style_defaults_to_true_with_an_endpoint_and_can_be_forced() -> None:
    assert S3Properties(endpoint="http://127.0.0.1:9000").path_style is True
    assert S3Properties(endpoint="http://127.0.0.1:9000", force_path_style="false").path_style is False
    assert S3Properties(force_path_style="true").path_style is True


def test_ca_file_is_what_verify_uses(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    assert S3Properties(ca_file=str(ca)).verify == str(ca)
    assert S3Properties(verify_ssl="false").verify is False


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"aws_key": "AKIA1"}, "aws_key and aws_secret_key must be set together"),
        ({"aws_secret_key": "s3cr3t"}, "aws_key and aws_secret_key must be set together"),
        ({"token": "tok"}, "token needs aws_key and aws_secret_key"),
        ({"endpoint": "127.0.0.1:9000"}, "endpoint: Value error, must be an http(s) URL"),
        ({"endpoint": "ftp://host"}, "must be an http(s) URL"),
        ({"ca_file": "/nonexistent/ca.pem"}, "ca_file: Value error, file '/nonexistent/ca.pem' does not exist"),
        ({"endpoint": "embedded", "force_path_style": "false"}, "force_path_style cannot be false"),
        ({"embedded_data_dir": "/tmp/x"}, "embedded_data_dir applies only to endpoint 'embedded'"),
        ({"list_max_keys_cap": "0"}, "list_max_keys_cap: Input should be greater than or equal to 1"),
        ({"multipart_part_size_mib": "4"}, "multipart_part_size_mib: Input should be greater than or equal to 5"),
        ({"multipart_threshold_mib": "8", "multipart_part_size_mib": "16"}, "cannot be larger than multipart_threshold_mib"),
        ({"region": "EU WEST"}, "region: String should match pattern"),
        ({"bucket_name": "x"}, "unknown property; valid properties: aws_key, aws_secret_key, token, region, endpoint"),
    ],
)
def test_invalid_combinations_are_refused_with_a_located_reason(values: dict[str, str], expected: str) -> None:
    found = problems(**values)
    assert any(expected in p for p in found), found
    assert all(p.startswith("bindings[0].target.properties") for p in found)


def test_secrets_are_never_echoed() -> None:
    props = S3Properties(aws_key="AKIA-VISIBLE?", aws_secret_key="TOP-SECRET-VALUE", token="TOKEN-VALUE")
    assert "TOP-SECRET-VALUE" not in repr(props) and "TOKEN-VALUE" not in repr(props)
    with pytest.raises(ValidationError) as caught:
        S3Properties(aws_secret_key="TOP-SECRET-VALUE")
    assert "TOP-SECRET-VALUE" not in str(caught.value)
    assert S3Properties.secret_fields() == {"aws_key", "aws_secret_key", "token"}


def test_every_property_is_documented_with_an_example() -> None:
    for name, info in S3Properties.model_fields.items():
        assert info.description, name
        assert info.examples, name
