"""Turning a mistake into its fix: "did you mean" suggestions and readable validation messages.

Shared by config validation (property names, kinds, values) and request
dispatch (method names), so an operator and a sender read the same words.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

# Similarity (difflib's ratio) from which a choice is offered: typos (a letter missing, doubled or swapped, "-" for
# "_") score above it; names that merely share a part ("kubemq.", "_item") below it, and a wrong guess misleads.
SUGGESTION_CUTOFF = 0.8
# What pydantic (and so every declared boolean) accepts from a string, in any letter case.
BOOLEAN_VALUES = ("true", "false", "1", "0", "yes", "no", "on", "off", "t", "f", "y", "n")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"did you mean 'x'?"`` for the closest choice (letter case ignored), or ``""`` when none is close."""
    by_folded = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(word.lower(), by_folded, n=1, cutoff=SUGGESTION_CUTOFF)
    return f"did you mean {by_folded[close[0]]!r}?" if close else ""


def choices_message(word: str, choices: Iterable[str], label: str) -> str:
    """``did you mean 'x'? valid kinds: a, b``; the question only when a choice is close."""
    names = list(choices)
    hint = did_you_mean(word, names)
    return f"{hint} {label}: {', '.join(names)}" if hint else f"{label}: {', '.join(names)}"


def value_message(error: Any) -> str:
    """Pydantic's message for one error, with the accepted values where pydantic does not list them."""
    if error["type"] in ("bool_parsing", "bool_type"):
        return "invalid boolean; accepted values: " + ", ".join(BOOLEAN_VALUES) + " (any letter case)"
    return str(error["msg"])
