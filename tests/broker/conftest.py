"""Fixtures for the embedded broker tests: a fresh broker per test and SDK clients on it."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import grpc
import pytest
from kubemq.grpc import kubemq_pb2_grpc

from devbroker import EmbeddedBroker

logging.getLogger("kubemq").setLevel(logging.ERROR)


@pytest.fixture
async def fresh_broker() -> AsyncIterator[EmbeddedBroker]:
    """A broker of its own per test: these tests look at its whole state (queues, subscriptions, shutdown)."""
    async with EmbeddedBroker() as running:
        yield running


@pytest.fixture
async def stub(fresh_broker: EmbeddedBroker) -> AsyncIterator[kubemq_pb2_grpc.kubemqStub]:
    """A raw stub, to see the server's statuses without the SDK's client-side checks."""
    async with grpc.aio.insecure_channel(fresh_broker.address) as channel:
        yield kubemq_pb2_grpc.kubemqStub(channel)
