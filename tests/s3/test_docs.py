"""docs/methods.md stays in step with the method table: every method, every key, runnable examples."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from connector.s3 import METHODS

DOC = (Path(__file__).parents[2] / "docs" / "methods.md").read_text()


def section(name: str) -> str:
    match = re.search(rf"^## {name}\n(.*?)(?=^## )", DOC, re.S | re.M)
    assert match, f"docs/methods.md has no section for {name}"
    return match.group(1)


def test_every_method_is_documented_with_every_key_and_an_example() -> None:
    for method in METHODS:
        text = section(method.name)
        for name, info in method.metadata.model_fields.items():
            assert f"`{info.alias or name}`" in text, f"{method.name}: key {info.alias or name} undocumented"
        assert f"-m method={method.name}" in text, f"{method.name}: no kubemq-s3 send example"


def test_examples_only_use_declared_keys_and_send_options() -> None:
    for line in DOC.splitlines():
        if not line.startswith("kubemq-s3 send"):
            continue
        words = shlex.split(line)
        pairs = dict(words[i + 1].split("=", 1) for i, word in enumerate(words) if word == "-m")
        name = pairs.pop("method")
        method = next(m for m in METHODS if m.name == name)
        declared = {info.alias or name for name, info in method.metadata.model_fields.items()}
        assert {key for key in pairs if not key.startswith("meta_")} <= declared, line
        options = {word for word in words if word.startswith("--")}
        assert options <= {"--address", "--channel", "--data-file", "--data-text", "--timeout", "--output"}, line
