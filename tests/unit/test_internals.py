"""The libraries' private parts: all present with the pinned versions, and a missing one stops start-up by name."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
from botocore.client import BaseClient
from kubemq.transport.async_transport import AsyncTransport

from bindings.internals import IncompatibleLibrary
from bindings.kubemq.sdk import KUBEMQ_PARTS
from bindings.runtime import Runtime
from connector.app import registry
from connector.cli import main
from connector.s3.internals import AIOBOTOCORE_PARTS, BOTOCORE_PARTS

CONFIG = "apiPort: 0\nbindings: []\n"


@pytest.mark.parametrize("declared", [KUBEMQ_PARTS, BOTOCORE_PARTS, AIOBOTOCORE_PARTS], ids=lambda parts: parts.library)
def test_every_private_part_an_adapter_uses_exists_in_the_pinned_version(declared: object) -> None:
    assert declared.missing() == []  # type: ignore[attr-defined]


async def test_a_missing_kubemq_part_stops_start_up_naming_the_part_the_version_and_the_pin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(AsyncTransport, "_register_stream")
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    runtime = Runtime(path, registry(), configure_logging=False)
    with pytest.raises(IncompatibleLibrary) as refused:
        await runtime.start()
    message = str(refused.value)
    assert message.startswith("kubemq 4.1.5 lacks AsyncTransport._register_stream, which bindings/kubemq/sdk.py uses")
    assert "the supported version is kubemq==4.1.5" in message
    assert runtime.engine.bindings == {}  # nothing started


def test_kubemq_s3_run_refuses_to_start_with_a_missing_botocore_part(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delattr(BaseClient, "_get_credentials")
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    assert main(["run", "-c", str(path)]) == 1
    error = capsys.readouterr().err
    assert "error: botocore 1.40.61 lacks BaseClient._get_credentials, which connector/s3/internals.py uses" in error
    assert "pip install 'botocore>=1.40.46,<1.40.62'" in error


@pytest.mark.parametrize("declared", [KUBEMQ_PARTS, BOTOCORE_PARTS, AIOBOTOCORE_PARTS], ids=lambda parts: parts.library)
def test_the_supported_version_an_adapter_names_is_the_pin_the_project_installs(declared: object) -> None:
    from packaging.requirements import Requirement

    pins = {requirement.name: requirement.specifier for requirement in map(Requirement, importlib.metadata.requires("kubemq-s3") or []) if requirement.marker is None}
    assert pins[declared.library] == Requirement(f"{declared.library}{declared.supported}").specifier  # type: ignore[attr-defined]
