"""A reply the source serializes itself (its body joined in once) reads back as the SDK's own encoding of it."""

from __future__ import annotations

import os

import pytest
from google.protobuf.message import Message
from kubemq import EventMessage, EventStoreMessage, QueryReceived, QueryResponse, QueueMessage

from bindings.kubemq.sdk import serialized_reply, serialized_response
from bindings.wire import Response

TAGS = {"request_id": "r-1", "traceparent": "00-abc-def-01"}
HEADERS = {
    "query reply": lambda: QueryResponse(query_received=QueryReceived(id="r-1", from_client_id="sender", channel="q", reply_channel="_INBOX.r-1"), is_executed=True, tags=TAGS).encode("connector"),
    "event": lambda: EventMessage(channel="resp", tags=TAGS).encode("connector"),
    "events-store message": lambda: EventStoreMessage(channel="resp", tags=TAGS).encode("connector"),
    "queue message": lambda: QueueMessage(channel="resp", tags=TAGS).encode_message("connector"),
}


def with_body(header: Message, body: bytes) -> Message:
    expected = type(header)()
    expected.CopyFrom(header)
    expected.Body = body
    return expected


@pytest.mark.parametrize("kind", HEADERS)
@pytest.mark.parametrize("size", [0, 1, 127, 128, 16383, 16384, 2**21 + 5])  # every varint length of the body's size up to 3 bytes
def test_the_reply_reads_back_as_the_sdk_encodes_it(kind: str, size: int) -> None:
    header, body = HEADERS[kind](), os.urandom(size)
    pieces = [body[: size // 3], body[size // 3 : size // 2], body[size // 2 :]]
    assert type(header).FromString(serialized_response(header, pieces)) == with_body(header, body)


@pytest.mark.parametrize("kind", HEADERS)
def test_a_serialized_reply_carries_the_response_json_and_drops_its_data(kind: str) -> None:
    header, response = HEADERS[kind](), Response.ok(os.urandom(1000), key="k")
    body = response.to_json()
    wire, body_size = serialized_reply(header, response)
    assert type(header).FromString(wire) == with_body(header, body)
    assert (body_size, wire[-body_size:], response.data) == (len(body), body, None)
