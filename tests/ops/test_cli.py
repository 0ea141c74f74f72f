"""``kubemq-s3 validate`` and ``kubemq-s3 schema`` as an operator runs them, and the schema the repository ships."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bindings.config import parse_config
from bindings.schema import render_schema
from connector.app import registry
from tests.ops.support import REPO

SHIPPED_SCHEMA = REPO / "config.schema.json"
BROKEN = """\
apiPort: 8080
bindings:
  - name: s3
    source:
      kind: kubemq.query
      properties:
        address: "kubemq-cluster-grpc.kubemq:50000"
        channel: "query aws"
    target:
      kind: aws.s3
      properties:
        aws_key: "AKIAEXAMPLE"
        aws_secret_key: ["wJalr-NOT-SHOWN"]
        region: "us-east-1"
        endpoint: "ftp://nowhere"
    properties:
      retry_attempts: "0"
"""


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "connector", *args], cwd=REPO, capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})


def test_validate_lists_every_problem_with_its_line_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(BROKEN)
    result = cli("validate", "-c", str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{path}: 4 problems",
        "  line 8: bindings[0].source.properties.channel: Value error, no white spaces are allowed (binding 's3')",
        "  line 13: bindings[0].target.properties.aws_secret_key: invalid value (hidden: secret) (binding 's3')",
        "  line 15: bindings[0].target.properties.endpoint: Value error, must be an http(s) URL such as http://127.0.0.1:9000, "
        "or the word 'embedded' (binding 's3')",
        "  line 17: bindings[0].properties.retry_attempts: Input should be greater than or equal to 1 (binding 's3')",
    ]
    assert "wJalr-NOT-SHOWN" not in result.stderr


def test_validate_reads_kubemq_s3_config_and_says_valid(tmp_path: Path) -> None:
    path = tmp_path / "fixed.yaml"
    fixed = BROKEN.replace("query aws", "query.aws").replace('["wJalr-NOT-SHOWN"]', '"${S3_SECRET}"').replace("ftp://nowhere", "http://minio:9000").replace('"0"', '"3"')
    path.write_text(fixed)
    result = cli("validate", env={"KUBEMQ_S3_CONFIG": str(path), "S3_SECRET": "from-the-environment"})
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{path}: valid (1 binding)\n", "")


def test_unreadable_config_is_one_clear_problem(tmp_path: Path) -> None:
    result = cli("validate", "-c", str(tmp_path / "missing.yaml"))
    assert result.returncode == 1
    assert result.stderr.splitlines()[1].startswith(f"  cannot read config file '{tmp_path / 'missing.yaml'}'")


def test_the_shipped_schema_is_the_generated_one() -> None:
    """Regenerate with `make schema` (kubemq-s3 schema > config.schema.json) after changing a declaration."""
    assert SHIPPED_SCHEMA.read_text() == render_schema(registry())
    printed = cli("schema")
    assert (printed.returncode, printed.stdout) == (0, SHIPPED_SCHEMA.read_text())


def shipped_configs() -> list[Path]:
    configs = [REPO / "config.yaml", *sorted((REPO / "deploy").glob("*/*.yaml"))]
    return [path for path in configs if path.parent.name != "k8s"]


def configmap_config() -> str:
    documents = yaml.safe_load_all((REPO / "deploy/k8s/configmap.yaml").read_text())
    return next(doc for doc in documents if doc and doc["kind"] == "ConfigMap")["data"]["config.yaml"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", [str(path.relative_to(REPO)) for path in shipped_configs()] + ["deploy/k8s/configmap.yaml#config.yaml"])
def test_shipped_configs_match_the_schema_and_pass_validate(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed (add it to the `test` extra)")
    text = configmap_config() if name.endswith("#config.yaml") else (REPO / name).read_text()
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "S3_ACCESS_KEY", "S3_SECRET_KEY", "POD_NAME", "AWS_REGION"):
        monkeypatch.setenv(variable, "stand-in")
    jsonschema.validate(yaml.safe_load(text), json.loads(SHIPPED_SCHEMA.read_text()))
    parse_config(text, registry())


def test_the_schema_rejects_what_validate_rejects() -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed (add it to the `test` extra)")
    schema = json.loads(SHIPPED_SCHEMA.read_text())
    errors = sorted(str(e.message) for e in jsonschema.Draft7Validator(schema).iter_errors(yaml.safe_load(BROKEN.replace("retry_attempts", "retry_atempts"))))
    assert any("retry_atempts" in error for error in errors)
