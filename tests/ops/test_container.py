"""The Dockerfile's structure (it cannot be built here): stages, user, health check, no build tools, wheels only."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from importlib import metadata

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.ops.support import REPO

BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|cc|make|build-essential|apt-get|apk|curl|wget)\b")
# A wheel tag's platform part: any platform, or a manylinux/musllinux build that runs on any distribution.
PORTABLE_TAG = re.compile(r"-(any|(many|musl)linux[_0-9a-z]*)$")


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for word, args in self.instructions if word == keyword]


def stages() -> list[Stage]:
    """The Dockerfile's stages, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    found: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = args.split()
            found.append(Stage(parts[0], parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else ""))
        elif found:
            found[-1].instructions.append((keyword, args.strip()))
    return found


def exec_form(args: str) -> list[str]:
    return json.loads(args)  # type: ignore[no-any-return]


def test_two_stages_on_slim_python_311() -> None:
    builder, final = stages()
    top = (REPO / "Dockerfile").read_text()
    default = {name: re.search(rf"^ARG {name}=(\S+)$", top, re.MULTILINE).group(1) for name in ("PYTHON_IMAGE", "PYTHON_TAG")}  # type: ignore[union-attr]
    assert default["PYTHON_IMAGE"] == "python" and re.fullmatch(r"3\.11-slim(-\w+)?", default["PYTHON_TAG"])
    # The tag written out in FROM, so scanners that do not expand ARGs see one (checkov CKV_DOCKER_7).
    assert (builder.base, final.base) == ("${PYTHON_IMAGE}:${PYTHON_TAG}", "${PYTHON_IMAGE}:${PYTHON_TAG}")
    assert (builder.name, final.name) == ("builder", "runtime")
    assert any("EXTRAS" in arg for arg in builder.all("ARG"))
    assert any("[tracing${EXTRAS:+,$EXTRAS}]" in run for run in builder.all("RUN")), "tracing always; the embedded extra is optional"


def test_final_stage_gets_only_the_virtualenv_and_a_default_config() -> None:
    final = stages()[-1]
    copies = [shlex.split(args) for args in final.all("COPY")]
    assert copies == [["--from=builder", "/opt/kubemq-s3", "/opt/kubemq-s3"], ["deploy/docker/config.yaml", "/etc/kubemq-s3/config.yaml"]]
    assert final.all("ADD") == []


def test_the_builder_copies_every_package_the_wheel_is_built_from() -> None:
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {path.parent.name for path in REPO.glob("*/__init__.py") if any(fnmatch.fnmatch(path.parent.name, pattern) for pattern in patterns)}
    assert {"bindings", "connector"} <= packages
    copied = {shlex.split(args)[0] for args in stages()[0].all("COPY")}
    assert packages <= copied, f"the image's wheel would lack {sorted(packages - copied)}"


def test_no_stage_installs_build_tools_and_dependencies_come_only_as_wheels() -> None:
    for stage in stages():
        for word, args in stage.instructions:
            if word in ("RUN", "COPY", "ADD"):
                assert not BUILD_TOOLS.search(args), f"build tool in stage {stage.name}: {word} {args}"
    (install,) = [run for run in stages()[0].all("RUN") if "pip install" in run and "/wheels/" in run]
    assert "--only-binary=:all:" in install, "without a compiler, a dependency without a wheel must fail the build, not try to compile"


def test_every_dependency_installed_here_came_as_a_portable_wheel() -> None:
    """What the image installs (any extra but ``test``) came as pure or manylinux wheels: the builder needs no compiler.

    A wheel pip built locally from an sdist is tagged ``linux_<arch>``. This checks this
    machine's platform; the image's (amd64 and arm64) was checked with
    ``pip download --only-binary=:all: --platform manylinux2014_<arch>``.
    """
    root = metadata.distribution("kubemq-s3")
    extras = {""} | {extra for extra in root.metadata.get_all("Provides-Extra") or [] if extra != "test"}
    pending = [Requirement(text) for text in root.requires or []]
    pending = [req for req in pending if req.marker is None or any(req.marker.evaluate({"extra": extra}) for extra in extras)]
    seen: dict[str, list[str]] = {}
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in seen or name == "kubemq-s3":
            continue
        dist = metadata.distribution(name)
        seen[name] = [line.split(": ", 1)[1] for line in (dist.read_text("WHEEL") or "").splitlines() if line.startswith("Tag: ")]
        pending += [req for req in map(Requirement, dist.requires or []) if req.marker is None or req.marker.evaluate({"extra": ""})]
    assert len(seen) > 20
    unportable = {name: tags for name, tags in seen.items() if not tags or not all(PORTABLE_TAG.search(tag) for tag in tags)}
    assert unportable == {}, "built here from source: the image's builder has no compiler"


def test_runs_as_uid_10001_with_the_documented_config_path() -> None:
    final = stages()[-1]
    assert final.all("USER") == ["10001:10001"]
    assert any("--uid 10001" in run for run in final.all("RUN"))
    env = " ".join(final.all("ENV"))
    assert "KUBEMQ_S3_CONFIG=/etc/kubemq-s3/config.yaml" in env
    deployment = yaml.safe_load((REPO / "deploy/k8s/deployment.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert {"name": "KUBEMQ_S3_CONFIG", "value": "/etc/kubemq-s3/config.yaml"} in container["env"]
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 10001


def test_healthcheck_uses_python_urllib_on_the_exposed_port() -> None:
    final = stages()[-1]
    assert final.all("EXPOSE") == ["8080"]
    (healthcheck,) = final.all("HEALTHCHECK")
    options, _, command = healthcheck.partition("CMD ")
    assert "--interval=" in options and "--timeout=" in options
    argv = exec_form(command)
    assert argv[:2] == ["python", "-c"]
    assert "urllib.request" in argv[2] and "http://127.0.0.1:8080/health" in argv[2]
    assert not re.search(r"\b(curl|wget)\b", healthcheck)
    assert exec_form(final.all("ENTRYPOINT")[0]) == ["kubemq-s3"]
    assert exec_form(final.all("CMD")[0]) == ["run"]
    default_config = yaml.safe_load((REPO / "deploy/docker/config.yaml").read_text())
    assert default_config["apiPort"] == 8080


def test_dockerignore_keeps_the_context_small_but_not_what_the_build_copies() -> None:
    patterns = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    ignored = [p for p in patterns if not p.startswith("!")]
    kept = [p[1:] for p in patterns if p.startswith("!")]
    assert {".git", ".venv", "tests", "**/__pycache__"} <= set(ignored)

    def excluded(path: str) -> bool:
        hit = any(fnmatch.fnmatch(path, p) or path.startswith(p + "/") for p in ignored)
        return hit and not any(path == k or path.startswith(k + "/") for k in kept)

    sources = [shlex.split(args)[0:-1] for stage in stages() for args in stage.all("COPY")]
    for source in (s for group in sources for s in group if not s.startswith("--")):
        assert not excluded(source), f"{source} is copied but .dockerignore leaves it out"
