"""botocore and aiohttp failures -> ``bindings.errors`` exceptions.

Messages keep aws-sdk-go's layout for S3 (``Code: message\\n\\tstatus code: N,
request id: X, host id: Y``) because senders written for kubemq-targets match on that text; the
S3 code and HTTP status are also set as fields. ``retryable`` is true only
where trying again can succeed: throttling, 5xx, timeouts, lost connections.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import aiohttp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    IncompleteReadError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
    ProxyConnectionError,
    ReadTimeoutError,
    ResponseStreamingError,
    WaiterError,
)

from bindings.errors import InvalidRequestError, RequestError, RequestTimeoutError, TargetError

THROTTLING_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "EC2ThrottledException",
    }
)
TRANSIENT_CODES = frozenset({"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete", "InternalError", "ServiceUnavailable"})
NO_SUCH_KEY = "NoSuchKey"
NO_SUCH_BUCKET = "NoSuchBucket"
# What S3 says in a body; a HEAD reply has none, so these fill in for it.
NOT_FOUND_MESSAGES = {NO_SUCH_KEY: "The specified key does not exist.", NO_SUCH_BUCKET: "The specified bucket does not exist"}
NO_CREDENTIALS = (
    "no AWS credentials found: set aws_key and aws_secret_key, or provide credentials through the AWS default chain "
    "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, web identity / IRSA, container or instance role)"
)
CONNECTION_ERRORS = (
    EndpointConnectionError,
    ConnectTimeoutError,
    ReadTimeoutError,
    ConnectionClosedError,
    ProxyConnectionError,
    ResponseStreamingError,
    IncompleteReadError,
)


def is_not_found(exc: ClientError) -> bool:
    """True for a 404, whether it came with a body (``NoSuchKey``) or from a bare HEAD (``404``)."""
    status: object = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status == 404


def is_precondition_failed(exc: ClientError, *, or_conflict: bool = False) -> bool:
    """True when a conditional request (``If-Match``, ``If-None-Match``) found another version (412); ``or_conflict``: a concurrent conditional write (409) too."""
    code = exc.response.get("Error", {}).get("Code")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code == "PreconditionFailed" or status == 412:
        return True
    return or_conflict and (code == "ConditionalRequestConflict" or status == 409)


def client_error(exc: ClientError, missing: str | None = None) -> TargetError:
    """An S3 error reply as aws-sdk-go would print it.

    ``missing`` names what a bodiless 404 means (``NoSuchKey`` or
    ``NoSuchBucket``); HEAD replies carry only the status, so the caller that
    knows what it asked for decides.
    """
    error: dict[str, Any] = exc.response.get("Error", {})
    meta: dict[str, Any] = exc.response.get("ResponseMetadata", {})
    status: int | None = meta.get("HTTPStatusCode")
    code = str(error.get("Code") or "")
    message = str(error.get("Message") or "")
    if not code or code.isdigit():
        if status == 404:
            code = missing or (NO_SUCH_BUCKET if exc.operation_name == "HeadBucket" else NO_SUCH_KEY)
            message = NOT_FOUND_MESSAGES[code]
        elif status is not None:
            phrase = _phrase(status)
            code, message = phrase.replace(" ", ""), message or phrase
    text = f"{code}: {message}\n\tstatus code: {status}, request id: {meta.get('RequestId', '')}, host id: {meta.get('HostId', '')}"
    retryable = code in THROTTLING_CODES or code in TRANSIENT_CODES or (status is not None and status >= 500 and status != 501)
    return TargetError(text, code=code, status=status, retryable=retryable)


def waiter_error(exc: WaiterError, what: str, timeout: float) -> TargetError:
    """A waiter that gave up: say what it waited for, and why it stopped."""
    last = exc.last_response or {}
    if "Error" in last and last.get("ResponseMetadata", {}).get("HTTPStatusCode") not in (200, 404):
        failed = client_error(ClientError(last, "Wait"))
        return TargetError(f"waiting for {what} failed: {failed}", code=failed.code, status=failed.status, retryable=failed.retryable)
    # Not retryable: the operation itself was done; repeating it is not what makes the wait succeed.
    return TargetError(f"ResourceNotReady: gave up after {round(timeout, 1):g}s waiting for {what}", code="ResourceNotReady")


class DeleteRefused(TargetError):
    """DeleteObjects refused keys: the first ones kept (``kept``), ``refused`` in all, ``deleted`` done.

    ``stopped_after`` is how many batches in a row were refused entirely when
    deletion gave up early. Retryable only if every kept refusal is transient.
    """

    def __init__(self, kept: list[dict[str, Any]], refused: int, deleted: int, bucket: str, stopped_after: int = 0) -> None:
        codes = {str(error.get("Code", "")) for error in kept}
        code = sorted(codes)[0]
        listed = "; ".join(f"{error.get('Key')}: {error.get('Code')} ({error.get('Message', '')})" for error in kept)
        more = f"; and {refused - len(kept)} more" if refused > len(kept) else ""
        if stopped_after:
            summary = f"stopped after {stopped_after} batches in a row in which every object was refused; {deleted} deleted before stopping, {refused} refused"
        else:
            summary = f"failed to delete {refused} of {refused + deleted} objects"
        super().__init__(f"{code}: {summary}: {listed}{more}", code=code, retryable=codes <= (THROTTLING_CODES | TRANSIENT_CODES))
        self.kept = kept
        self.bucket = bucket
        # What the kept keys do not tell: how many more were refused, and whether deletion stopped early.
        self.untold = f"{summary}; the first {len(kept)} refused keys are listed" if refused > len(kept) or stopped_after else ""

    def as_batch_error(self) -> TargetError:
        """The refusals as kubemq-targets reports them (aws-sdk-go's ``BatchedDeleteIncomplete``), one line pair per kept key.

        aws-sdk-go names a refusal ``DeleteBatchError: failed to delete`` only where S3 gave no code or message.
        Past the kept keys (kubemq-targets would list them all) a last line says what the list leaves out.
        """
        failures = [(str(error.get("Key", "")), self.bucket, f"{_or(error.get('Code'), 'DeleteBatchError')}: {_or(error.get('Message'), 'failed to delete')}") for error in self.kept]
        worded = batch_delete_incomplete(failures, self)
        if self.untold:
            worded = TargetError(f"{worded}\n{self.untold}", code=worded.code, status=worded.status, retryable=worded.retryable)
        return worded


def _or(value: Any, missing: str) -> str:
    return missing if value is None else str(value)


class ListingFailed(TargetError):
    """Listing the objects to delete failed: the S3 error, kept apart from a refused delete."""

    @classmethod
    def of(cls, error: TargetError) -> ListingFailed:
        return cls(str(error), code=error.code, status=error.status, retryable=error.retryable)

    def as_batch_error(self) -> TargetError:
        """As kubemq-targets reports it: the batch delete's iterator failed, on no key of no bucket."""
        return batch_delete_incomplete([("", "", str(self))], self)


def batch_delete_incomplete(failures: list[tuple[str, str, str]], cause: TargetError) -> TargetError:
    """aws-sdk-go's ``s3manager.BatchError``: each failure as ``failed to perform batch operation on "key" to "bucket":\\n<error>``."""
    listed = "\n".join(f"failed to perform batch operation on {go_quote(key)} to {go_quote(bucket)}:\n{text}" for key, bucket, text in failures)
    return TargetError(f"BatchedDeleteIncomplete: some objects have failed to be deleted.\ncaused by: {listed}", code=cause.code, status=cause.status, retryable=cause.retryable)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def go_quote(text: str) -> str:
    """Go's ``%q`` of a string: double quotes, backslash escapes, printable characters kept, the rest as ``\\x``/``\\u``/``\\U``."""
    out = []
    for char in text:
        if char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def reply_too_large(subject: str, size: str, limit: int, piece: int) -> TargetError:
    """A reply the binding's source could not send; says how to get the object another way. Retrying cannot help."""
    return TargetError(
        f"ReplyTooLarge: {subject} is {size}, more than the {limit} bytes of data a reply can carry through this binding's source; "
        f"get it in parts with range (at most {piece} bytes each, e.g. range=bytes=0-{max(piece, 1) - 1}) "
        "or download it directly from a presign_url URL",
        code="ReplyTooLarge",
    )


def translate(exc: Exception) -> RequestError:
    """Any failure of an S3 operation as the engine's exception type; never echoes a credential."""
    if isinstance(exc, RequestError):
        return exc
    if isinstance(exc, ClientError):
        return client_error(exc)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)):
        return TargetError(f"{NO_CREDENTIALS} ({type(exc).__name__})", code="NoCredentials")
    if isinstance(exc, ParamValidationError):
        return InvalidRequestError(f"invalid request: {exc}")
    if isinstance(exc, CONNECTION_ERRORS):
        return TargetError(f"{type(exc).__name__}: {exc}", code=type(exc).__name__, retryable=True)
    if isinstance(exc, BotoCoreError):
        return TargetError(f"{type(exc).__name__}: {exc}", code=type(exc).__name__)
    if isinstance(exc, (aiohttp.ClientError, ConnectionError)):
        return TargetError(f"connection to the S3 endpoint failed: {type(exc).__name__}: {exc}", code=type(exc).__name__, retryable=True)
    if isinstance(exc, TimeoutError):
        return RequestTimeoutError("the S3 operation timed out")
    return TargetError(f"unexpected error: {type(exc).__name__}: {exc}", code=type(exc).__name__)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"
