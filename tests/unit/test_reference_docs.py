"""The shipped reference is what the declarations generate: docs cannot drift from the code."""

from pathlib import Path

from bindings.docs import reference
from connector.app import registry

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_reference_is_the_generated_one() -> None:
    shipped = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    assert shipped == reference(registry()), "docs/reference.md is stale: run `make docs`"


def test_reference_covers_every_kind_method_and_secret_mark() -> None:
    text = reference(registry())
    for heading in ("## Source `kubemq.query`", "## Source `kubemq.queue`", "## Target `aws.s3`", "#### `presign_url`", "#### `copy_item`"):
        assert heading in text
    assert "| `aws_secret_key` | string |  |" in text and "**Secret**" in text
