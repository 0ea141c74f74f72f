"""Failures become ``bindings.errors`` exceptions with aws-sdk-go's text, the right code/status, and honest ``retryable``."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
    WaiterError,
)

from bindings.errors import InvalidRequestError, RequestTimeoutError, TargetError
from connector.s3 import S3Target
from connector.s3.embedded import free_port_pairs
from connector.s3.errors import client_error, translate, waiter_error
from tests.fixtures.s3_targets import MakeTarget, StubS3
from tests.s3.support import call, open_target


def s3_error(status: int, code: str = "", message: str = "", operation: str = "GetObject") -> ClientError:
    error = {"Code": code, "Message": message} if code else {"Code": str(status), "Message": ""}
    return ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "REQ1", "HostId": "HOST1"}}, operation)


@pytest.mark.parametrize(
    ("exc", "text", "code", "retryable"),
    [
        (s3_error(404, "NoSuchKey", "The specified key does not exist."), "NoSuchKey: The specified key does not exist.\n\tstatus code: 404, request id: REQ1, host id: HOST1", "NoSuchKey", False),
        (s3_error(404, operation="HeadObject"), "NoSuchKey: The specified key does not exist.\n\tstatus code: 404, request id: REQ1, host id: HOST1", "NoSuchKey", False),
        (s3_error(404, operation="HeadBucket"), "NoSuchBucket: The specified bucket does not exist\n\tstatus code: 404, request id: REQ1, host id: HOST1", "NoSuchBucket", False),
        (s3_error(403, operation="HeadObject"), "Forbidden: Forbidden\n\tstatus code: 403, request id: REQ1, host id: HOST1", "Forbidden", False),
        (s3_error(403, "AccessDenied", "Access Denied"), "AccessDenied: Access Denied\n\tstatus code: 403, request id: REQ1, host id: HOST1", "AccessDenied", False),
        (s3_error(503, "SlowDown", "Please reduce your request rate."), "SlowDown: Please reduce your request rate.\n\tstatus code: 503, request id: REQ1, host id: HOST1", "SlowDown", True),
        (s3_error(400, "RequestTimeout", "Your socket connection timed out."), None, "RequestTimeout", True),
        (s3_error(400, "Throttling", "Rate exceeded"), None, "Throttling", True),
        (s3_error(500, "InternalError", "We encountered an internal error."), None, "InternalError", True),
        (s3_error(502), "BadGateway: Bad Gateway\n\tstatus code: 502, request id: REQ1, host id: HOST1", "BadGateway", True),
        (s3_error(501, "NotImplemented", "A header you provided implies functionality that is not implemented"), None, "NotImplemented", False),
        (s3_error(400, "InvalidArgument", "bad"), None, "InvalidArgument", False),
    ],
)
def test_client_errors_read_as_aws_sdk_go_prints_them(exc: ClientError, text: str | None, code: str, retryable: bool) -> None:
    error = client_error(exc)
    if text is not None:
        assert str(error) == text
    assert (error.code, error.status, error.retryable) == (code, exc.response["ResponseMetadata"]["HTTPStatusCode"], retryable)


@pytest.mark.parametrize(
    ("exc", "kind", "code", "retryable"),
    [
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), TargetError, "EndpointConnectionError", True),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), TargetError, "ReadTimeoutError", True),
        (NoCredentialsError(), TargetError, "NoCredentials", False),
        (ParamValidationError(report="Invalid bucket name"), InvalidRequestError, None, False),
        (TimeoutError(), RequestTimeoutError, None, True),
        (ValueError("bug"), TargetError, "ValueError", False),
    ],
)
def test_other_failures_map_to_the_engine_types(exc: Exception, kind: type, code: str | None, retryable: bool) -> None:
    error = translate(exc)
    assert isinstance(error, kind) and error.retryable is retryable
    if code is not None:
        assert error.code == code  # type: ignore[attr-defined]


def test_no_credentials_says_how_to_provide_them() -> None:
    assert str(translate(NoCredentialsError())).startswith("no AWS credentials found: set aws_key and aws_secret_key, or provide credentials")


def test_waiter_errors_say_what_was_awaited() -> None:
    timed_out = WaiterError(name="ObjectExists", reason="Max attempts exceeded", last_response={"ResponseMetadata": {"HTTPStatusCode": 404}})
    assert str(waiter_error(timed_out, "object b/k to exist", 5)) == "ResourceNotReady: gave up after 5s waiting for object b/k to exist"
    denied = WaiterError(
        name="BucketExists",
        reason="terminal failure",
        last_response={"Error": {"Code": "403", "Message": "Forbidden"}, "ResponseMetadata": {"HTTPStatusCode": 403, "RequestId": "R"}},
    )
    error = waiter_error(denied, "bucket b to exist", 5)
    assert str(error).startswith("waiting for bucket b to exist failed: Forbidden: Forbidden\n\tstatus code: 403")
    assert (error.code, error.status) == ("Forbidden", 403)


async def test_a_waiter_that_gives_up_fails_the_request(make_target: MakeTarget, stub_s3: StubS3) -> None:
    target = await make_target(endpoint=stub_s3.endpoint, waiter_timeout_seconds="0.6", waiter_delay_seconds="0.2")
    stub_s3.replies = [(200, b"")] + [(404, b"")] * 10  # the PUT lands, the HEADs never see it
    with pytest.raises(TargetError, match=r"^ResourceNotReady: gave up after 0.6s waiting for object b/k to exist$"):
        await call(target, b"x", method="upload_item", bucket_name="b", item_name="k", wait_for_completion="true")
    assert [method for method, _, _ in stub_s3.requests] == ["PUT", "HEAD", "HEAD", "HEAD"]


SLOW_DOWN = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"


@pytest.mark.parametrize(("attempts", "requests"), [("1", 1), ("3", 3)])
async def test_throttling_is_retried_by_the_sdk_then_reported_retryable(make_target: MakeTarget, stub_s3: StubS3, attempts: str, requests: int) -> None:
    target = await make_target(endpoint=stub_s3.endpoint, max_attempts=attempts)
    stub_s3.replies = [(503, SLOW_DOWN)] * 5
    with pytest.raises(TargetError) as caught:
        await call(target, method="list_buckets")
    assert str(caught.value) == f"SlowDown: Please reduce your request rate.\n\tstatus code: 503, request id: R{requests}, host id: "
    assert caught.value.retryable is True and len(stub_s3.requests) == requests


async def test_an_unreachable_endpoint_is_retryable(make_target: MakeTarget) -> None:
    port = free_port_pairs(1)[0]
    target = await make_target(endpoint=f"http://127.0.0.1:{port}", max_attempts="1", connect_timeout_seconds="1")
    with pytest.raises(TargetError) as caught:
        await call(target, method="list_buckets")
    assert caught.value.code == "EndpointConnectionError" and caught.value.retryable is True
    assert f"127.0.0.1:{port}" in str(caught.value)


async def test_a_wrong_secret_is_refused_without_echoing_it(make_target: MakeTarget) -> None:
    target = await make_target(aws_secret_key="WRONG-SECRET-VALUE")
    with pytest.raises(TargetError) as caught:
        await call(target, method="list_buckets")
    assert caught.value.status == 403 and caught.value.retryable is False
    assert "WRONG-SECRET-VALUE" not in str(caught.value)


async def test_without_keys_the_default_chain_is_used(monkeypatch: pytest.MonkeyPatch, seaweed: Any, tmp_path: Any) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    anonymous = await open_target({"endpoint": seaweed.endpoint})
    try:
        with pytest.raises(TargetError, match=r"^no AWS credentials found") as caught:
            await call(anonymous, method="list_buckets")
        assert caught.value.code == "NoCredentials"
    finally:
        await anonymous.close()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweed.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweed.secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    from_env = await open_target({"endpoint": seaweed.endpoint})
    try:
        assert (await call(from_env, method="list_buckets")).metadata == {"result": "ok"}
        presigned = await call(from_env, method="presign_url", bucket_name="b", item_name="k")
        assert "%2Feu-central-1%2Fs3%2F" in presigned.data.decode()  # type: ignore[union-attr]
    finally:
        await from_env.close()


async def test_a_closed_target_refuses_requests(make_target: MakeTarget) -> None:
    target = await make_target()
    await target.close()
    with pytest.raises(TargetError, match="not initialised or already closed"):
        await call(target, method="list_buckets")
    await target.close()  # closing twice is harmless


async def test_a_target_can_be_initialised_again_after_close(make_target: MakeTarget, s3_properties: dict[str, str]) -> None:
    target: S3Target = await make_target()
    await target.close()
    reopened = await open_target(s3_properties)
    try:
        assert (await call(reopened, method="list_buckets")).metadata == {"result": "ok"}
    finally:
        await reopened.close()


async def test_a_waiter_gives_up_at_the_request_deadline(make_target: MakeTarget, stub_s3: StubS3) -> None:
    target = await make_target(endpoint=stub_s3.endpoint, waiter_timeout_seconds="60", waiter_delay_seconds="0.1")
    stub_s3.replies = [(204, b"")] + [(200, b"")] * 20  # the delete lands, the key keeps answering HEAD
    deadline = time.monotonic() + 0.3
    # What is left of the 0.3 s once the DELETE is answered (at least one waiter delay), not waiter_timeout_seconds.
    with pytest.raises(TargetError, match=r"^ResourceNotReady: gave up after 0\.[123]s waiting for object b/k to be deleted$"):
        await call(target, method="delete_item_from_bucket", bucket_name="b", item_name="k", wait_for_completion="true", deadline=deadline)
    assert time.monotonic() - deadline < 1.5
