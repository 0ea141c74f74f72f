"""GetObject and PutObject of the hot path sent straight over aiohttp, signed and read as botocore signs and reads them.

A call through aiobotocore costs about 0.9 ms of CPU for a 1 KiB object on
the benchmark machine, most of it in the machinery around the HTTP exchange:
the event hooks, the user-agent string, endpoint-rule resolution, parameter
validation, the retry handler's bookkeeping, the signer's and the parser's
general paths. The same exchange made here costs about a sixth of that.
What decides the bytes on the wire and the words of a reply stays botocore's,
or is held to it by tests, so both paths send and read the same:

* each bucket's URL prefix is the one botocore resolves (endpoint rules,
  addressing style, region), read once per bucket from a presigned URL;
* requests are signed with SigV4 (``sigv4.py``, held to botocore's
  ``S3SigV4Auth`` by tests) with the client's own credentials (static keys,
  or the default chain, refreshed as botocore refreshes them);
* they are sent on the aiohttp session of aiobotocore's HTTP session class,
  made with the client's timeouts, TLS verification and proxies, and a
  failure becomes the botocore exception that class raises;
* a PutObject carries the CRC32 checksum botocore adds by default (in a
  header; botocore sends it as a trailer of an aws-chunked body over HTTPS);
* headers are read per botocore's model of the operation's output
  (``output_headers.py``), error documents by botocore's parser, and an
  error is raised as the client's own modeled ``ClientError``;
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
import os
import socket
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import CancelledError as FutureCancelled
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlsplit
from xml.etree import ElementTree

import aiohttp
from aiobotocore.httpsession import AIOHTTPSession
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    FlexibleChecksumError,
    HTTPClientError,
    ProxyConnectionError,
    ReadTimeoutError,
    SSLError,
)
from botocore.httpchecksum import resolve_response_checksum_algorithms
from botocore.httpsession import ProxyConfiguration, mask_proxy_url
from botocore.retries.quota import RetryQuota
from botocore.retries.standard import ExponentialBackoff, RetryContext, RetryQuotaChecker, StandardRetryConditions
from botocore.utils import ensure_boolean, get_environ_proxies, percent_encode, percent_encode_sequence
from yarl import URL

from bindings import tracing
from connector.s3.internals import aiohttp_session, checksum_class, client_credentials
from connector.s3.output_headers import OutputHeaders
from connector.s3.sigv4 import Origin, Signer, origin_of, payload_hash
from connector.s3.transfer import READ_CHUNK, collect

# The key of the presigned URL a bucket's prefix is read from (nothing is fetched).
_PROBE_KEY = "kubemq-s3-probe"
# Buckets whose URL prefix is kept.
_PREFIXES_KEPT = 1024
# A redirect, or a 400 naming the bucket's region: botocore's redirector knows what to do.
_REDIRECTS = frozenset({301, 302, 307, 308})
_CHECKSUM_HEADER = "x-amz-checksum-crc32"


class _Bucket(NamedTuple):
    """Where a bucket's keys are sent: botocore's URL prefix, what the signature reads of it, and its proxy."""

    prefix: str
    origin: Origin
    proxy: str | None
    proxy_headers: dict[str, str]


class _Operation(NamedTuple):
    model: Any  # botocore's OperationModel: its name and errors, for the retry conditions
    output: OutputHeaders
    # S3 may answer it 200 with an error document (not so an operation whose output is the body): botocore retries that as a 500.
    may_hide_errors: bool


def _operation(model: Any) -> _Operation:
    payload = model.output_shape.serialization.get("payload")
    whole_body = payload is not None and model.output_shape.members[payload].type_name in ("blob", "string")
    return _Operation(model, OutputHeaders(model.output_shape), not whole_body)


@dataclass(frozen=True)
class _Status:
    """The part of a response botocore's retry conditions read."""

    status_code: int


class DirectCalls:
    """GetObject and PutObject without aiobotocore's per-call machinery (see the module's docstring)."""

    def __init__(self, client: Any, credentials: Any, http: AIOHTTPSession, proxies: dict[str, str], max_attempts: int) -> None:
        self._client = client
        self._credentials = credentials
        self._http = http
        self._proxies = ProxyConfiguration(proxies=proxies)  # the same the HTTP session was given: who goes through which proxy
        self._signer = Signer(client.meta.region_name)
        model = client.meta.service_model
        self._get, self._put = (_operation(model.operation_model(name)) for name in ("GetObject", "PutObject"))
        # As botocore's default (response_checksum_validation "when_supported"): ask for the stored checksum, check the body against it.
        self._checksums: list[str] = []
        if client.meta.config.response_checksum_validation == "when_supported":
            request: dict[str, Any] = {"context": {}}
            resolve_response_checksum_algorithms(request, self._get.model, {"ChecksumMode": "ENABLED"})
            self._checksums = request["context"].get("checksum", {}).get("response_algorithms", [])
        self._retryable = StandardRetryConditions(max_attempts=max_attempts)
        # Standard mode's retry budget, as botocore keeps one per client: a store failing for long stops being retried.
        self._quota = RetryQuotaChecker(RetryQuota())
        self._backoff = ExponentialBackoff()
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    @classmethod
    def create(cls, client: Any, *, verify: bool | str, timeouts: tuple[float, float], pool_size: int, max_attempts: int) -> DirectCalls | None:
        """The direct calls of ``client``, or None when its credentials cannot be reached (then every call takes aiobotocore's way)."""
        credentials = client_credentials(client)
        if credentials is None or not hasattr(credentials, "get_frozen_credentials"):
            return None
        proxies = get_environ_proxies(client.meta.endpoint_url)
        http = AIOHTTPSession(verify=verify, proxies=proxies, timeout=timeouts, max_pool_connections=pool_size)
        return cls(client, credentials, http, proxies, max_attempts)

    async def close(self) -> None:
        await self._http.close()

    async def get_object(self, bucket: str, key: str, *, byte_range: str | None, version_id: str | None) -> tuple[dict[str, Any], Callable[[int | None], Awaitable[bytearray]]] | None:
        """GetObject's output, and what reads its body (once): ``read(most)``, as ``transfer.read_body`` reads aiobotocore's."""
        if tracing.active() is not None:
            return None
        where = await self._bucket(bucket)
        if where is None:
            return None
        query = "" if version_id is None else percent_encode_sequence({"versionId": version_id})
        headers = {"Range": byte_range} if byte_range is not None else {}
        if self._checksums:
            headers["x-amz-checksum-mode"] = "ENABLED"
        answer = await self._send("GET", where, percent_encode(key, safe="/~"), query, headers, b"", self._get)
        if answer is None:
            return None
        output, response, url = answer
        received = output["ResponseMetadata"]["HTTPHeaders"]
        return output, functools.partial(_read, response, received.get("content-length"), url=url, checksum=self._stored_checksum(received))

    def _stored_checksum(self, headers: dict[str, str]) -> tuple[str, str] | None:
        """The algorithm and value the body is checked against, as botocore picks them (a part-derived ``...-N`` one is skipped)."""
        for algorithm in self._checksums:
            value = headers.get(f"x-amz-checksum-{algorithm}")
            if value is not None and "-" not in value:
                return algorithm, value
        return None

    async def put_object(self, bucket: str, key: str, body: bytes | bytearray | memoryview) -> dict[str, Any] | None:
        """PutObject of ``body`` with nothing else asked: no content type, metadata, encryption or digests."""
        if tracing.active() is not None:
            return None
        where = await self._bucket(bucket)
        if where is None:
            return None
        payload = body if isinstance(body, (bytes, bytearray)) else bytes(body)
        headers = {_CHECKSUM_HEADER: base64.b64encode(zlib.crc32(payload).to_bytes(4, "big")).decode()}
        answer = await self._send("PUT", where, percent_encode(key, safe="/~"), "", headers, payload, self._put)
        return None if answer is None else answer[0]

    async def _bucket(self, bucket: str) -> _Bucket | None:
        """Where botocore sends a key of ``bucket``: ``scheme://host/`` and, in path style, the bucket."""
        where = self._buckets.get(bucket)
        if where is not None:
            self._buckets.move_to_end(bucket)
            return where
        try:
            url: str = await self._client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": _PROBE_KEY}, ExpiresIn=60)
        except Exception:  # noqa: BLE001 - a name botocore cannot address: its own call says why, in its words
            return None
        base = url.split("?", 1)[0]
        if not base.endswith("/" + _PROBE_KEY):
            return None
        prefix = base[: -len(_PROBE_KEY)]
        proxy_headers = self._proxies.proxy_headers_for(prefix)
        if ensure_boolean(os.environ.get("BOTO_EXPERIMENTAL__ADD_PROXY_HOST_HEADER", "")):
            proxy_headers["host"] = urlsplit(prefix).hostname
        where = self._buckets[bucket] = _Bucket(prefix, origin_of(prefix), self._proxies.proxy_url_for(prefix), proxy_headers)
        if len(self._buckets) > _PREFIXES_KEPT:
            self._buckets.popitem(last=False)
        return where

    async def _send(
        self, method: str, where: _Bucket, path: str, query: str, headers: dict[str, str], body: bytes | bytearray, operation: _Operation
    ) -> tuple[dict[str, Any], aiohttp.ClientResponse, str] | None:
        """One call with botocore's standard retries until its headers: the parsed output, the response and its URL, or None for a redirect.

        A GET's body is left to read: one that breaks off is fetched again by
        the caller (``items.py``), as on aiobotocore's way.
        """
        url = where.prefix + path + ("?" + query if query else "")
        content_hash = payload_hash(where.origin, body, checksum_header=_CHECKSUM_HEADER in headers)
        attempt = 1
        spent: dict[str, Any] = {}  # the retry budget this call took, given back when it succeeds
        while True:
            signed = self._signer.sign(method, where.origin, path, query, headers, content_hash, await self._credentials.get_frozen_credentials())
            if body or method != "GET":
                signed["Content-Length"] = str(len(body))
            signed["Accept-Encoding"] = "identity"
            content = b""  # a GET's body that is the object is left to read
            try:
                session = await aiohttp_session(self._http, where.proxy)  # made on first use, its TLS set up then
                response = await session.request(method, URL(url, encoded=True), headers=signed, data=body or None, proxy=where.proxy, proxy_headers=where.proxy_headers)
                received = {name.decode().lower(): value.decode() for name, value in response.raw_headers}
                if response.status >= 300 or method != "GET":
                    content = await response.read()
            except (asyncio.CancelledError, FutureCancelled):
                raise
            except Exception as exc:
                error = _botocore_error(exc, url, where.proxy)
                if not self._retry(attempt, operation, None, None, error, spent):
                    raise error from exc
                attempt = await self._next_attempt(attempt)
                continue
            status = response.status
            if status == 200 and operation.may_hide_errors and content and _error_document(content):
                status = 500
            if status in _REDIRECTS or (status == 400 and "x-amz-bucket-region" in received):
                return None
            if status >= 300:
                parsed = operation.output.parse(status, received, content)
                if self._retry(attempt, operation, parsed, _Status(status), None, spent):
                    attempt = await self._next_attempt(attempt)
                    continue
                parsed.setdefault("ResponseMetadata", {})["RetryAttempts"] = attempt - 1
                code = parsed.get("Error", {}).get("Code", "")
                raise self._client.exceptions.from_code(code)(parsed, operation.model.name)
            try:
                output = operation.output.read(status, received)
            except BaseException:  # headers botocore cannot read either (a Content-Length of "abc"): the body is never read
                response.close()
                raise
            output["ResponseMetadata"]["RetryAttempts"] = attempt - 1
            self._quota.release_retry_quota(spent, _Status(status))
            return output, response, url

    async def _next_attempt(self, attempt: int) -> int:
        """Wait botocore's standard backoff after attempt number ``attempt``; the next one's number."""
        await asyncio.sleep(self._backoff.delay_amount(RetryContext(attempt_number=attempt)))
        return attempt + 1

    def _retry(self, attempt: int, operation: _Operation, parsed: dict[str, Any] | None, response: _Status | None, exc: Exception | None, spent: dict[str, Any]) -> bool:
        """Whether botocore's standard mode retries this attempt: a retryable failure, and room left in the retry budget."""
        context = RetryContext(attempt_number=attempt, operation_model=operation.model, parsed_response=parsed, http_response=response, caught_exception=exc, request_context=spent)
        return bool(self._retryable.is_retryable(context)) and bool(self._quota.acquire_retry_quota(context))


def _error_document(body: bytes) -> bool:
    """An S3 error in a 200's body, or a body cut off mid-document: what botocore retries as a 500."""
    parser = ElementTree.XMLParser(target=ElementTree.TreeBuilder(), encoding="utf-8")  # noqa: S314 - the store's own answer, read as botocore reads it
    try:
        parser.feed(body)
        root = parser.close()
    except ElementTree.ParseError:
        return True
    return bool(root.tag == "Error")


def _botocore_error(exc: Exception, url: str, proxy: str | None) -> Any:  # botocore's exceptions are untyped
    """The botocore exception aiobotocore's HTTP session raises for ``exc``, which retries and replies read."""
    if isinstance(exc, aiohttp.ClientSSLError):
        return SSLError(endpoint_url=url, error=exc)
    if isinstance(exc, (aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError)):
        return ProxyConnectionError(proxy_url=mask_proxy_url(proxy), error=exc)
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.http_exceptions.BadStatusLine)):
        return ConnectionClosedError(error=exc, request=None, endpoint_url=url)
    if isinstance(exc, aiohttp.ServerTimeoutError):
        if str(exc).lower().startswith("connect"):
            return ConnectTimeoutError(endpoint_url=url, error=exc)
        return ReadTimeoutError(endpoint_url=url, error=exc)
    if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ClientConnectionError, socket.gaierror)):
        return EndpointConnectionError(endpoint_url=url, error=exc)
    if isinstance(exc, TimeoutError):
        return ReadTimeoutError(endpoint_url=url, error=exc)
    return HTTPClientError(error=exc)


async def _read(response: aiohttp.ClientResponse, length: str | None, most: int | None = None, *, url: str, checksum: tuple[str, str] | None) -> bytearray:
    """The whole body of a GetObject response, as ``transfer.collect`` reads one, checked against the stored checksum.

    A stall past the read timeout is botocore's ``ReadTimeoutError``, as on
    aiobotocore's way; a connection left mid-body is closed, not pooled. A
    body that does not match its checksum fails with botocore's words.
    """
    try:
        body = await collect(response.content.iter_chunked(READ_CHUNK), int(length) if length is not None else None, most)
        if checksum is not None:
            algorithm, expected = checksum
            calculated = checksum_class(algorithm)()
            calculated.update(body)
            if calculated.digest() != base64.b64decode(expected):
                raise FlexibleChecksumError(error_msg=f"Expected checksum {expected} did not match calculated checksum: {calculated.b64digest()}")
        return body
    except TimeoutError as exc:
        raise ReadTimeoutError(endpoint_url=url, error=exc) from exc
    finally:
        if response.content.at_eof():
            response.release()
        else:
            response.close()
