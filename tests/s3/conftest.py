"""Target fixtures for the S3 tests: an ``S3Target`` on the session's SeaweedFS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest_asyncio

from connector.s3 import S3Target
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


@pytest_asyncio.fixture
async def target(make_target: MakeTarget) -> S3Target:
    return await make_target()
