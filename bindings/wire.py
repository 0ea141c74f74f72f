"""The kubemq-targets wire format: request and response bodies.

A request travels as the body of a KubeMQ message::

    {"metadata": {"method": "get_item", ...}, "data": "<base64>"}

and every reply body is::

    {"metadata": {...}, "data": "<base64>" | null, "is_error": bool, "error": "..."}

The parse rules copy kubemq-targets' ``types.ParseRequest`` exactly, quirks
included, because senders written for it must get the same result here: a
body that is not JSON is not an error but raw ``data``; a ``data`` string that
is not valid base64 is taken as its UTF-8 bytes; a ``data`` object is
re-encoded as JSON; any other ``data`` type is refused.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pybase64

from bindings import gojson
from bindings.errors import InvalidRequestError

# How replies are written: ``kubemq-targets`` byte for byte as kubemq-targets sends them (the default),
# ``extended`` with this connector's richer metadata and plainer error text.
ReplyStyle = Literal["kubemq-targets", "extended"]
KUBEMQ_TARGETS: ReplyStyle = "kubemq-targets"
EXTENDED: ReplyStyle = "extended"

# A message body as a source hands it over: bytes, or a view into the received message when
# copying a large body out of it would hold the object once more.
Body = bytes | memoryview

# Go type names, because the error text is part of what senders may match on.
_GO_TYPE_NAMES = {bool: "bool", float: "float64", list: "[]interface {}"}


class Request:
    """A parsed request: string metadata plus the payload bytes.

    Data that came as base64 in a large body stays there until it is read:
    ``data`` decodes it whole (once), ``part`` decodes only the slice asked
    for, so an upload can go out in bounded pieces instead of holding the
    encoded and the decoded object side by side.
    """

    __slots__ = ("_base64", "_data", "metadata")

    def __init__(self, metadata: dict[str, str] | None = None, data: bytes = b"") -> None:
        self.metadata: dict[str, str] = {} if metadata is None else metadata
        self._data = data
        # The data's base64 while it is not decoded yet (``_data`` is then empty).
        self._base64: memoryview | None = None

    @classmethod
    def with_base64_data(cls, metadata: dict[str, str], encoded: memoryview) -> Request:
        """A request whose data is ``encoded``, base64 the caller found valid (``is_base64``), decoded when read."""
        request = cls(metadata)
        request._base64 = encoded
        return request

    @property
    def data(self) -> bytes:
        """The whole data (decoded on first use when it came as base64)."""
        if self._base64 is not None:
            self._data, self._base64 = pybase64.b64decode(self._base64, validate=True), None
        return self._data

    @property
    def size(self) -> int:
        """Length of the data, without decoding it."""
        encoded = self._base64
        if encoded is None:
            return len(self._data)
        return len(encoded) // 4 * 3 - bytes(encoded[-2:]).count(b"=")  # valid base64 has "=" only at its end

    def part(self, start: int, size: int) -> memoryview:
        """Bytes ``start`` to ``start + size`` of the data (fewer at its end).

        From base64, only the 4-character groups holding them are decoded:
        each group is 3 bytes, so the slice starts at a group and is trimmed.
        """
        encoded = self._base64
        if encoded is None:
            return memoryview(self._data)[start : start + size]
        first, end = start // 3, -(-(start + size) // 3)
        decoded = pybase64.b64decode(encoded[first * 4 : end * 4], validate=True)
        return memoryview(decoded)[start - first * 3 : start - first * 3 + size]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Request):
            return NotImplemented
        return (self.metadata, self.data) == (other.metadata, other.data)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        return f"Request(metadata={self.metadata!r}, data={self.data!r})"

    def to_json(self) -> bytes:
        """Encode as a kubemq-targets request body (what a sender puts on the wire).

        The bytes ``json.dumps`` gives for ``{"metadata": ..., "data": "<base64>"}``
        (each key only when not empty), with the base64 spliced in as in
        ``Response.json_parts``: ``json.dumps`` would copy it to text, escape,
        join and encode it back, three copies at once at the peak; spliced, it
        is held once plus the joined body.
        """
        parts = [b"{"]
        if self.metadata:
            parts += [b'"metadata":', json.dumps(self.metadata, separators=(",", ":")).encode()]
        if self.data:
            parts += [b',"data":"' if self.metadata else b'"data":"', pybase64.b64encode(self.data), b'"']
        parts.append(b"}")
        return b"".join(parts)


@dataclass(slots=True)
class Response:
    """A reply. ``data`` is None for "no data", which the wire shows as ``null``."""

    metadata: dict[str, str] = field(default_factory=dict)
    data: bytes | None = None
    is_error: bool = False
    error: str = ""

    @classmethod
    def ok(cls, data: bytes | None = None, **metadata: str) -> Response:
        """A success reply: metadata ``result: ok`` plus the given keys, as kubemq-targets sends."""
        return cls(metadata={"result": "ok", **metadata}, data=data)

    @classmethod
    def failure(cls, error: BaseException | str) -> Response:
        """An error reply; kubemq-targets sends empty metadata and null data with it."""
        return cls(is_error=True, error=str(error))

    def to_json(self) -> bytes:
        """Encode the reply body."""
        return b"".join(self.json_parts())

    def json_parts(self) -> list[bytes]:
        """The reply body in pieces, the base64 data one of them: joined, they are ``to_json``.

        The base64 payload is spliced in rather than passed through ``json.dumps``
        so a large object is not copied into a Python ``str`` and escaped once
        more; a source that builds its message itself joins the pieces once,
        straight into it, after dropping ``data``.
        """
        metadata = gojson.dumps(self.metadata).encode()
        tail = f'"is_error":{"true" if self.is_error else "false"},"error":{gojson.string(self.error)}}}'.encode()
        data = [b"null"] if self.data is None else [b'"', pybase64.b64encode(self.data), b'"']
        return [b'{"metadata":', metadata, b',"data":', *data, b",", tail]

    @classmethod
    def attempts_failed(cls, attempts: list[str]) -> Response:
        """An error reply as kubemq-targets' retry middleware words every target error, even after a single attempt."""
        listed = "\n".join(f"#{number}: {text}" for number, text in enumerate(attempts, start=1))
        return cls.failure(f"{ATTEMPTS_HEADER}{listed}")

    @property
    def last_error(self) -> str:
        """What the last attempt said, in either reply style: what a client decides on (a code, a status)."""
        return attempts_of(self.error)[-1]

    @classmethod
    def from_json(cls, body: bytes) -> Response:
        """Decode a reply body (used by the ``send`` client and by tests)."""
        return cls.from_mapping(json.loads(body))

    @classmethod
    def from_mapping(cls, raw: dict[str, Any]) -> Response:
        """A reply from its decoded JSON object."""
        data = raw.get("data")
        return cls(
            metadata=dict(raw.get("metadata") or {}),
            data=None if data is None else pybase64.b64decode(data),
            is_error=bool(raw.get("is_error", False)),
            error=str(raw.get("error") or ""),
        )


ATTEMPTS_HEADER = "All attempts fail:\n"
_ATTEMPT_NUMBER = re.compile(r"(?:^All attempts fail:\n|\n)#\d+: ")


def attempts_of(error: str) -> list[str]:
    """The attempts an error lists in kubemq-targets' wording (``All attempts fail:\\n#1: ...\\n#2: ...``), or the error alone."""
    if not error.startswith(ATTEMPTS_HEADER + "#1: "):
        return [error]
    return _ATTEMPT_NUMBER.split(error)[1:]


def parse_request(body: Body) -> Request:
    """Parse a request body with kubemq-targets' rules (see the module docstring).

    Total over every input: it returns a ``Request`` or raises
    ``InvalidRequestError``, never anything else. It raises only where
    kubemq-targets fails too (an empty body, a ``data`` field that is neither
    string, object nor null) and for a ``data`` object nested deeper than
    ``MAX_DATA_DEPTH`` or holding a number no JSON encoder can write back.
    Text is read as Go reads it: invalid UTF-8 and lone surrogates become U+FFFD.
    """
    if not body:
        raise InvalidRequestError("invalid request format, empty request")
    if len(body) >= LARGE_BODY and (fast := _parse_large(body)) is not None:
        return fast
    decoded = _loads_object(body)
    if decoded is _NOT_JSON:
        return Request(data=bytes(body))
    if decoded is None:
        return Request()
    if not isinstance(decoded, dict):
        return Request(data=bytes(body))
    metadata = decoded.get("metadata")
    if metadata is None:
        metadata = {}
    if not _is_string_map(metadata):
        return Request(data=bytes(body))
    return Request(metadata=_valid_text_map(metadata), data=_decode_data(decoded.get("data")))


# A ``data`` object deeper than this is refused before it is re-encoded (Go allows 10,000;
# Python's own encoder gives out near 1,000, depending on the stack already in use).
MAX_DATA_DEPTH = 512
_NOT_JSON = object()
_WHITESPACE = b" \t\r\n"


class _NotGoJson(ValueError):
    """Text Python's JSON reader accepts but Go's refuses (``NaN``, ``Infinity``)."""


def _refuse_constant(name: str) -> float:
    raise _NotGoJson(name)


def _loads_object(body: Body) -> Any:
    """The decoded body, or ``_NOT_JSON`` when Go would fail to read it into a request.

    Only an object (or ``null``) can be a request, so any other body skips
    decoding: a large binary body is never turned into text.
    """
    start = 0
    while start < len(body) and body[start] in _WHITESPACE:
        start += 1
    first = body[start : start + 1]
    if first != b"{" and first != b"n":
        return _NOT_JSON
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError:
        text = bytes(body).decode("utf-8", "replace")  # Go replaces each invalid byte with U+FFFD
    try:
        return json.loads(text, parse_int=float, parse_constant=_refuse_constant)  # Go reads every number as a float64
    except RecursionError:
        raise InvalidRequestError(f"invalid request format, JSON nested deeper than {MAX_DATA_DEPTH} levels") from None
    except ValueError:  # JSONDecodeError, _NotGoJson
        return _NOT_JSON


def _valid_text(text: str) -> str:
    """``text`` with lone surrogates (JSON escapes like ``\\ud800``) replaced by U+FFFD, as Go decodes them."""
    return gojson.LONE_SURROGATE.sub("\ufffd", text)


def _valid_text_map(values: dict[str, str]) -> dict[str, str]:
    """``values`` with ``_valid_text`` applied to each key and value: the same dict when none has a lone surrogate."""
    # One check of all the text at once, instead of a regex per key and value: the usual map is ASCII, which has none.
    text = "".join([*values, *values.values()])
    if text.isascii() or gojson.LONE_SURROGATE.search(text) is None:
        return values
    return {_valid_text(key): _valid_text(value) for key, value in values.items()}


def _check_depth(value: object) -> None:
    """Refuse a structure nested deeper than ``MAX_DATA_DEPTH``, without recursing."""
    level: list[tuple[object, int]] = [(value, 1)]
    while level:
        item, depth = level.pop()
        if depth > MAX_DATA_DEPTH:
            raise InvalidRequestError(f"invalid request format, invalid data format, nested deeper than {MAX_DATA_DEPTH} levels")
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        level.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


# Bodies from this size on try the large-payload path first.
LARGE_BODY = 64 * 1024
# Encoded characters checked per step (a multiple of 4): the check never holds a large decoded object.
BASE64_CHECK_CHUNK = 4 * 1024 * 1024
_DATA_KEY = re.compile(rb'"data"\s*:\s*$')


def _parse_large(body: Body) -> Request | None:
    """Decode a big body without turning its base64 ``data`` into Python strings.

    ``json.loads`` would hold the body twice more as ``str`` (the whole text,
    then the data string) before base64 decoding: over 3x a large object. Senders
    write ``data`` last (``{"metadata":{...},"data":"..."}``, Go's field
    order), so the base64 run is found at the end, checked in place in the
    body's buffer and left there for the request to decode when (and as far
    as) it is read, and only the small remainder goes through ``json.loads``.
    Anything unexpected returns None and the general path decides, so the
    result is always what the general path would produce.
    """
    end = _trim(body, len(body))
    if body[end - 1 : end] != b"}":
        return None
    close = _trim(body, end - 1)
    if body[close - 1 : close] != b'"':
        return None
    open_quote = _last_quote(body, close - 1)
    key = _DATA_KEY.search(body, 0, open_quote) if open_quote > 0 else None
    if key is None:
        return None
    # What precedes the key must close as an object on its own: "{" or "...,".
    head_end = _trim(body, key.start())
    if body[head_end - 1 : head_end] == b",":
        head_end = _trim(body, head_end - 1)
        if body[head_end - 1 : head_end] == b"{":
            return None
    elif body[head_end - 1 : head_end] != b"{":
        return None
    try:
        rest = _loads_object(bytes(body[:head_end]) + b"}")
    except InvalidRequestError:
        return None
    if not isinstance(rest, dict) or "data" in rest:
        return None
    metadata = rest.get("metadata")
    if metadata is not None and not _is_string_map(metadata):
        return None
    encoded = memoryview(body)[open_quote + 1 : close - 1]
    if not is_base64(encoded):
        return None
    return Request.with_base64_data(_valid_text_map(metadata or {}), encoded)


def is_base64(encoded: memoryview) -> bool:
    """Whether ``binascii.a2b_base64(encoded, strict_mode=True)`` would decode it, checked a chunk at a time.

    Each chunk is decoded and dropped; padding ends the text, so a chunk
    before the last that decodes short (it held ``=``) fails the whole.
    """
    if len(encoded) % 4:
        return False
    for start in range(0, len(encoded), BASE64_CHECK_CHUNK):
        chunk = encoded[start : start + BASE64_CHECK_CHUNK]
        try:
            decoded = len(pybase64.b64decode(chunk, validate=True))
        except (binascii.Error, ValueError):
            return False
        if decoded != len(chunk) // 4 * 3 and start + len(chunk) < len(encoded):
            return False
    return True


def _last_quote(body: Body, end: int) -> int:
    """Index of the last ``"`` before ``end``, or -1; a view has no ``rfind``, so it is searched back a chunk at a time."""
    if isinstance(body, bytes):
        return body.rfind(b'"', 0, end)
    while end > 0:
        start = max(0, end - BASE64_CHECK_CHUNK)
        found = bytes(body[start:end]).rfind(b'"')
        if found >= 0:
            return start + found
        end = start
    return -1


def _trim(body: Body, end: int) -> int:
    """Index just after the last non-whitespace byte before ``end`` (no copy, unlike ``rstrip``)."""
    while end > 0 and body[end - 1] in b" \t\r\n":
        end -= 1
    return end


def _is_string_map(value: object) -> bool:
    return isinstance(value, Mapping) and all(isinstance(v, str) for v in value.values())


def _decode_data(value: object) -> bytes:
    if value is None:
        return b""
    if isinstance(value, str):
        try:
            # binascii reads an ASCII str in place; base64.b64decode would first copy it to bytes.
            return binascii.a2b_base64(value.replace("\r", "").replace("\n", ""), strict_mode=True)
        except (binascii.Error, ValueError):
            return _valid_text(value).encode()
    if isinstance(value, dict):
        # Go re-marshals a map: keys sorted, compact, HTML characters escaped, numbers as float64.
        _check_depth(value)
        return _go_json(value)
    type_name = _GO_TYPE_NAMES.get(type(value), type(value).__name__)
    raise InvalidRequestError(f"invalid request format, invalid data format, {type_name}")


def _go_json(value: object) -> bytes:
    try:
        return gojson.dumps(value).encode()
    except ValueError:  # a number past float64's range, read as infinity
        raise InvalidRequestError("invalid request format, invalid data format, number out of range") from None
