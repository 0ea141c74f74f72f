"""Queries and commands through the fresh_broker, with the official SDK on both sides."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from kubemq import CommandMessage, KubeMQTimeoutError, QueryMessage, QueryReceived, QueryResponse
from kubemq.grpc import kubemq_pb2 as pb

from devbroker import EmbeddedBroker
from tests.broker.support import cq_client, echo_reply, internal_error, responder


async def test_query_round_trip(fresh_broker: EmbeddedBroker) -> None:
    async with responder(fresh_broker, "responder", "q.demo", echo_reply("ok")):
        await fresh_broker.wait_for_subscribers("q.demo")
        async with cq_client(fresh_broker.address, "sender") as sender:
            response = await sender.send_query(QueryMessage(channel="q.demo", body=b"hello", metadata="m", tags={"k": "v"}, timeout_in_seconds=5))
    assert response.is_executed
    assert response.body == b"echo:hello"
    assert response.metadata == "ok"
    assert response.client_id == "responder"


async def test_query_reaches_subscriber_with_inbox_and_request_fields(fresh_broker: EmbeddedBroker) -> None:
    seen: list[QueryReceived] = []

    async def record(client, received) -> None:
        seen.append(received)
        await client.send_response(QueryResponse(query_received=received, is_executed=True, body=b"x"))

    async with responder(fresh_broker, "responder", "q.fields", record):
        await fresh_broker.wait_for_subscribers("q.fields")
        async with cq_client(fresh_broker.address, "sender") as sender:
            await sender.send_query(QueryMessage(channel="q.fields", body=b"b", metadata="m", tags={"t": "1"}, timeout_in_seconds=5))
    (received,) = seen
    assert received.reply_channel.startswith("_INBOX.")
    assert received.from_client_id == "sender"
    assert (received.channel, received.body, received.metadata) == ("q.fields", b"b", "m")
    assert received.tags["t"] == "1"
    assert received.id


async def test_command_response_loses_body_and_metadata(fresh_broker: EmbeddedBroker) -> None:
    async with responder(fresh_broker, "responder", "c.demo", echo_reply("meta"), kind="commands"):
        await fresh_broker.wait_for_subscribers("c.demo", kind="commands")
        async with cq_client(fresh_broker.address, "sender") as sender:
            response = await sender.send_command(CommandMessage(channel="c.demo", body=b"do", timeout_in_seconds=5))
    assert response.is_executed
    assert response.client_id == "responder"
    assert response.error == ""
    assert response.body == b""
    assert response.metadata == ""


async def test_commands_and_queries_are_separate_namespaces(fresh_broker: EmbeddedBroker, stub) -> None:
    async with responder(fresh_broker, "responder", "shared", echo_reply("q")):
        await fresh_broker.wait_for_subscribers("shared")
        request = pb.Request(RequestTypeData=pb.Request.Command, ClientID="c", Channel="shared", Body=b"x", Timeout=300)
        error = await internal_error(stub.SendRequest(request))
    assert error.details() == "Error 301: timeout for request message"


async def test_no_group_subscribers_each_get_a_copy_and_groups_get_one(fresh_broker: EmbeddedBroker) -> None:
    received: Counter[str] = Counter()

    def counting(tag: str):
        reply = echo_reply(tag)

        async def count_and_reply(client, query) -> None:
            received[tag] += 1
            await reply(client, query)

        return count_and_reply

    async with (
        responder(fresh_broker, "plain-1", "fan", counting("plain-1")),
        responder(fresh_broker, "plain-2", "fan", counting("plain-2")),
        responder(fresh_broker, "g-1", "fan", counting("g-1"), group="g"),
        responder(fresh_broker, "g-2", "fan", counting("g-2"), group="g"),
    ):
        await fresh_broker.wait_for_subscribers("fan", 4)
        async with cq_client(fresh_broker.address, "sender") as sender:
            for _ in range(20):
                await sender.send_query(QueryMessage(channel="fan", body=b"x", timeout_in_seconds=5))
        await asyncio.sleep(0.1)  # let the losing replies land
    assert received["plain-1"] == 20
    assert received["plain-2"] == 20
    assert received["g-1"] + received["g-2"] == 20
    assert received["g-1"] > 0 and received["g-2"] > 0


async def test_first_reply_wins_and_late_replies_are_accepted(fresh_broker: EmbeddedBroker) -> None:
    late_reply_sent = asyncio.Event()

    async def slow(client, query) -> None:
        await asyncio.sleep(0.3)
        await client.send_response(QueryResponse(query_received=query, is_executed=True, body=b"slow"))
        late_reply_sent.set()  # reached only if the broker accepted the late reply

    async with (
        responder(fresh_broker, "fast", "race", echo_reply("fast")),
        responder(fresh_broker, "slow", "race", slow),
    ):
        await fresh_broker.wait_for_subscribers("race", 2)
        async with cq_client(fresh_broker.address, "sender") as sender:
            response = await sender.send_query(QueryMessage(channel="race", body=b"x", timeout_in_seconds=5))
        await asyncio.wait_for(late_reply_sent.wait(), 5)
    assert response.body == b"echo:x"
    assert response.client_id == "fast"


async def test_wildcard_subscription_receives_matching_channels(fresh_broker: EmbeddedBroker, stub) -> None:
    subscription = stub.SubscribeToRequests(pb.Subscribe(SubscribeTypeData=pb.Subscribe.Queries, ClientID="wild", Channel="orders.>"))
    await fresh_broker.wait_for_subscribers("orders.eu.new")
    pending = asyncio.ensure_future(stub.SendRequest(pb.Request(RequestTypeData=pb.Request.Query, ClientID="s", Channel="orders.eu.new", Body=b"x", Timeout=5000)))
    request = await subscription.read()
    assert request.Channel == "orders.eu.new"
    await stub.SendResponse(pb.Response(ClientID="wild", RequestID=request.RequestID, ReplyChannel=request.ReplyChannel, Body=b"hit"))
    response = await pending
    assert response.Body == b"hit"
    assert response.ReplyChannel == ""
    subscription.cancel()


async def test_no_subscriber_waits_full_timeout_then_error_301(stub) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    error = await internal_error(stub.SendRequest(pb.Request(RequestTypeData=pb.Request.Query, ClientID="s", Channel="nobody", Body=b"x", Timeout=400)))
    assert loop.time() - started >= 0.39
    assert error.details() == "Error 301: timeout for request message"


async def test_sdk_sees_client_side_timeout_without_subscriber(fresh_broker: EmbeddedBroker) -> None:
    async with cq_client(fresh_broker.address, "sender") as sender:
        with pytest.raises(KubeMQTimeoutError):
            await sender.send_query(QueryMessage(channel="nobody", body=b"x", timeout_in_seconds=1))
