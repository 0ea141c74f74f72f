"""A message as the sources receive it (a command, query or event): every field decoded, a large body left in the message, uncopied."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from kubemq.grpc import kubemq_pb2 as pb

from bindings.kubemq import sdk
from bindings.wire import LARGE_BODY

texts = st.text(max_size=20)
bodies = st.one_of(st.binary(max_size=64), st.integers(LARGE_BODY - 40, LARGE_BODY + 300).map(lambda n: bytes(range(256)) * (n // 256) + b"x" * (n % 256)))
requests = st.builds(
    pb.Request,
    RequestID=texts,
    RequestTypeData=st.sampled_from([pb.Request.Command, pb.Request.Query]),
    ClientID=texts,
    Channel=texts,
    Metadata=texts,
    Body=bodies,
    ReplyChannel=texts,
    Timeout=st.integers(0, 2**31 - 1),
    CacheKey=texts,
    CacheTTL=st.integers(-(2**31), 2**31 - 1),
    Span=st.binary(max_size=30),
    Tags=st.dictionaries(texts, texts, max_size=4),
)

events = st.builds(
    pb.EventReceive,
    EventID=texts,
    Channel=texts,
    Metadata=texts,
    Body=bodies,
    Timestamp=st.integers(0, 2**63 - 1),
    Sequence=st.integers(0, 2**64 - 1),
    Tags=st.dictionaries(texts, texts, max_size=4),
)


@settings(max_examples=300, deadline=None)
@given(original=st.one_of(requests, events))
def test_every_field_reads_as_protobuf_decodes_it(original: pb.Request | pb.EventReceive) -> None:
    message = original.SerializeToString()
    received = sdk.received(message, type(original))
    assert bytes(received.body) == original.Body
    expected = type(original)()
    expected.CopyFrom(original)
    if len(message) >= LARGE_BODY:
        expected.ClearField("Body")
    assert received.fields == expected


def test_a_large_body_is_a_view_into_the_received_message() -> None:
    message = pb.Request(RequestID="r", Body=b"b" * LARGE_BODY, Tags={"k": "v"}).SerializeToString()
    received = sdk.received(message, pb.Request)
    assert isinstance(received.body, memoryview)
    assert received.body.obj is message
    assert received.fields.Tags == {"k": "v"}


def key(number: int, wire_type: int) -> bytes:
    """A field's key on the wire: a varint, 7 bits a byte."""
    value, encoded = number << 3 | wire_type, bytearray()
    while value > 0x7F:
        encoded.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes([*encoded, value])


def test_fields_the_sdk_does_not_know_are_kept() -> None:
    known = pb.Request(RequestID="r", Body=b"b" * LARGE_BODY).SerializeToString()
    # A varint, bytes, fixed 32 and 64 bits, in fields a newer server might add (keys of one and two bytes).
    unknown = key(13, 0) + b"\x96\x01" + key(14, 2) + b"\x02hi" + key(15, 5) + b"abcd" + key(300, 1) + b"abcdefgh"
    received = sdk.received(known + unknown, pb.Request)
    assert isinstance(received.body, memoryview)
    assert received.fields.SerializeToString() == pb.Request(RequestID="r").SerializeToString() + unknown


def test_a_message_the_scanner_cannot_follow_is_decoded_whole() -> None:
    # A group (wire type 3) is valid protobuf the scanner does not read: the whole message is decoded instead.
    message = pb.Request(RequestID="r", Body=b"b" * LARGE_BODY).SerializeToString() + key(24, 3) + key(24, 4)
    received = sdk.received(message, pb.Request)
    assert received.body == b"b" * LARGE_BODY
    assert received.fields.RequestID == "r"
