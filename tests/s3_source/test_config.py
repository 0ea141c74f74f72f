"""The aws.s3 source's config: kubemq-sources' YAML as it is, its folder bug fixed, mistakes named with their line."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from bindings.config import parse_config
from bindings.errors import ConfigError
from connector.app import registry
from connector.s3_source.messages import Found
from connector.s3_source.properties import S3SourceProperties

# kubemq-sources' own README example for its aws.s3 source, as it is.
KUBEMQ_SOURCES_EXAMPLE = """
bindings:
- name: s3
  source:
    kind: aws.s3
    properties:
      aws_key: "id"
      aws_secret_key: 'json'
      region:  "region"
      token: ""
      folders: 'folder1,folder2/sub1/sub2'
      target_type: filesystem
      bucket_name: bucket
      concurrency: 1
      scan_interval: 5
  target:
    kind: kubemq.queue
    properties:
      address: localhost:50000
      channel: queue.s3
  properties: {}
"""


def test_kubemq_sources_readme_config_loads_as_it_is() -> None:
    resolved = parse_config(KUBEMQ_SOURCES_EXAMPLE, registry())
    [binding] = resolved.bindings
    source = binding.source.properties
    assert isinstance(source, S3SourceProperties)
    assert (source.bucket_name, source.target_type, source.concurrency, source.scan_interval, source.after_send) == ("bucket", "filesystem", 1, 5, "delete")
    assert binding.target.kind == "kubemq.queue"
    assert (binding.target.properties.address, binding.target.properties.channel) == ("localhost:50000", "queue.s3")


def test_a_nested_folder_matches_the_objects_below_it_which_kubemq_sources_never_did() -> None:
    # kubemq-sources compares only an object's first path segment with the folder, so folder2/sub1/sub2 matched nothing.
    source = S3SourceProperties(bucket_name="b", folders="folder1,folder2/sub1/sub2, folder1/inner", target_type="aws")
    assert source.folders == ["folder1/", "folder2/sub1/sub2/"]  # folder1/inner is inside folder1: listed once
    assert S3SourceProperties(bucket_name="b", folders="/, x", target_type="aws").folders == ["/"]
    assert S3SourceProperties(bucket_name="b", folders="win\\dir", target_type="aws").folders == ["win/dir/"]


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"target_type": "ftp"}, "target_type"),
        ({"target_type": None}, "target_type is required with payload 'content'"),
        ({"payload": "reference"}, "target_type shapes the object's content"),
        ({"payload": "reference", "target_type": None}, "payload 'reference' needs after_send 'keep'"),
        ({"after_send": "move"}, "after_send 'move' needs move_prefix"),
        ({"move_prefix": "done/"}, "move_prefix applies only to after_send 'move'"),
        ({"scan_interval": 0}, "scan_interval"),
        ({"concurrency": 2000}, "concurrency"),
        ({"modified_after": "2026-01-01T00:00:00"}, "needs a time zone"),
        ({"max_object_size_mib": 5, "part_size_mib": 8}, "part_size_mib cannot be larger"),
        ({"aws_key": "AKIA"}, "aws_key and aws_secret_key must be set together"),
        ({"folders": "in", "after_send": "move", "move_prefix": "in/"}, "move_prefix 'in/' holds the watched folder 'in/'"),
    ],
)
def test_a_wrong_property_is_named_with_its_line(properties: dict[str, object], message: str) -> None:
    values = {"bucket_name": "b", "folders": "/", "target_type": "aws", **properties}
    lines = [f"      {key}: {value!r}" for key, value in values.items() if value is not None]
    text = "bindings:\n- name: s3\n  source:\n    kind: aws.s3\n    properties:\n" + "\n".join(lines) + "\n  target:\n    kind: kubemq.queue\n    properties:\n      channel: q\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, registry())
    shown = str(caught.value)
    assert message in shown
    assert "bindings[0].source.properties" in shown and "line " in shown


def test_a_secret_is_never_echoed_in_a_problem() -> None:
    text = textwrap.dedent("""
        bindings:
        - name: s3
          source:
            kind: aws.s3
            properties: {bucket_name: b, folders: /, target_type: aws, aws_key: AKIAVERYSECRET, aws_secret_key: [not, a, string]}
          target:
            kind: kubemq.queue
            properties: {channel: q}
    """)
    with pytest.raises(ConfigError) as caught:
        parse_config(text, registry())
    assert "AKIAVERYSECRET" not in str(caught.value) and "not, a" not in str(caught.value)


def test_a_key_keeps_every_character_in_the_names_kubemq_sources_derives() -> None:
    found = Found("a//b/./c d+é.txt", '"e"', 1, None)  # type: ignore[arg-type]
    assert (found.folder, found.file_name) == ("a//b/.", "c d+é.txt")


@pytest.mark.parametrize("block", range(2))
def test_the_configs_in_the_bucket_source_guide_are_valid(block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "SITE_A_KEY", "SITE_A_SECRET"):
        monkeypatch.setenv(name, "from-the-environment")
    guide = (Path(__file__).resolve().parents[2] / "docs" / "bucket-source.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", guide, re.DOTALL)
    assert len(blocks) == 2
    resolved = parse_config(blocks[block], registry())
    assert "aws.s3" in {binding.source.kind for binding in resolved.bindings}


def test_an_aws_s3_source_cannot_feed_an_aws_s3_target_and_the_line_says_so() -> None:
    text = "bindings:\n- name: s3\n  source:\n    kind: aws.s3\n    properties: {bucket_name: b, folders: /, target_type: aws}\n  target:\n    kind: aws.s3\n    properties: {}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, registry())
    [problem] = caught.value.problems
    assert (problem.line, problem.location) == (7, "bindings[0].target.kind")
    assert problem.message.startswith("the aws.s3 source sends each object as one message: its target must be a KubeMQ kind")
