"""``get_item``'s ``decode``: an object's bytes as JSON, text or base64, chosen by media type.

Matching is on the media type, not the exact header: ``application/json;
charset=utf-8`` and ``application/problem+json`` are JSON, ``text/*`` and
XML/YAML/CSV-like types are text (Camunda's connector compares the whole
string, so a charset parameter sends JSON down the base64 path).
"""

from __future__ import annotations

import base64
import codecs
import json
from typing import Any, Literal

from bindings.errors import InvalidRequestError

Decode = Literal["auto", "text", "json", "base64"]
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


def decode_content(body: bytes | bytearray, content_type: str | None, mode: Decode, key: str) -> dict[str, Any]:
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
