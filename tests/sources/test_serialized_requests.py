"""``sdk.send_serialized_request``, the ``send`` command line's queries and commands, against the embedded broker.

What the broker receives is what the SDK's ``send_query``/``send_command``
sends for the same request, field by field, and what
comes back, or goes wrong, comes back or goes wrong as it does from the SDK.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from kubemq import AsyncCQClient, CommandMessage, KubeMQError, KubeMQTimeoutError, KubeMQValidationError, QueryMessage
from kubemq.grpc import kubemq_pb2 as pb

from bindings.kubemq import client, sdk
from bindings.limits import MIB
from bindings.wire import Request, Response
from devbroker import EmbeddedBroker
from devbroker.request_reply import RequestReplyExchange
from tests.sources.support import copied, options

REPLY = Response.ok(b"stored", etag="e-1")


@pytest.fixture
def broker_received(monkeypatch: pytest.MonkeyPatch) -> list[pb.Request]:
    """Every query and command the broker is sent from now on, as it decoded it; each is answered at once with ``REPLY``."""
    received: list[pb.Request] = []

    async def answering(exchange: RequestReplyExchange, request: pb.Request) -> pb.Response:
        received.append(copied(request))
        return pb.Response(ClientID="responder", RequestID=request.RequestID, Executed=True, Body=REPLY.to_json(), Metadata="m", Tags={"t": "v"})

    monkeypatch.setattr(RequestReplyExchange, "request", answering)
    return received


def large_request() -> Request:
    """An upload part: its body's size takes a 4-byte varint."""
    return Request(metadata={"method": "upload_part", "part_number": "1"}, data=os.urandom(3 * MIB))


def without_id(request: pb.Request) -> pb.Request:
    """The request with its id cleared (the SDK makes one per message), once checked to be there."""
    assert request.RequestID
    request.ClearField("RequestID")
    return request


async def test_a_query_reaches_the_broker_as_send_query_sends_it_and_its_reply_reads_the_same(broker: EmbeddedBroker, broker_received: list[pb.Request]) -> None:
    request = large_request()
    async with AsyncCQClient(**client.Connection(broker.address, client_id="test-send").options()) as cq:
        by_sdk = await cq.send_query(QueryMessage(channel="req.q", body=request.to_json(), timeout_in_seconds=7))
    response = await client.query(broker.address, "req.q", request, timeout=7, client_id="test-send")
    sent_by_sdk, serialized = broker_received
    assert without_id(serialized) == without_id(sent_by_sdk)
    assert len(serialized.Body) > 4 * MIB
    assert response == Response.from_json(by_sdk.body) == REPLY


@pytest.mark.parametrize(
    "message",
    [
        QueryMessage(channel="req.q", metadata="meta", body=b"{}", tags={"a": "b"}, timeout_in_seconds=3, cache_key="k", cache_ttl_in_seconds=60),
        CommandMessage(channel="req.c", metadata="meta", body=b"{}", tags={"a": "b"}, timeout_in_seconds=3),
    ],
    ids=["query", "command"],
)
async def test_every_field_the_sdk_sets_is_sent_and_the_reply_decodes_as_the_sdks(broker: EmbeddedBroker, broker_received: list[pb.Request], message: Any) -> None:
    async with AsyncCQClient(**options(broker, "test-fields")) as cq:
        public = cq.send_query if isinstance(message, QueryMessage) else cq.send_command
        by_sdk = await public(message)
        serialized = await sdk.send_serialized_request(cq, message)
    sent_by_sdk, received = broker_received
    assert received == sent_by_sdk  # the same message, so the same id too
    assert type(serialized) is type(by_sdk)
    assert vars(serialized) == vars(by_sdk)


async def test_a_command_answers_as_before(broker: EmbeddedBroker, broker_received: list[pb.Request]) -> None:
    response = await client.command(client.Connection(broker.address), "req.c", Request(metadata={"method": "delete_item"}), timeout=5)
    assert response == Response(is_error=False, error="")
    [received] = broker_received
    assert (received.RequestTypeData, received.Timeout, received.Body) == (pb.Request.Command, 5000, Request(metadata={"method": "delete_item"}).to_json())


async def failure(send: Any) -> KubeMQError:
    with pytest.raises(KubeMQError) as raised:
        await send
    return raised.value


async def test_nobody_subscribed_fails_as_send_query_fails(broker: EmbeddedBroker) -> None:
    async with AsyncCQClient(**options(broker, "test-nobody")) as cq:
        by_sdk = await failure(cq.send_query(QueryMessage(channel="req.nobody", body=b"{}", timeout_in_seconds=1)))
        serialized = await failure(sdk.send_serialized_request(cq, QueryMessage(channel="req.nobody", body=b"{}", timeout_in_seconds=1)))
    assert (type(serialized), serialized.message, serialized.code) == (type(by_sdk), by_sdk.message, by_sdk.code)


async def test_a_reply_that_never_comes_times_out_as_send_query_does(broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch) -> None:
    async def silent(exchange: RequestReplyExchange, request: pb.Request) -> pb.Response:
        await asyncio.sleep(30)
        raise AssertionError("not reached")

    monkeypatch.setattr(RequestReplyExchange, "request", silent)
    async with AsyncCQClient(**options(broker, "test-silent")) as cq:
        by_sdk = await failure(cq.send_query(QueryMessage(channel="req.silent", body=b"{}", timeout_in_seconds=1)))
        serialized = await failure(sdk.send_serialized_request(cq, QueryMessage(channel="req.silent", body=b"{}", timeout_in_seconds=1)))
    assert isinstance(serialized, KubeMQTimeoutError) and type(serialized) is type(by_sdk)
    assert serialized.message == by_sdk.message == "Request timed out after 1s"


async def test_a_body_over_max_send_size_is_refused_before_sending_as_by_send_query(broker: EmbeddedBroker, broker_received: list[pb.Request]) -> None:
    async with AsyncCQClient(**{**options(broker, "test-large"), "max_send_size": 1024}) as cq:
        by_sdk = await failure(cq.send_query(QueryMessage(channel="req.q", body=bytes(2048), timeout_in_seconds=1)))
        serialized = await failure(sdk.send_serialized_request(cq, QueryMessage(channel="req.q", body=bytes(2048), timeout_in_seconds=1)))
    assert isinstance(serialized, KubeMQValidationError) and serialized.message == by_sdk.message
    assert broker_received == []
