"""Config validation: every problem reported, located by path and line, env expansion."""

import textwrap
from pathlib import Path

import pytest

from bindings.config import Config, load_config, parse_config
from bindings.errors import ConfigError
from tests.fixtures.registries import ECHO_REGISTRY

REGISTRY = ECHO_REGISTRY


def config(text: str):  # type: ignore[no-untyped-def]
    return parse_config(textwrap.dedent(text), REGISTRY)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        config(text)
    return [str(p) for p in raised.value.problems]


VALID = """
apiPort: 8080
bindings:
  - name: echo
    source:
      kind: kubemq.query
      name: q
      properties:
        address: "localhost:50000"
        channel: "query.echo"
        sources: "2"
        max_concurrency: 8
    target:
      kind: test.echo
      properties:
        prefix: "x"
    properties:
      retry_attempts: "3"
      rate_per_seconds: "10"
"""


def test_quoted_strings_and_plain_scalars_are_both_accepted() -> None:
    resolved = config(VALID)
    binding = resolved.bindings[0]
    assert binding.source.properties.sources == 2
    assert binding.source.properties.max_concurrency == 8
    assert binding.middleware.retry_attempts == 3
    assert binding.middleware.rate_per_second == 10  # kubemq-targets' own spelling is read too
    # several sources without a group share a generated one, so each request is served once
    assert binding.source.properties.group


def test_zero_bindings_are_allowed() -> None:
    assert config("apiPort: 8080\nbindings: null\n").bindings == []


def test_every_problem_is_reported_with_path_line_and_binding() -> None:
    found = problems(
        """
        bindings:
          - name: first
            source:
              kind: kubemq.query
              properties:
                address: "nohost"
                channel: "has space"
            target:
              kind: test.echo
              properties:
                prefix: "x"
                typo_key: "1"
          - name: first
            source:
              kind: kubemq.nosuch
            target:
              kind: test.echo
            properties:
              retry_attempts: "zero"
        """
    )
    assert found == [
        "line 7: bindings[0].source.properties.address: Value error, no valid host found (expected host:port) (binding 'first')",
        "line 8: bindings[0].source.properties.channel: Value error, no white spaces are allowed (binding 'first')",
        "line 13: bindings[0].target.properties.typo_key: unknown property; valid properties: prefix, secret_word (binding 'first')",
        "line 14: bindings[1].name: duplicated binding name 'first' (binding 'first')",
        "line 16: bindings[1].source.kind: invalid kind 'kubemq.nosuch' for source; valid kinds: kubemq.query, kubemq.command, kubemq.queue, kubemq.events, kubemq.events-store (binding 'first')",
        "line 20: bindings[1].properties.retry_attempts: Input should be a valid integer, unable to parse string as an integer (binding 'first')",
    ]


def test_missing_required_property_points_at_the_properties_block() -> None:
    found = problems(
        """
        bindings:
          - name: b
            source:
              kind: kubemq.query
              properties:
                address: "localhost:50000"
            target:
              kind: test.echo
        """
    )
    assert found == ["line 6: bindings[0].source.properties.channel: required property is missing (binding 'b')"]


def test_shape_errors_are_located() -> None:
    assert problems("apiPort: high\nbindings: []\n") == ["line 1: apiPort: Input should be a valid integer, unable to parse string as an integer"]
    assert problems("bindings:\n  - name: x\n") == [
        "line 2: bindings[0].source: required property is missing",
        "line 2: bindings[0].target: required property is missing",
    ]


def test_invalid_yaml_names_the_line() -> None:
    assert problems("bindings:\n  - name: [unclosed\n")[0].startswith("line 3: invalid YAML")


def test_environment_variables_are_expanded_with_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECHO_PREFIX", "from-env")
    text = VALID.replace('prefix: "x"', 'prefix: "${ECHO_PREFIX}"').replace('channel: "query.echo"', 'channel: "${CHANNEL:-query.default}"')
    binding = config(text).bindings[0]
    assert binding.target.properties.prefix == "from-env"
    assert binding.source.properties.channel == "query.default"


def test_unset_variable_without_default_is_a_problem() -> None:
    found = problems(VALID.replace('prefix: "x"', 'prefix: "${SURELY_NOT_SET_ANYWHERE}"'))
    assert found == ["line 16: bindings[0].target.properties.prefix: environment variable SURELY_NOT_SET_ANYWHERE is not set (use ${SURELY_NOT_SET_ANYWHERE:-default} for a fallback) (binding 'echo')"]


def test_secret_values_are_never_echoed_in_problems() -> None:
    found = problems(VALID.replace('prefix: "x"', 'secret_word: ["hunter2"]'))
    assert "hunter2" not in "\n".join(found)
    assert found == ["line 16: bindings[0].target.properties.secret_word: invalid value (hidden: secret) (binding 'echo')"]


def test_changed_environment_changes_the_fingerprint(monkeypatch: pytest.MonkeyPatch) -> None:
    text = VALID.replace('prefix: "x"', 'prefix: "${ECHO_PREFIX}"')
    monkeypatch.setenv("ECHO_PREFIX", "one")
    first = config(text).bindings[0].fingerprint
    monkeypatch.setenv("ECHO_PREFIX", "two")
    assert config(text).bindings[0].fingerprint != first


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml", REGISTRY)


def test_non_utf8_file_is_refused_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"apiPort: 8080\n# caf\xe9\n")
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_config(path, REGISTRY)


def test_recursive_alias_is_refused_not_a_crash() -> None:
    assert problems("bindings: &loop\n  - *loop\n") == ["invalid YAML: nested too deeply (a recursive alias?)"]


def test_a_wrong_top_level_key_does_not_hide_the_bindings_problems_and_all_come_sorted_by_line() -> None:
    found = problems(
        """
        apiPort: high
        bindings:
          - name: echo
            source:
              kind: kubemq.query
              properties:
                address: "localhost:50000"
                channel: "query.echo"
                auto_reconnect: "maybe"
            target:
              kind: test.echo
              properties:
                prefx: "x"
          - name: shapeless
        logLevel: loud
        """
    )
    assert found == [
        "line 2: apiPort: Input should be a valid integer, unable to parse string as an integer",
        "line 10: bindings[0].source.properties.auto_reconnect: invalid boolean; accepted values: true, false, 1, 0, yes, no, on, off, t, f, y, n (any letter case) (binding 'echo')",
        "line 14: bindings[0].target.properties.prefx: unknown property; did you mean 'prefix'? valid properties: prefix, secret_word (binding 'echo')",
        "line 15: bindings[1].source: required property is missing",
        "line 15: bindings[1].target: required property is missing",
        "line 16: logLevel: Input should be 'debug', 'info', 'warning' or 'error'",
    ]


def test_an_unknown_key_names_the_keys_of_its_own_block_and_the_closest() -> None:
    found = problems(VALID.replace("      kind: test.echo", "      kind: test.echo\n      names: echo-target").replace("apiPort: 8080", "apiport: 8080"))
    assert found == [
        f"line 2: apiport: unknown key; did you mean 'apiPort'? valid keys: {', '.join(Config.model_fields)}",
        "line 15: bindings[0].target.names: unknown key; did you mean 'name'? valid keys: kind, name, properties",
    ]


def test_a_close_kind_is_suggested_and_a_far_one_is_not() -> None:
    assert problems(VALID.replace("kind: test.echo", "kind: test.ecko")) == [
        "line 14: bindings[0].target.kind: invalid kind 'test.ecko' for target; did you mean 'test.echo'? valid kinds: test.echo (binding 'echo')"
    ]
    assert problems(VALID.replace("kind: test.echo", "kind: aws.s3")) == ["line 14: bindings[0].target.kind: invalid kind 'aws.s3' for target; valid kinds: test.echo (binding 'echo')"]
