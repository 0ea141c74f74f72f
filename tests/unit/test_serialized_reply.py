"""A query reply the source serializes itself (its body joined in once) reads back as the SDK's own encoding of it."""

from __future__ import annotations

import os

import pytest
from kubemq import QueryReceived, QueryResponse
from kubemq.grpc import kubemq_pb2 as pb

from bindings.sources.sdk import serialized_response


@pytest.mark.parametrize("size", [0, 1, 127, 128, 16383, 16384, 2**21 + 5])  # every varint length of the body's size up to 3 bytes
def test_the_reply_reads_back_as_the_sdk_encodes_it(size: int) -> None:
    body = os.urandom(size)
    received = QueryReceived(id="r-1", from_client_id="sender", channel="q", reply_channel="_INBOX.r-1")
    header = QueryResponse(query_received=received, is_executed=True, tags={"traceparent": "00-abc-def-01"}).encode("connector")
    expected = pb.Response()
    expected.CopyFrom(header)
    expected.Body = body
    pieces = [body[: size // 3], body[size // 3 : size // 2], body[size // 2 :]]
    assert pb.Response.FromString(serialized_response(header, pieces)) == expected
