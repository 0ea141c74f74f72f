"""Exact server error strings and check order, seen through a raw stub (the SDK validates client-side first)."""

from __future__ import annotations

import pytest
from kubemq.grpc import kubemq_pb2 as pb

from tests.broker.support import internal_error


def _request(**overrides: object) -> pb.Request:
    fields: dict[str, object] = dict(RequestTypeData=pb.Request.Query, ClientID="c", Channel="ch", Body=b"x", Timeout=1000)
    fields.update(overrides)
    return pb.Request(**fields)


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (pb.Request(), "Error 206: invalid request type"),
        (_request(RequestTypeData=pb.Request.RequestTypeUnknown), "Error 206: invalid request type"),
        (_request(ClientID="", Channel=""), "Error 101: invalid clientID value, cannot be empty"),
        (_request(Channel="", Timeout=0), "Error 102: invalid channel value, cannot be empty"),
        (_request(Channel="a b."), "Error 119: invalid channel value, cannot end with `.`"),
        (_request(Channel="a b*"), "Error 108: invalid channel value, no white spaces are allowed"),
        (_request(Channel="a.*"), "Error 107: invalid channel value, no wildcards are allowed"),
        (_request(Channel="a.>", Timeout=0), "Error 107: invalid channel value, no wildcards are allowed"),
        (_request(Timeout=0, Body=b""), "Error 109: invalid set timeout value, cannot be 0 or negative"),
        (_request(Timeout=-5), "Error 109: invalid set timeout value, cannot be 0 or negative"),
        (_request(Body=b"", CacheKey="k"), "Error 115: invalid request, cannot be empty"),
        (_request(CacheKey="k"), "Error 116: invalid cache ttl value, cannot be 0 or negative"),
        (
            _request(RequestTypeData=pb.Request.Command, CacheKey="k", CacheTTL=-1),
            "Error 116: invalid cache ttl value, cannot be 0 or negative",
        ),
    ],
)
async def test_send_request_errors(stub, request_: pb.Request, expected: str) -> None:
    error = await internal_error(stub.SendRequest(request_))
    assert error.details() == expected


def _response(**overrides: object) -> pb.Response:
    fields: dict[str, object] = dict(ClientID="c", ReplyChannel="_INBOX.x", RequestID="r")
    fields.update(overrides)
    return pb.Response(**fields)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (pb.Response(), "Error 101: invalid clientID value, cannot be empty"),
        (_response(ReplyChannel="", RequestID=""), "Error 102: invalid channel value, cannot be empty"),
        (_response(ReplyChannel="_INBOX."), "Error 119: invalid channel value, cannot end with `.`"),
        (_response(ReplyChannel="_INBOX. x"), "Error 108: invalid channel value, no white spaces are allowed"),
        (_response(ReplyChannel="_INBOX.>"), "Error 107: invalid channel value, no wildcards are allowed"),
        (_response(RequestID=""), "Error 117: invalid request id, cannot be empty"),
    ],
)
async def test_send_response_errors(stub, response: pb.Response, expected: str) -> None:
    error = await internal_error(stub.SendResponse(response))
    assert error.details() == expected


async def test_reply_for_unknown_inbox_is_accepted(stub) -> None:
    assert await stub.SendResponse(_response()) == pb.Empty()


def _subscribe(**overrides: object) -> pb.Subscribe:
    fields: dict[str, object] = dict(SubscribeTypeData=pb.Subscribe.Queries, ClientID="c", Channel="ch")
    fields.update(overrides)
    return pb.Subscribe(**fields)


@pytest.mark.parametrize(
    ("subscribe", "expected"),
    [
        (pb.Subscribe(), "Error 207: invalid subscribe type"),
        (_subscribe(SubscribeTypeData=pb.Subscribe.Events), "Error 207: invalid subscribe type"),
        (_subscribe(ClientID="", Channel=""), "Error 101: invalid clientID value, cannot be empty"),
        (_subscribe(Channel=""), "Error 102: invalid channel value, cannot be empty"),
        (_subscribe(Channel="a.*."), "Error 119: invalid channel value, cannot end with `.`"),
        (_subscribe(Channel="a .>"), "Error 108: invalid channel value, no white spaces are allowed"),
    ],
)
async def test_subscribe_to_requests_errors(stub, subscribe: pb.Subscribe, expected: str) -> None:
    error = await internal_error(stub.SubscribeToRequests(subscribe).read())
    assert error.details() == expected
