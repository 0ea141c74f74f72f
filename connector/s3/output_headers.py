"""An S3 operation's output read from its response headers, as botocore's REST-XML parser reads it, at a fraction of the cost.

botocore's parser asks a case-insensitive view of the headers for each of an
output's forty-odd header members and converts each through a dispatch on
its type. Here the members are read from botocore's own model once: each
becomes (header, member, conversion), and a response is read with plain
dict lookups. A member of a type not converted here (none of GetObject's or
PutObject's today) sends the response to botocore's parser whole, so the
output is always botocore's. ``tests/s3/test_output_headers.py`` holds both
to the same result over generated headers.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from botocore.parsers import DEFAULT_TIMESTAMP_PARSER, RestXMLParser

# IMF-fixdate, the one form S3 writes its HTTP dates in (RFC 9110): ``Sun, 06 Dec 2026 18:31:45 GMT``.
# Years before 1000 are left to botocore's reader, which takes some of them as two-digit years.
_HTTP_DATE = re.compile(r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d\d) ([A-Z][a-z]{2}) ([1-9]\d{3}) (\d\d):(\d\d):(\d\d) GMT", re.ASCII)
_MONTHS = {name: number for number, name in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}


def parse_timestamp(value: str) -> datetime:
    """A header's HTTP date (``Last-Modified``) read directly; anything else as botocore reads it.

    botocore reads every timestamp with dateutil's general parser, the
    costliest step of reading a GetObject's headers. Both give the same UTC instant.
    """
    fixed = _HTTP_DATE.fullmatch(value)
    if fixed is not None and fixed[2] in _MONTHS:
        day, _, year, hour, minute, second = fixed.groups()
        with contextlib.suppress(ValueError):  # 31 Feb, a leap second: botocore's reader decides
            return datetime(int(year), _MONTHS[fixed[2]], int(day), int(hour), int(minute), int(second), tzinfo=UTC)
    return DEFAULT_TIMESTAMP_PARSER(value)  # type: ignore[no-any-return]


def _boolean(value: str) -> bool:
    return value == "true"


def _text(value: str) -> str:
    return value


# botocore's REST-XML conversions of a header's text, by the member's type.
_CONVERSIONS: dict[str, Callable[[str], Any]] = {"string": _text, "character": _text, "integer": int, "long": int, "boolean": _boolean, "timestamp": parse_timestamp}


class _Member(NamedTuple):
    name: str
    header: str  # lowercase; for a map of headers (``x-amz-meta-``), their common prefix
    convert: Callable[[str], Any] | None  # None: botocore's parser reads this one
    prefixed: bool = False


class OutputHeaders:
    """Reads one operation's output shape from a response's headers (names lowercased)."""

    def __init__(self, shape: Any) -> None:
        self._shape = shape
        self._parser = RestXMLParser(timestamp_parser=parse_timestamp)
        self._members: list[_Member] = []  # in the model's order, which is the output's
        self._whole = False  # a member only botocore's parser reads, whatever the response
        # botocore's S3 handler (handle_expires_header) adds the raw Expires as ExpiresString, and drops one it cannot read.
        self._expires = any(name == "Expires" and member.serialization.get("name") == "Expires" for name, member in shape.members.items())
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            if location == "header":
                convert = None if member.serialization.get("jsonvalue") else _CONVERSIONS.get(member.type_name)
                self._members.append(_Member(name, member.serialization.get("name", name).lower(), convert))
            elif location == "headers":
                self._members.append(_Member(name, member.serialization.get("name", "").lower(), None, prefixed=True))
            elif location is not None:
                self._whole = True

    def read(self, status: int, headers: Mapping[str, str]) -> dict[str, Any]:
        """The parsed output of a successful response without its body: what botocore gives, ``Body`` left out."""
        headers, extra = self._expires_string(headers)
        if self._whole:
            return self.parse(status, headers, b"") | extra
        metadata: dict[str, Any] = {}
        if "x-amzn-requestid" in headers:
            metadata["RequestId"] = headers["x-amzn-requestid"]
        elif "x-amz-request-id" in headers:
            metadata["RequestId"] = headers["x-amz-request-id"]
            metadata["HostId"] = headers.get("x-amz-id-2", "")
        output: dict[str, Any] = {"ResponseMetadata": metadata}
        for name, header, convert, prefixed in self._members:
            if prefixed:
                output[name] = {key[len(header) :]: value for key, value in headers.items() if key.startswith(header)}
            elif header in headers:
                if convert is None:
                    return self._parsed(status, headers, b"") | extra
                output[name] = convert(headers[header])
        metadata["HTTPStatusCode"] = status
        metadata["HTTPHeaders"] = dict(headers)
        return output | extra

    def parse(self, status: int, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        """Any response (an error's too) read by botocore's parser itself and its S3 handler of Expires, ``Body`` left out."""
        headers, extra = self._expires_string(headers)
        return self._parsed(status, headers, body) | extra

    def _parsed(self, status: int, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        output: dict[str, Any] = self._parser.parse({"status_code": status, "headers": AnyCase(headers), "body": body}, self._shape)
        output.pop("Body", None)
        return output

    def _expires_string(self, headers: Mapping[str, str]) -> tuple[Mapping[str, str], dict[str, str]]:
        """The headers to parse and what botocore adds for ``Expires``: the raw text, the header itself dropped when it is no date."""
        expires = headers.get("expires") if self._expires else None
        if not expires:
            return headers, {}
        try:
            DEFAULT_TIMESTAMP_PARSER(expires)
        except (ValueError, RuntimeError):
            return {name: value for name, value in headers.items() if name != "expires"}, {"ExpiresString": expires}
        return headers, {"ExpiresString": expires}


class AnyCase(dict[str, str]):
    """Lowercased headers looked up in any case, as botocore's parser asks for them by their canonical names."""

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)
