"""Start/stop, restart on the same port, Ping, auth and message size limits."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
import sys
from pathlib import Path

import grpc
import pytest
from kubemq import KubeMQAuthenticationError, QueryMessage, QueryResponse
from kubemq.grpc import kubemq_pb2 as pb
from kubemq.grpc import kubemq_pb2_grpc

from devbroker import EmbeddedBroker
from tests.broker.support import cq_client, echo_reply, responder

HUNDRED_MIB = 100 * 1024 * 1024
PROJECT_ROOT = Path(__file__).resolve().parents[2]


async def test_ping_reports_a_supported_version_and_sane_times(stub) -> None:
    result = await stub.Ping(pb.Empty())
    major, minor, _ = (int(part) for part in result.Version.split("."))
    assert (2, 4) <= (major, minor) <= (2, 6)
    assert result.ServerStartTime > 0
    assert result.ServerUpTimeSeconds >= 0
    assert result.Host


async def test_restart_on_the_same_port_serves_new_clients() -> None:
    first = EmbeddedBroker()
    await first.start()
    port = first.port
    await first.stop()
    await first.stop()  # idempotent
    async with EmbeddedBroker(port=port) as second:
        assert second.address == f"127.0.0.1:{port}"
        async with responder(second, "responder", "q", echo_reply("again")):
            await second.wait_for_subscribers("q")
            async with cq_client(second.address, "sender") as sender:
                response = await sender.send_query(QueryMessage(channel="q", body=b"x", timeout_in_seconds=5))
    assert response.metadata == "again"


async def test_busy_port_is_refused() -> None:
    async with EmbeddedBroker() as running:
        with pytest.raises(RuntimeError):
            await EmbeddedBroker(port=running.port).start()


async def test_stop_ends_subscriber_streams_as_unavailable() -> None:
    fresh_broker = EmbeddedBroker()
    await fresh_broker.start()
    try:
        async with grpc.aio.insecure_channel(fresh_broker.address) as channel:
            stream = kubemq_pb2_grpc.kubemqStub(channel).SubscribeToRequests(pb.Subscribe(SubscribeTypeData=pb.Subscribe.Queries, ClientID="c", Channel="q"))
            await fresh_broker.wait_for_subscribers("q")
            await asyncio.wait_for(fresh_broker.stop(grace=5), 2)  # must not wait for the open stream
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stream.read()
    finally:
        await fresh_broker.stop()
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert caught.value.details() == "Error 409: server is in shutdown mode"


async def test_wait_for_subscribers_times_out(fresh_broker: EmbeddedBroker) -> None:
    with pytest.raises(TimeoutError):
        await fresh_broker.wait_for_subscribers("nobody", kind="commands", timeout=0.05)
    with pytest.raises(ValueError):
        await fresh_broker.wait_for_subscribers("x", kind="topics")


async def test_auth_token_accepted_and_refused() -> None:
    async with EmbeddedBroker(auth_token="s3cret") as fresh_broker, responder(fresh_broker, "responder", "q", echo_reply("authed"), token="s3cret"):
        await fresh_broker.wait_for_subscribers("q")
        async with cq_client(fresh_broker.address, "good", auth_token="s3cret") as good:
            response = await good.send_query(QueryMessage(channel="q", body=b"x", timeout_in_seconds=5))
        assert response.metadata == "authed"
        # SDK 4.1.5 sends no token with Ping, so connect() succeeds; the first real call fails.
        async with cq_client(fresh_broker.address, "bad", auth_token="wrong") as bad:
            with pytest.raises(KubeMQAuthenticationError, match="Error 421: authentication verification failed, "):
                await bad.send_query(QueryMessage(channel="q", body=b"x", timeout_in_seconds=5))
        async with cq_client(fresh_broker.address, "anonymous") as anonymous:
            with pytest.raises(KubeMQAuthenticationError):
                await anonymous.send_query(QueryMessage(channel="q", body=b"x", timeout_in_seconds=5))


async def test_auth_is_checked_on_ping_when_a_token_is_sent() -> None:
    async with EmbeddedBroker(auth_token="s3cret") as fresh_broker, grpc.aio.insecure_channel(fresh_broker.address) as channel:
        stub = kubemq_pb2_grpc.kubemqStub(channel)
        assert (await stub.Ping(pb.Empty(), metadata=(("authorization", "s3cret"),))).Version
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Ping(pb.Empty(), metadata=(("authorization", "wrong"),))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.details() == "Error 421: authentication verification failed, invalid authorization token"


async def test_sixty_mib_body_passes_through(fresh_broker: EmbeddedBroker) -> None:
    body = bytes(range(256)) * (60 * 1024 * 1024 // 256)
    limits = dict(max_send_size=HUNDRED_MIB, max_receive_size=HUNDRED_MIB)

    async def digest(client, query) -> None:
        # Reply small: the 60 MiB already crossed the broker both ways (in from sender, out to us).
        await client.send_response(QueryResponse(query_received=query, is_executed=True, body=hashlib.sha256(query.body).digest()))

    async with responder(fresh_broker, "responder", "big", digest, **limits):
        await fresh_broker.wait_for_subscribers("big")
        async with cq_client(fresh_broker.address, "sender", **limits) as sender:
            response = await sender.send_query(QueryMessage(channel="big", body=body, timeout_in_seconds=30))
    assert response.body == hashlib.sha256(body).digest()


async def test_serve_forever_stops_cleanly_on_sigterm() -> None:
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        f"import asyncio; from devbroker import serve_forever; asyncio.run(serve_forever('127.0.0.1', {port}, None))",
        cwd=str(PROJECT_ROOT),
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = kubemq_pb2_grpc.kubemqStub(channel)
            result = await stub.Ping(pb.Empty(), wait_for_ready=True, timeout=20)
        assert result.Version
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    async with EmbeddedBroker(port=port):  # the port was released
        pass


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
