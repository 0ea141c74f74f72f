"""The private parts of botocore and aiobotocore the S3 kinds use, reached only through here and checked at start-up.

botocore keeps three things private that the connector needs: a client's
credentials object (``_get_credentials``), which the direct GetObject and
PutObject calls sign with, the checksum classes by algorithm
(``httpchecksum._CHECKSUM_CLS``), which the direct GetObject validates a body
with as botocore does, and a refreshable credential's expiry
(``_expiry_time``), which the health of temporary credentials reports.
aiobotocore keeps one: the aiohttp session its HTTP session class makes per
proxy (``_get_session``), with the client's TLS, pool and timeouts, which the
direct calls send on. ``BOTOCORE_PARTS`` and ``AIOBOTOCORE_PARTS`` declare
them; the runtime checks them before it starts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiobotocore.credentials import AioRefreshableCredentials
from aiobotocore.httpsession import AIOHTTPSession
from botocore import httpchecksum
from botocore.client import BaseClient

from bindings.internals import Part, PrivateParts, attribute


def client_credentials(client: Any) -> Any:
    """The credentials object ``client`` signs with (loaded lazily by botocore), or None."""
    get_credentials = getattr(client, "_get_credentials", None)
    return get_credentials() if callable(get_credentials) else None


def credentials_expiry(credentials: Any) -> datetime | None:
    """When refreshable credentials expire; None for static ones or when it cannot be told."""
    expiry = getattr(credentials, "_expiry_time", None)
    return expiry if isinstance(expiry, datetime) and expiry.tzinfo is not None else None


def checksum_class(algorithm: str) -> Any:
    """botocore's checksum class for a response algorithm (``crc32``, ``sha256`` ...): ``update``, ``digest``, ``b64digest``."""
    return httpchecksum._CHECKSUM_CLS[algorithm]


async def aiohttp_session(http: AIOHTTPSession, proxy: str | None) -> aiohttp.ClientSession:
    """The aiohttp session ``http`` sends through ``proxy`` (None: none), made on first use as its own ``send`` makes it."""
    session: aiohttp.ClientSession = await http._get_session(proxy)
    return session


def _sample_refreshable() -> AioRefreshableCredentials:
    return AioRefreshableCredentials("key", "secret", None, datetime.now(UTC), _no_refresh, "check")


async def _no_refresh() -> dict[str, str]:
    return {}


BOTOCORE_PARTS = PrivateParts(
    library="botocore",
    supported=">=1.40.46,<1.40.62",
    adapter="connector/s3/internals.py",
    parts=(
        attribute(BaseClient, "_get_credentials"),
        attribute(httpchecksum, "_CHECKSUM_CLS", label="botocore.httpchecksum._CHECKSUM_CLS"),
        Part("AioRefreshableCredentials()._expiry_time", lambda: hasattr(_sample_refreshable(), "_expiry_time")),
    ),
)

AIOBOTOCORE_PARTS = PrivateParts(
    library="aiobotocore",
    supported="==2.25.1",
    adapter="connector/s3/internals.py",
    parts=(attribute(AIOHTTPSession, "_get_session"),),
)
