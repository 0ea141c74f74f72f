"""JSON written byte for byte as Go's ``encoding/json`` writes it.

kubemq-targets marshals its replies, and re-marshals a request's ``data``
object, with Go's encoder, so a reply is only identical when these rules
match too:

* strings: UTF-8 as is, ``"`` ``\\`` ``\\n`` ``\\r`` ``\\t`` escaped, every other
  control character as ``\\u00XX`` (``\\b`` and ``\\f`` included), and the
  HTML characters ``<`` ``>`` ``&`` plus U+2028/U+2029 as ``\\u`` escapes;
  a lone surrogate (which Go cannot hold) becomes U+FFFD;
* map keys sorted (struct fields in their declared order);
* a float64 in its shortest form: plain digits from 1e-6 up to 1e21 (``1``,
  not ``1.0``), exponent form outside (``1e+21``, ``1e-07``: kubemq-targets
  encodes with jsoniter, which keeps two exponent digits); an integer (Go's
  int64 fields) exactly.

``dumps`` is written without recursion, so a deeply nested value cannot
exhaust the stack. ``dumps_without_floats`` gives the same bytes for values
holding no float (S3's outputs: strings, integers, booleans, nulls) through
the C encoder and a pass over its escapes, several times faster on a large
listing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

_ESCAPES = {code: f"\\u{code:04x}" for code in range(0x20)} | {
    ord('"'): '\\"',
    ord("\\"): "\\\\",
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_NEEDS_ESCAPE = re.compile('["\\\\\x00-\x1f<>&\u2028\u2029\ud800-\udfff]')


def string(text: str) -> str:
    """A JSON string literal as Go writes it."""
    if _NEEDS_ESCAPE.search(text) is None:
        return f'"{text}"'
    return '"' + LONE_SURROGATE.sub("\ufffd", text).translate(_ESCAPES) + '"'


def number(value: float) -> str:
    """A float64 as kubemq-targets' encoder (jsoniter) writes it: the shortest digits, plain from 1e-6 up to 1e21."""
    if math.isinf(value) or math.isnan(value):
        raise ValueError(f"json: unsupported value: {value}")
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    shortest = repr(float(value))
    if 1e-6 <= abs(value) < 1e21:
        return format(Decimal(shortest), "f").removesuffix(".0") if "e" in shortest else shortest.removesuffix(".0")
    # repr's exponent form is kubemq-targets' (jsoniter's): at least two exponent digits, 1e-07 and 1e+21.
    mantissa, exponent = shortest.split("e")
    return f"{mantissa.removesuffix('.0')}e{exponent}"


class _Token(str):
    """Text already encoded, waiting on the work stack."""


def dumps(value: Any, default: Callable[[Any], Any] | None = None, *, sort_keys: bool = True) -> str:
    """``value`` (dicts, lists, strings, numbers, booleans, None) as Go's ``json.Marshal`` writes it.

    Dicts stand for Go maps, whose keys Go sorts; ``sort_keys=False`` keeps
    their order instead, for dicts that stand for Go structs (fields in
    declaration order). ``default`` turns any other object into one of those
    (a time into its text, say).
    """
    out: list[str] = []
    work: list[Any] = [value]
    while work:
        item = work.pop()
        if isinstance(item, _Token):
            out.append(item)
        elif isinstance(item, str):
            out.append(string(item))
        elif item is None:
            out.append("null")
        elif isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, int):
            out.append(str(item))
        elif isinstance(item, float):
            out.append(number(item))
        elif isinstance(item, dict):
            if any(LONE_SURROGATE.search(key) for key in item):
                # Go reads such a key as U+FFFD before it sorts (and keeps the last of keys that became one).
                item = {LONE_SURROGATE.sub("\ufffd", key): value for key, value in item.items()}
            keys = sorted(item) if sort_keys else list(item)
            work.append(_Token("}"))
            # Pushed last to first: each value, then its key (after a comma but for the first), so they pop in order.
            for position in range(len(keys) - 1, -1, -1):
                work += [item[keys[position]], _Token(("," if position else "") + string(keys[position]) + ":")]
            work.append(_Token("{"))
        elif isinstance(item, list):
            work.append(_Token("]"))
            for position in range(len(item) - 1, -1, -1):
                work += [item[position], _Token(",")] if position else [item[position]]
            work.append(_Token("["))
        elif default is not None:
            work.append(_Token(dumps(default(item), default, sort_keys=sort_keys)))
        else:
            raise TypeError(f"{type(item).__name__} cannot be written as JSON")
    return "".join(out)


# The escapes the C encoder writes its own way, found left to right as pairs so an escaped backslash is skipped whole.
_PYTHON_ESCAPE = re.compile(r"\\([\\bf])")
_GO_FOR_PYTHON_ESCAPE = {"\\": "\\\\", "b": "\\u0008", "f": "\\u000c"}
_HTML_AND_SEPARATORS = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def dumps_without_floats(value: Any, default: Callable[[Any], Any] | None = None, *, sort_keys: bool = True) -> str:
    """``dumps`` for a value without floats, by the C encoder: raw ``<>&`` and separators occur only inside strings, so they are escaped in place."""
    text = json.dumps(value, default=default, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys, allow_nan=False)
    if LONE_SURROGATE.search(text):  # rare: a key holding one sorts and merges as Go's, which only dumps does
        return dumps(value, default, sort_keys=sort_keys)
    if "\\b" in text or "\\f" in text:
        text = _PYTHON_ESCAPE.sub(lambda match: _GO_FOR_PYTHON_ESCAPE[match[1]], text)
    return text.translate(_HTML_AND_SEPARATORS)
