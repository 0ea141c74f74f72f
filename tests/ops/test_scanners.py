"""The platform team's scanners pass: hadolint on the Dockerfile, checkov on deploy/k8s and the Dockerfile, kubernetes-validate.

checkov runs with its default frameworks, as a platform pipeline would: with
kubectl on its PATH that includes `kustomize`, which scans the rendered output.
Every finding it may skip is skipped in the manifest itself (so the platform
team's own run skips it too) and justified in docs/operations.md.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.scanners import K8S, copy_with_monitoring, kustomize, run
from tests.ops.support import REPO

DOCKERFILE = REPO / "Dockerfile"
# Built-in kinds are validated against the schemas of the oldest and the newest Kubernetes kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.25.0", "1.37.0")
CRD_GROUPS = ("monitoring.coreos.com/",)
INLINE_SKIP = re.compile(r"checkov:skip=(CKV\w*?_\d+):")


def test_hadolint_passes_the_dockerfile_with_no_ignores(tmp_path: Path) -> None:
    assert "hadolint ignore" not in DOCKERFILE.read_text()
    assert not list(REPO.glob(".hadolint.y*ml"))
    # No user-level config either: HOME and XDG_CONFIG_HOME point at an empty directory.
    result = run("hadolint", "--no-color", "Dockerfile", check=False, env={"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)})
    assert (result.returncode, result.stdout.strip()) == (0, ""), result.stdout + result.stderr


def checkov(*args: str) -> list[dict[str, Any]]:
    """One report per framework that found something to scan."""
    result = run("checkov", *args, "--output", "json", "--skip-download", check=False, env={"CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"})
    assert result.returncode in (0, 1), f"checkov crashed ({result.returncode}):\n{result.stderr[-3000:]}"
    reports = json.loads(result.stdout)
    return [report for report in (reports if isinstance(reports, list) else [reports]) if "check_type" in report]


def declared_skips() -> dict[str, str]:
    """check id -> where it is skipped: `checkov.io/skipN` annotations and `checkov:skip=` comments."""
    skips: dict[str, str] = {}
    for path in sorted(K8S.rglob("*.yaml")):
        for document in (doc for doc in yaml.safe_load_all(path.read_text()) if doc):
            for key, value in document.get("metadata", {}).get("annotations", {}).items():
                if key.startswith("checkov.io/skip"):
                    check, _, reason = value.partition("=")
                    assert reason and "=" not in reason, f"{path.name}: checkov reads `CHECK_ID=reason` with one '=': {value}"
                    skips[check] = path.name
    for path in [DOCKERFILE, *K8S.rglob("*.yaml")]:
        skips.update({check: path.name for check in INLINE_SKIP.findall(path.read_text())})
    return skips


def documented_skips() -> set[str]:
    """The check ids in the justification table of docs/operations.md."""
    text = (REPO / "docs" / "operations.md").read_text()
    section = re.split(r"\n#{2,3} ", text.split("\n### Scanner findings\n", 1)[1], maxsplit=1)[0]
    return {match.group(1) for match in re.finditer(r"^\| `(CKV\w*?_\d+)` \|", section, re.MULTILINE)}


def test_checkov_passes_deploy_k8s_and_the_dockerfile_except_the_documented_skips() -> None:
    reports = checkov("--directory", "deploy/k8s") + checkov("--file", "Dockerfile")
    assert {"kubernetes", "kustomize", "dockerfile"} <= {report["check_type"] for report in reports}, "a framework did not run (kubectl not on checkov's PATH?)"
    failed = [f"{report['check_type']}: {check['check_id']} {check['check_name']} ({check['file_path']})" for report in reports for check in report["results"]["failed_checks"]]
    assert failed == []
    assert all(report["summary"]["parsing_errors"] == 0 for report in reports)
    declared = declared_skips()
    skipped = {check["check_id"] for report in reports for check in report["results"]["skipped_checks"]}
    assert skipped <= set(declared)
    assert set(declared) == documented_skips(), "every skip is justified in docs/operations.md, and every justification is in use"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kubernetes_validate_strict_on_what_kustomize_renders(version: str, tmp_path: Path) -> None:
    """The base, and the base with the monitoring component; CRD kinds have no schema (test_monitoring checks them)."""
    documents = [doc for doc in kustomize(copy_with_monitoring(tmp_path)) if not doc["apiVersion"].startswith(CRD_GROUPS)]
    assert {doc["kind"] for doc in documents} >= {"Deployment", "NetworkPolicy", "ConfigMap", "Service"}
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(documents))
    result = run("kubernetes-validate", "--strict", "--kubernetes-version", version, str(rendered), check=False)
    assert result.returncode == 0 and "ERROR" not in result.stdout + result.stderr, result.stdout + result.stderr
    assert result.stdout.count("passed for resource") == len(documents)
