"""``get_item``'s ``decode``: an object's bytes as JSON, text or base64, chosen by media type.

Matching is on the media type, not the exact header: ``application/json;
charset=utf-8`` and ``application/problem+json`` are JSON, ``text/*`` and
XML/YAML/CSV-like types are text (Camunda's connector compares the whole
string, so a charset parameter sends JSON down the base64 path).

The size of a decoded reply is known before the object is read, up to
escaping (base64 is 4/3 of the content), so an object whose reply cannot be
sent is refused without reading it.
"""

from __future__ import annotations

import base64
import codecs
import json
import math
from typing import Any, Literal

from bindings.errors import InvalidRequestError

Decode = Literal["auto", "text", "json", "base64"]
Form = Literal["text", "json", "base64"]
# The JSON around the content in each decoded form: {"json":<value>}, {"text":"<string>"}, {"base64":"<string>"}.
WRAPPING: dict[Form, int] = {"json": len('{"json":}'), "text": len('{"text":""}'), "base64": len('{"base64":""}')}
TEXT_TYPES = frozenset(
    {
        "application/xml",
        "application/javascript",
        "application/ecmascript",
        "application/x-www-form-urlencoded",
        "application/yaml",
        "application/x-yaml",
        "application/x-ndjson",
        "application/csv",
        "application/sql",
        "application/graphql",
        "image/svg+xml",
    }
)


def media_type(content_type: str | None) -> tuple[str, str | None]:
    """``("application/json", "utf-8")`` from ``application/json; charset=UTF-8``."""
    if not content_type:
        return "", None
    main, *params = content_type.split(";")
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower() or None
    return main.strip().lower(), charset


def is_json(kind: str) -> bool:
    return kind == "application/json" or kind.endswith("+json")


def is_text(kind: str) -> bool:
    return kind.startswith("text/") or kind in TEXT_TYPES or kind.endswith("+xml") or kind.endswith("+yaml")


def expected_form(content_type: str | None, mode: Decode | None) -> Form | None:
    """The member ``decode`` will most likely put the content in (``auto`` decides by media type); None for raw bytes."""
    if mode != "auto":
        return mode
    kind, _ = media_type(content_type)
    return "json" if is_json(kind) else "text" if is_text(kind) else "base64"


def reply_size(length: int, form: Form | None) -> int:
    """Bytes of the reply data for ``length`` bytes of content: base64 grows by 4/3, text and JSON keep (about) their size."""
    if form is None:
        return length
    return WRAPPING[form] + (4 * math.ceil(length / 3) if form == "base64" else length)


def largest_content(limit: int, form: Form | None) -> int:
    """The most content bytes whose reply in ``form`` stays within ``limit`` (the inverse of ``reply_size``)."""
    if form is None:
        return limit
    room = max(0, limit - WRAPPING[form])
    return room // 4 * 3 if form == "base64" else room


def decode_content(body: bytes | bytearray, content_type: str | None, mode: Decode, key: str) -> dict[Form, Any]:
    """``{"json": value}``, ``{"text": str}`` or ``{"base64": str}``.

    ``auto`` never fails: content that is not what its type claims falls back
    to text, then base64. An explicit ``json`` or ``text`` that does not fit
    the bytes is an error naming the object.
    """
    kind, charset = media_type(content_type)
    if mode == "auto":
        if is_json(kind):
            try:
                return {"json": _json(body, charset)}
            except ValueError:
                pass
        if is_json(kind) or is_text(kind):
            try:
                return {"text": _text(body, charset)}
            except ValueError:
                pass
        return {"base64": base64.b64encode(body).decode("ascii")}
    if mode == "json":
        try:
            return {"json": _json(body, charset)}
        except ValueError as exc:
            raise InvalidRequestError(f"object {key!r} is not valid JSON (decode=json): {exc}") from None
    if mode == "text":
        try:
            return {"text": _text(body, charset)}
        except ValueError as exc:
            raise InvalidRequestError(f"object {key!r} is not valid {charset or 'utf-8'} text (decode=text): {exc}") from None
    return {"base64": base64.b64encode(body).decode("ascii")}


def _encoding(charset: str | None) -> str:
    if charset:
        try:
            return codecs.lookup(charset).name
        except LookupError:
            pass
    return "utf-8"


def _text(body: bytes | bytearray, charset: str | None) -> str:
    return body.decode(_encoding(charset))


def _json(body: bytes | bytearray, charset: str | None) -> Any:
    text = _text(body, charset) if charset else body.decode("utf-8-sig")
    return json.loads(text)
