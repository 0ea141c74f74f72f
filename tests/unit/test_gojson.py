"""Go's JSON, as kubemq-targets writes it: numbers, escapes, key order; the fast path for S3 outputs writes the same bytes.

The expected texts are what kubemq-targets itself stored for the same values
(tests/differential/test_corpus.py sends them to it and compares).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bindings import gojson


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (-0.0, "-0"),
        (2.5, "2.5"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1e-6, "0.000001"),
        (1e-7, "1e-07"),
        (0.000001234, "0.000001234"),
        (1.2345678901234568e29, "1.2345678901234568e+29"),
        (12345678901234567.0, "12345678901234568"),
        (5e-324, "5e-324"),
        (300.0, "300"),
    ],
)
def test_a_float64_is_written_in_kubemq_targets_shortest_form(value: float, text: str) -> None:
    assert gojson.number(value) == text


def test_strings_escape_what_go_escapes_and_keep_the_rest() -> None:
    assert gojson.string('\b\f\n\r\t\x01\x1f\x7f <&> \u2028\u2029 \ud800 \\ " ü 😀') == ('"\\u0008\\u000c\\n\\r\\t\\u0001\\u001f\x7f \\u003c\\u0026\\u003e \\u2028\\u2029 \ufffd \\\\ \\" ü 😀"')


def test_maps_are_sorted_and_structs_keep_their_order() -> None:
    value = {"b": [1, None, True], "a": {"z": "", "y": []}}
    assert gojson.dumps(value) == '{"a":{"y":[],"z":""},"b":[1,null,true]}'
    assert gojson.dumps(value, sort_keys=False) == '{"b":[1,null,true],"a":{"z":"","y":[]}}'


def test_nesting_deeper_than_the_stack_is_written() -> None:
    deep: object = "leaf"
    for _ in range(5000):
        deep = [deep]
    assert gojson.dumps(deep) == "[" * 5000 + '"leaf"' + "]" * 5000


TEXT = st.lists(st.one_of(st.characters(), st.sampled_from(["\\", "\b", "\f", "\\b", "\\f", "<", "&", "\u2028", "\ud800", '"'])), max_size=12).map("".join)
FLOATLESS = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=20,
)


@given(value=FLOATLESS, sort_keys=st.booleans())
def test_the_fast_path_writes_the_same_bytes(value: object, sort_keys: bool) -> None:
    fast = gojson.dumps_without_floats(value, sort_keys=sort_keys)
    assert fast == gojson.dumps(value, sort_keys=sort_keys)
    json.loads(fast)
