"""GetObject and PutObject of the hot path sent straight over HTTP, signed and read by botocore's own parts.

A call through aiobotocore costs about 0.8 ms of CPU for a 1 KiB object on
the benchmark machine, most of it in the machinery around the HTTP exchange:
the event hooks, the user-agent string, endpoint-rule resolution, parameter
validation, the retry handler's bookkeeping. The same exchange made here
costs about a quarter of that. What decides the bytes on the wire and the
words of a reply stays botocore's, so both paths send and read the same:

* each bucket's URL prefix is the one botocore resolves (endpoint rules,
  addressing style, region), read once per bucket from a presigned URL;
* requests are signed by botocore's ``S3SigV4Auth`` with the client's own
  credentials (static keys, or the default chain, refreshed as botocore
  refreshes them) and sent by aiobotocore's HTTP session class, with the
  client's timeouts, TLS verification, proxies and error mapping;
* a PutObject carries the CRC32 checksum botocore adds by default (in a
  header; botocore sends it as a trailer of an aws-chunked body over HTTPS);
* headers and error documents are parsed by botocore's parser for the
  operation, and an error is raised as the client's own modeled
  ``ClientError``;
* retryable failures are retried by botocore's standard-mode conditions and
  backoff, within ``max_attempts``.

A call goes through aiobotocore instead (``None`` from here) when it asks for
anything else, when tracing is on (its spans hang on botocore's hooks), and
when S3 answers with a redirect (a bucket in another region: botocore's
redirector follows it).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from aiobotocore.httpsession import AIOHTTPSession
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ReadTimeoutError
from botocore.parsers import DEFAULT_TIMESTAMP_PARSER, RestXMLParser
from botocore.retries.standard import ExponentialBackoff, RetryContext, StandardRetryConditions
from botocore.utils import get_environ_proxies, percent_encode, percent_encode_sequence

from bindings import tracing
from connector.s3.internals import client_credentials
from connector.s3.transfer import READ_CHUNK, collect

# The key of the presigned URL a bucket's prefix is read from (nothing is fetched).
_PROBE_KEY = "kubemq-s3-probe"
# Buckets whose URL prefix is kept.
_PREFIXES_KEPT = 1024
# A redirect, or a 400 naming the bucket's region: botocore's redirector knows what to do.
_REDIRECTS = frozenset({301, 302, 307, 308})
_CHECKSUM_HEADER = "x-amz-checksum-crc32"


class DirectCalls:
    """GetObject and PutObject without aiobotocore's per-call machinery (see the module's docstring)."""

    def __init__(self, client: Any, credentials: Any, http: AIOHTTPSession, max_attempts: int) -> None:
        self._client = client
        self._credentials = credentials
        self._http = http
        self._region = client.meta.region_name
        self._parser = RestXMLParser(timestamp_parser=parse_timestamp)
        model = client.meta.service_model
        self._get = model.operation_model("GetObject")
        self._put = model.operation_model("PutObject")
        self._retryable = StandardRetryConditions(max_attempts=max_attempts)
        self._backoff = ExponentialBackoff()
        self._prefixes: OrderedDict[str, str] = OrderedDict()

    @classmethod
    def create(cls, client: Any, *, verify: bool | str, timeouts: tuple[float, float], pool_size: int, max_attempts: int) -> DirectCalls | None:
        """The direct calls of ``client``, or None when its credentials cannot be reached (then every call takes aiobotocore's way)."""
        credentials = client_credentials(client)
        if credentials is None or not hasattr(credentials, "get_frozen_credentials"):
            return None
        endpoint = client.meta.endpoint_url
        http = AIOHTTPSession(verify=verify, proxies=get_environ_proxies(endpoint), timeout=timeouts, max_pool_connections=pool_size)
        return cls(client, credentials, http, max_attempts)

    async def close(self) -> None:
        await self._http.close()

    async def get_object(self, bucket: str, key: str, *, byte_range: str | None, version_id: str | None) -> tuple[dict[str, Any], Callable[[int | None], Awaitable[bytearray]]] | None:
        """GetObject's output, and what reads its body (once): ``read(most)``, as ``transfer.read_body`` reads aiobotocore's."""
        if tracing.active() is not None:
            return None
        prefix = await self._prefix(bucket)
        if prefix is None:
            return None
        url = prefix + percent_encode(key, safe="/~")
        if version_id is not None:
            url += "?" + percent_encode_sequence({"versionId": version_id})
        headers = {"Range": byte_range} if byte_range is not None else {}
        answer = await self._send("GET", url, headers, b"", self._get)
        if answer is None:
            return None
        output, response = answer
        return output, functools.partial(_read, response.raw, response.headers.get("content-length"), url=url)

    async def put_object(self, bucket: str, key: str, body: bytes | bytearray | memoryview) -> dict[str, Any] | None:
        """PutObject of ``body`` with nothing else asked: no content type, metadata, encryption or digests."""
        if tracing.active() is not None:
            return None
        prefix = await self._prefix(bucket)
        if prefix is None:
            return None
        payload = body if isinstance(body, (bytes, bytearray)) else bytes(body)
        headers = {_CHECKSUM_HEADER: base64.b64encode(zlib.crc32(payload).to_bytes(4, "big")).decode()}
        answer = await self._send("PUT", prefix + percent_encode(key, safe="/~"), headers, payload, self._put)
        return None if answer is None else answer[0]

    async def _prefix(self, bucket: str) -> str | None:
        """``scheme://host/`` and, in path style, the bucket: what botocore puts before a key of ``bucket``."""
        prefix = self._prefixes.get(bucket)
        if prefix is not None:
            self._prefixes.move_to_end(bucket)
            return prefix
        try:
            url: str = await self._client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": _PROBE_KEY}, ExpiresIn=60)
        except Exception:  # noqa: BLE001 - a name botocore cannot address: its own call says why, in its words
            return None
        base = url.split("?", 1)[0]
        if not base.endswith("/" + _PROBE_KEY):
            return None
        prefix = self._prefixes[bucket] = base[: -len(_PROBE_KEY)]
        if len(self._prefixes) > _PREFIXES_KEPT:
            self._prefixes.popitem(last=False)
        return prefix

    async def _send(self, method: str, url: str, headers: dict[str, str], body: bytes | bytearray, operation: Any) -> tuple[dict[str, Any], Any] | None:
        """One call with botocore's standard retries until its headers: the parsed output and the response, or None for a redirect.

        A GET's body is left to read: one that breaks off is fetched again by
        the caller (``items.py``), as on aiobotocore's way.
        """
        attempt = 1
        streams = operation is self._get
        while True:
            request = await self._signed(method, url, headers, body, streams=streams)
            try:
                response = await self._http.send(request.prepare())
            except Exception as exc:
                if not self._retry(attempt, operation, None, None, exc):
                    raise
                attempt = await self._next_attempt(attempt)
                continue
            if response.status_code in _REDIRECTS or (response.status_code == 400 and "x-amz-bucket-region" in response.headers):
                await response.content  # frees the connection
                return None
            received = _Headers(response.headers)
            if response.status_code >= 300:
                parsed = self._parser.parse({"status_code": response.status_code, "headers": received, "body": await response.content}, operation.output_shape)
                if self._retry(attempt, operation, parsed, response, None):
                    attempt = await self._next_attempt(attempt)
                    continue
                parsed.setdefault("ResponseMetadata", {})["RetryAttempts"] = attempt - 1
                code = parsed.get("Error", {}).get("Code", "")
                raise self._client.exceptions.from_code(code)(parsed, operation.name)
            output = self._parser.parse({"status_code": response.status_code, "headers": received, "body": b""}, operation.output_shape)
            output.pop("Body", None)
            output["ResponseMetadata"]["RetryAttempts"] = attempt - 1
            return output, response

    async def _next_attempt(self, attempt: int) -> int:
        """Wait botocore's standard backoff after attempt number ``attempt``; the next one's number."""
        await asyncio.sleep(self._backoff.delay_amount(RetryContext(attempt_number=attempt)))
        return attempt + 1

    def _retry(self, attempt: int, operation: Any, parsed: dict[str, Any] | None, response: Any, exc: Exception | None) -> bool:
        context = RetryContext(attempt_number=attempt, operation_model=operation, parsed_response=parsed, http_response=response, caught_exception=exc)
        return bool(self._retryable.is_retryable(context))

    async def _signed(self, method: str, url: str, headers: dict[str, str], body: bytes | bytearray, *, streams: bool) -> AWSRequest:
        """``method url`` signed as botocore signs it; a GET's body is read by the caller, chunk by chunk."""
        request = AWSRequest(method=method, url=url, headers=dict(headers), data=body, stream_output=streams)
        # PutObject's Body is a streaming member: over HTTPS with a checksum, its payload goes unsigned, as botocore sends it.
        request.context["has_streaming_input"] = not streams
        if _CHECKSUM_HEADER in headers:
            request.context["checksum"] = {"request_algorithm": {"in": "header", "name": _CHECKSUM_HEADER}}
        S3SigV4Auth(await self._credentials.get_frozen_credentials(), "s3", self._region).add_auth(request)
        return request


class _Headers(dict[str, str]):
    """A response's headers, names lowercased, looked up in any case.

    botocore's parser asks for each of an output's sixty-odd header members
    by its canonical name; its own case-insensitive dict answers a tenth as fast.
    """

    def __init__(self, headers: Any) -> None:
        super().__init__((name.lower(), value) for name, value in headers.items())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


def parse_timestamp(value: str) -> datetime:
    """A header's HTTP date (``Last-Modified``) read by the standard library; anything else as botocore reads it.

    botocore reads every timestamp with dateutil's general parser, the
    costliest step of reading a GetObject's headers. Both give the same UTC instant.
    """
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        return DEFAULT_TIMESTAMP_PARSER(value)  # type: ignore[no-any-return]
    return parsed


async def _read(raw: Any, length: str | None, most: int | None = None, *, url: str) -> bytearray:
    """The whole body of an aiohttp response, as ``transfer.collect`` reads one.

    A stall past the read timeout is botocore's ``ReadTimeoutError``, as on
    aiobotocore's way; a connection left mid-body is closed, not pooled.
    """
    try:
        return await collect(raw.content.iter_chunked(READ_CHUNK), int(length) if length is not None else None, most)
    except TimeoutError as exc:
        raise ReadTimeoutError(endpoint_url=url, error=exc) from exc
    finally:
        if raw.content.at_eof():
            raw.release()
        else:
            raw.close()
