"""The one long-lived S3 client a target uses, and what every handler needs from it.

A single aiobotocore client is shared by all concurrent requests of a binding
(its connection pool is sized to the binding's concurrency, since a smaller
pool starves requests). After ``close`` it refuses use: aiobotocore would
otherwise quietly open a new, never-closed HTTP session.
"""

from __future__ import annotations

import math
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import aioboto3
from aiobotocore.config import AioConfig
from botocore.exceptions import ClientError, WaiterError
from botocore.handlers import validate_bucket_name

from bindings.errors import TargetError
from bindings.wire import KUBEMQ_TARGETS, ReplyStyle
from connector.s3.connection import S3ConnectionProperties
from connector.s3.direct import DirectCalls
from connector.s3.errors import NO_SUCH_BUCKET, NO_SUCH_KEY, client_error, is_not_found, waiter_error
from connector.s3.internals import client_credentials, credentials_expiry
from connector.s3.options import S3Properties
from connector.s3.tracing import trace_s3_calls

DEFAULT_REGION = "us-east-1"
MIN_POOL = 10
USER_AGENT = "kubemq-s3"


@dataclass(frozen=True)
class Credentials:
    """Static keys; ``None`` in their place means the AWS default credential chain."""

    access_key: str
    secret_key: str
    token: str | None = None


def static_credentials(properties: S3ConnectionProperties) -> Credentials | None:
    """The configured keys, or None for the AWS default credential chain."""
    if properties.aws_key is None or properties.aws_secret_key is None:
        return None
    token = properties.token.get_secret_value() if properties.token is not None else None
    return Credentials(properties.aws_key.get_secret_value(), properties.aws_secret_key.get_secret_value(), token)


class S3Connection:
    """One long-lived aiobotocore client, made from the connection properties both S3 kinds share."""

    def __init__(self, properties: S3ConnectionProperties) -> None:
        self.properties = properties
        self.endpoint_url = properties.endpoint
        self.region = DEFAULT_REGION
        self._stack = AsyncExitStack()
        self._client: Any = None

    async def open(self, credentials: Credentials | None, pool_size: int) -> None:
        """Create the client; the region falls back to the default chain's, then us-east-1."""
        session = aioboto3.Session(
            aws_access_key_id=credentials.access_key if credentials else None,
            aws_secret_access_key=credentials.secret_key if credentials else None,
            aws_session_token=credentials.token if credentials else None,
        )
        self.region = self.properties.region or session.region_name or DEFAULT_REGION
        config = AioConfig(
            signature_version="s3v4",
            s3={"addressing_style": "path" if self.properties.path_style else "auto"},
            max_pool_connections=max(MIN_POOL, pool_size),
            connect_timeout=self.properties.connect_timeout_seconds,
            read_timeout=self.properties.read_timeout_seconds,
            retries={"mode": "standard", "total_max_attempts": self.properties.max_attempts},
            user_agent_extra=USER_AGENT,
        )
        trace_s3_calls()  # nothing when tracing is off
        self._client = await self._stack.enter_async_context(session.client("s3", endpoint_url=self.endpoint_url, region_name=self.region, verify=self.properties.verify, config=config))
        # Bucket names go to the store as given, as kubemq-targets sends them: the store's refusal
        # (InvalidBucketName, with its status and ids) is the answer, not botocore's own check.
        self._client.meta.events.unregister("before-parameter-build.s3", validate_bucket_name)

    async def close(self) -> None:
        self._client = None
        await self._stack.aclose()

    @property
    def api(self) -> Any:
        """The aiobotocore client; refuses use after ``close``."""
        if self._client is None:
            raise TargetError("the S3 client is closed", code="TargetClosed")
        return self._client

    async def credentials_expiry(self) -> datetime | None:
        """When the client's temporary credentials (web identity / IRSA, container or instance role, SSO) expire.

        None for static keys (a static ``token``'s expiry is not known either)
        or when it cannot be told (botocore keeps it private: see internals.py).
        """
        credentials = client_credentials(self.api)
        if credentials is None:
            return None
        await credentials.get_frozen_credentials()  # loads deferred credentials, renews ones about to expire
        return credentials_expiry(credentials)

    def object_url(self, bucket: str, key: str) -> str:
        """The object's URL as this client addresses it (path style, or the bucket's virtual host)."""
        path = quote(key, safe="/~")
        if self.endpoint_url:
            if self.properties.path_style:
                return f"{self.endpoint_url}/{bucket}/{path}"
            parts = urlsplit(self.endpoint_url)
            return f"{parts.scheme}://{bucket}.{parts.netloc}{parts.path}/{path}"
        suffix = "amazonaws.com.cn" if self.region.startswith("cn-") else "amazonaws.com"
        host = f"s3.{suffix}" if self.region == DEFAULT_REGION else f"s3.{self.region}.{suffix}"
        if self.properties.path_style or "." in bucket:
            return f"https://{host}/{bucket}/{path}"
        return f"https://{bucket}.{host}/{path}"


class S3Client(S3Connection):
    """The target's S3 connection plus the few helpers handlers share (waiters, HEAD, the fast GetObject/PutObject)."""

    properties: S3Properties

    def __init__(self, properties: S3Properties, max_reply_data: int | None = None, reply_style: ReplyStyle = KUBEMQ_TARGETS) -> None:
        super().__init__(properties)
        # The binding's reply style: the few errors kubemq-targets words its own way follow it.
        self.reply_style = reply_style
        # Largest reply data the binding's source can send (None: no limit); get_item refuses bigger objects unread.
        self.max_reply_data = max_reply_data
        # The binding's least privilege: checked before each request; list_buckets also filters by it.
        self.policy = properties.access_policy()
        # GetObject and PutObject without aiobotocore's per-call machinery, when the client allows it.
        self.direct: DirectCalls | None = None

    async def open(self, credentials: Credentials | None, pool_size: int) -> None:
        await super().open(credentials, pool_size)
        timeouts = (self.properties.connect_timeout_seconds, self.properties.read_timeout_seconds)
        self.direct = DirectCalls.create(self.api, verify=self.properties.verify, timeouts=timeouts, pool_size=max(MIN_POOL, pool_size), max_attempts=self.properties.max_attempts)
        if self.direct is not None:
            self._stack.push_async_callback(self.direct.close)

    async def close(self) -> None:
        self.direct = None
        await super().close()

    async def wait(self, waiter: str, what: str, remaining: float | None, **params: Any) -> None:
        """Run a botocore waiter, bounded by ``waiter_timeout_seconds`` and the request's deadline."""
        delay = self.properties.waiter_delay_seconds
        timeout = self.properties.waiter_timeout_seconds
        if remaining is not None:
            timeout = max(delay, min(timeout, remaining))
        try:
            await self.api.get_waiter(waiter).wait(**params, WaiterConfig={"Delay": delay, "MaxAttempts": max(1, math.ceil(timeout / delay))})
        except WaiterError as exc:
            raise waiter_error(exc, what, timeout) from exc

    async def head_object(self, bucket: str, key: str, **params: Any) -> dict[str, Any]:
        """HeadObject whose 404 says whether the bucket or the key is missing (a HEAD reply has no body to tell)."""
        try:
            return await self.api.head_object(Bucket=bucket, Key=key, **params)  # type: ignore[no-any-return]
        except ClientError as exc:
            if not is_not_found(exc):
                raise
            raise client_error(exc, await self._missing(bucket)) from exc

    async def _missing(self, bucket: str) -> str:
        try:
            await self.api.head_bucket(Bucket=bucket)
        except ClientError as exc:
            if is_not_found(exc):
                return NO_SUCH_BUCKET
        return NO_SUCH_KEY
