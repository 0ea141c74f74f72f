"""SigV4 for the direct GetObject and PutObject: the signature botocore's ``S3SigV4Auth`` makes, for a tenth of its CPU.

botocore's signer serves every service and request shape: on each call it
copies the headers into case-insensitive dicts several times, splits the URL
four times and derives the signing key with four HMACs. The direct calls
send one shape (a few headers, a path already encoded, at most one query
parameter), so the host is read once per bucket and the key once a day.
``tests/s3/test_sigv4.py`` holds every header this makes to botocore's own
signer over generated keys, hosts, headers, queries and credentials.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any, NamedTuple
from urllib.parse import urlsplit

EMPTY_PAYLOAD = hashlib.sha256(b"").hexdigest()
# A body sent over HTTPS with a checksum header is not hashed (botocore's choice for streaming inputs).
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_ALGORITHM = "AWS4-HMAC-SHA256"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Origin(NamedTuple):
    """What a signature reads of a URL prefix (``scheme://host[:port]/path``), split once."""

    host: str  # the Host value botocore signs: lowercase, IPv6 in brackets, a port only when not the scheme's default
    path: str  # the prefix's path, as encoded
    https: bool


def origin_of(prefix: str) -> Origin:
    parts = urlsplit(prefix)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return Origin(host, parts.path, parts.scheme == "https")


def payload_hash(origin: Origin, body: bytes | bytearray, *, checksum_header: bool) -> str:
    """``X-Amz-Content-SHA256`` as botocore sets it for these calls: unsigned only over HTTPS with a checksum header."""
    if origin.https and checksum_header:
        return UNSIGNED_PAYLOAD
    return hashlib.sha256(body).hexdigest() if body else EMPTY_PAYLOAD


class Signer:
    """Signs requests for one region and service; the day's signing key is derived once per secret."""

    def __init__(self, region: str, service: str = "s3") -> None:
        self._scope_tail = f"/{region}/{service}/aws4_request"
        self._region = region.encode()
        self._service = service.encode()
        self._key: tuple[str, str, bytes] = ("", "", b"")

    def sign(self, method: str, origin: Origin, path: str, query: str, headers: dict[str, str], content_hash: str, credentials: Any, now: float | None = None) -> dict[str, str]:
        """``headers`` plus the date, token, content hash and ``Authorization`` headers, in botocore's order.

        ``path`` follows ``origin.path`` and is encoded already; ``query`` is
        the encoded query string without ``?``. ``credentials`` has
        ``access_key``, ``secret_key`` and ``token`` (botocore's frozen credentials).
        """
        timestamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        signed = dict(headers)
        signed["X-Amz-Date"] = timestamp
        if credentials.token:
            signed["X-Amz-Security-Token"] = credentials.token
        signed["X-Amz-Content-SHA256"] = content_hash
        canonical = {name.lower(): " ".join(value.split()) for name, value in signed.items()}
        canonical.setdefault("host", origin.host)
        names = sorted(canonical)
        signed_names = ";".join(names)
        request = "\n".join((method, origin.path + path, _canonical_query(query), "\n".join(f"{name}:{canonical[name]}" for name in names) + "\n", signed_names, content_hash))
        day = timestamp[:8]
        scope = day + self._scope_tail
        to_sign = f"{_ALGORITHM}\n{timestamp}\n{scope}\n{hashlib.sha256(request.encode()).hexdigest()}"
        signature = hmac.new(self._signing_key(credentials.secret_key, day), to_sign.encode(), hashlib.sha256).hexdigest()
        signed["Authorization"] = f"{_ALGORITHM} Credential={credentials.access_key}/{scope}, SignedHeaders={signed_names}, Signature={signature}"
        return signed

    def _signing_key(self, secret: str, day: str) -> bytes:
        cached_secret, cached_day, key = self._key
        if cached_secret != secret or cached_day != day:
            key = _hmac(f"AWS4{secret}".encode(), day.encode())
            for part in (self._region, self._service, b"aws4_request"):
                key = _hmac(key, part)
            self._key = (secret, day, key)
        return key


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _canonical_query(query: str) -> str:
    """The query's ``key=value`` pairs sorted, as they were encoded (botocore's reading of a URL's query)."""
    if not query:
        return ""
    pairs = sorted(pair.partition("=")[::2] for pair in query.split("&"))
    return "&".join(f"{key}={value}" for key, value in pairs)
