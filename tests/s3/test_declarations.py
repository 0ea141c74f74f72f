"""Each aws.s3 method is one declaration (connector/s3/declaration.py): every part present, and everything else derived from it.

A method missing a part fails here, naming the method and the part: its
example, a reach that works on the example, a ``read_only`` that agrees with
the reach, its section and example in docs/methods.md.
"""

from __future__ import annotations

import itertools
import shlex
from pathlib import Path

import pytest

from bindings.target import RequestMetadata
from bindings.wire import Request
from connector.s3.declaration import S3Method
from connector.s3.target import DECLARATIONS, KUBEMQ_TARGETS_ORDER, METHODS

DOCS = (Path(__file__).resolve().parents[2] / "docs" / "methods.md").read_text()


def example_request(method: S3Method[RequestMetadata]) -> Request:
    return Request(metadata={"method": method.name, **method.example}, data=method.example_data)


def test_the_table_is_the_declarations_kubemq_targets_nine_first_in_its_order() -> None:
    names = [method.name for method in METHODS]
    assert names == [method.name for method in DECLARATIONS]
    assert len(set(names)) == len(names)
    assert names[: len(KUBEMQ_TARGETS_ORDER)] == list(KUBEMQ_TARGETS_ORDER)
    assert {method.name for method in DECLARATIONS if method.kubemq_targets is not None} == set(KUBEMQ_TARGETS_ORDER)


@pytest.mark.parametrize("method", DECLARATIONS, ids=lambda method: method.name)
def test_each_declaration_is_whole_and_its_parts_agree(method: S3Method[RequestMetadata]) -> None:
    assert issubclass(method.metadata, RequestMetadata) and method.summary.endswith("."), f"{method.name}: metadata model and a one-sentence summary"
    request = example_request(method)
    call = METHODS.resolve(request)  # the example is a valid request
    reached = method.reaches(call.metadata, request)
    writes = any(access.writes for access in reached)
    assert method.read_only is not writes, f"{method.name}: read_only={method.read_only}, but its example {'writes' if writes else 'changes nothing'}"
    assert all(access.bucket in (None, method.example.get("bucket_name"), "demo") for access in reached)


@pytest.mark.parametrize("method", DECLARATIONS, ids=lambda method: method.name)
def test_docs_describe_each_method_with_its_declared_example(method: S3Method[RequestMetadata]) -> None:
    assert f"\n## {method.name}\n" in DOCS, f"docs/methods.md has no section '## {method.name}'"
    shown = [_send_metadata(line) for line in DOCS.splitlines() if f"-m method={method.name}" in line.split(" | ")[0]]
    example = {"method": method.name, **method.example}
    line = " ".join(f"-m {key}={value}" for key, value in example.items())
    assert any(example.items() <= metadata.items() for metadata in shown), f"docs/methods.md shows no `kubemq-s3 send ... {line}`"


def _send_metadata(line: str) -> dict[str, str]:
    """The ``-m key=value`` pairs of a ``kubemq-s3 send`` command line (in ``$(...)`` too)."""
    words = shlex.split(line.split(" | ")[0].replace("$(kubemq-s3", "kubemq-s3"))
    return dict(word.split("=", 1) for previous, word in itertools.pairwise(words) if previous == "-m" and "=" in word)
