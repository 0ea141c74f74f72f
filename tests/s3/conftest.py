"""Target fixtures for the S3 tests: an ``S3Target`` on the session's SeaweedFS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest_asyncio
from aiohttp import web

from connector.s3 import EmbeddedS3, S3Target
from tests.fixtures.s3 import seaweed_properties
from tests.s3.support import open_target

MakeTarget = Callable[..., Awaitable[S3Target]]


@pytest_asyncio.fixture
async def make_target(s3_properties: dict[str, str]) -> AsyncIterator[MakeTarget]:
    """Factory: a target on SeaweedFS with property overrides; all are closed after the test."""
    opened: list[S3Target] = []

    async def make(**overrides: Any) -> S3Target:
        target = await open_target({**s3_properties, **overrides})
        opened.append(target)
        return target

    yield make
    for target in opened:
        await target.close()


@pytest_asyncio.fixture(scope="session")
async def target(seaweed: EmbeddedS3) -> AsyncIterator[S3Target]:
    """One target on SeaweedFS with default properties, shared by the session (creating a client costs ~0.1 s)."""
    opened = await open_target(seaweed_properties(seaweed))
    yield opened
    await opened.close()


@dataclass
class StubS3:
    """A scripted HTTP server standing in for S3 where SeaweedFS cannot show something (request bodies, 5xx)."""

    endpoint: str = ""
    requests: list[tuple[str, str, bytes]] = field(default_factory=list)
    replies: list[tuple[int, bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path_qs, await request.read()))
        status, payload = self.replies.pop(0) if self.replies else (200, b"")
        return web.Response(status=status, body=payload, content_type="application/xml", headers={"x-amz-request-id": f"R{len(self.requests)}"})


@pytest_asyncio.fixture
async def stub_s3() -> AsyncIterator[StubS3]:
    stub = StubS3()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", stub.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    stub.endpoint = f"http://127.0.0.1:{port}"
    yield stub
    await runner.cleanup()
