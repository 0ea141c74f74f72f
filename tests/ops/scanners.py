"""The platform team's tools, from their own virtualenv (`make scanners`, which `make test` runs first).

checkov pins its own boto3/botocore, so none of these can live in .venv. A
missing tool fails the test that needs it, naming the command that installs it:
a skip would let CI pass without ever scanning.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.ops.support import REPO

SCANNERS = REPO / ".venv-scanners" / "bin"
K8S = REPO / "deploy" / "k8s"
# The commented-out lines of deploy/k8s/kustomization.yaml that enable the monitoring component.
COMMENTED_COMPONENTS = re.compile(r"^# (components:\n)# ( +- monitoring\n)", re.MULTILINE)


def tool(name: str) -> Path:
    path = SCANNERS / name
    assert path.is_file(), f"{path} is missing: run `make scanners` (`make test` does)"
    return path


def run(name: str, *args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a scanner from the repository root; its own bin directory first on PATH (checkov finds kubectl there)."""
    environment = {**os.environ, "PATH": f"{SCANNERS}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})}
    result = subprocess.run([str(tool(name)), *args], cwd=REPO, env=environment, capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, f"{name} {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize directory``: what ``kubectl apply -k`` would send, one dict per object."""
    return [doc for doc in yaml.safe_load_all(run("kubectl", "kustomize", str(directory)).stdout) if doc]


def copy_with_monitoring(destination: Path) -> Path:
    """A copy of deploy/k8s with the monitoring component enabled as the kustomization's comment says."""
    copy = destination / "k8s"
    shutil.copytree(K8S, copy)
    kustomization = copy / "kustomization.yaml"
    text, enabled = COMMENTED_COMPONENTS.subn(r"\1\2", kustomization.read_text())
    assert enabled == 1, "deploy/k8s/kustomization.yaml no longer carries the commented `components: [monitoring]`"
    kustomization.write_text(text)
    return copy
