"""TLS to KubeMQ: source bindings, the ``send`` client and the embedded broker, with a throwaway CA.

The CA, the server certificate (for 127.0.0.1 and localhost) and a client
certificate are made by the ``openssl`` command in a temporary directory when
the module starts; nothing is committed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from kubemq import AsyncCQClient, KubeMQError

from bindings.config import ResolvedConfig, parse_config
from bindings.errors import ConfigError
from bindings.kubemq.client import send_request
from bindings.kubemq.connection import sdk_tls
from bindings.runtime import Runtime
from connector.cli import main
from devbroker import EmbeddedBroker
from devbroker.server import ServerTLS
from tests.fixtures.certificates import PKI, needs_openssl, openssl
from tests.fixtures.configs import binding, config
from tests.fixtures.kubemq import free_port
from tests.fixtures.waiting import eventually
from tests.sources.support import REGISTRY, printed_json

pytestmark = needs_openssl


def key_body(path: str) -> str:
    """A line from the middle of a PEM key: what must never show up anywhere."""
    return Path(path).read_text().splitlines()[1]


@pytest_asyncio.fixture(scope="module")
async def tls_broker(pki: PKI) -> AsyncIterator[EmbeddedBroker]:
    async with EmbeddedBroker(tls=ServerTLS(Path(pki.server_cert), Path(pki.server_key))) as running:
        yield running


@pytest_asyncio.fixture(scope="module")
async def mtls_broker(pki: PKI) -> AsyncIterator[EmbeddedBroker]:
    async with EmbeddedBroker(tls=ServerTLS(Path(pki.server_cert), Path(pki.server_key), client_ca_file=Path(pki.ca))) as running:
        yield running


@asynccontextmanager
async def connector(directory: Path, broker: EmbeddedBroker, *bindings: str) -> AsyncIterator[Runtime]:
    """A connector whose bindings point at ``broker``; it is not waited for (some are meant to fail)."""
    path = directory / "config.yaml"
    path.write_text(config(*bindings).replace("{broker}", broker.address).replace("{api_port}", str(free_port())))
    runtime = Runtime(path, REGISTRY, configure_logging=False)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


def reason(runtime: Runtime, name: str) -> str:
    return runtime.engine.readiness()[1].get(name, "")


async def get_json(runtime: Runtime, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{runtime.api_port}{path}") as response:
        return response.status, json.loads(await response.text())


async def test_a_binding_with_the_ca_serves_the_send_client_over_tls(pki: PKI, tls_broker: EmbeddedBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with connector(tmp_path, tls_broker, binding("tls", "kubemq.query", "tls.query", {"tls": "true", "tls_ca_file": pki.ca})) as runtime:
        await tls_broker.wait_for_subscribers("tls.query")
        code = await send_request(tls_broker.address, "tls.query", {"method": "echo"}, b"over tls", timeout=10, auth_token=None, output=None, tls=sdk_tls(pki.ca))
        assert (code, printed_json(capsys.readouterr().out)[-1]["data"]) == (0, "echo:over tls")
        assert runtime.engine.readiness() == (True, {})


async def test_without_the_ca_or_with_another_name_the_binding_is_not_ready_and_ready_says_why(pki: PKI, tls_broker: EmbeddedBroker, tmp_path: Path) -> None:
    system_roots = binding("roots", "kubemq.query", "tls.roots", {"tls": "true"})
    other_name = binding("named", "kubemq.query", "tls.named", {"tls_ca_file": pki.ca, "tls_server_name": "kubemq.elsewhere.example"})
    async with connector(tmp_path, tls_broker, system_roots, other_name) as runtime:
        await eventually(lambda: "CERTIFICATE_VERIFY_FAILED" in reason(runtime, "roots") and "Hostname Verification" in reason(runtime, "named"))
        status, body = await get_json(runtime, "/ready")
    assert status == 503
    assert "unable to get local issuer certificate" in body["bindings"]["roots"]
    assert body["bindings"]["named"].startswith("source not subscribed: ")


async def test_mutual_tls_refuses_clients_without_a_certificate_and_serves_those_with_one(pki: PKI, mtls_broker: EmbeddedBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    anonymous = binding("anonymous", "kubemq.query", "mtls.anonymous", {"tls_ca_file": pki.ca})
    known = binding("known", "kubemq.query", "mtls.known", {"tls": "true", "tls_ca_file": pki.ca, "tls_cert_file": pki.client_cert, "tls_key_file": pki.client_key})
    async with connector(tmp_path, mtls_broker, anonymous, known) as runtime:
        await mtls_broker.wait_for_subscribers("mtls.known")
        await eventually(lambda: "Socket closed" in reason(runtime, "anonymous"))
        assert set(runtime.engine.readiness()[1]) == {"anonymous"}

        without = await send_request(mtls_broker.address, "mtls.known", {"method": "echo"}, b"", timeout=5, auth_token=None, output=None, tls=sdk_tls(pki.ca))
        assert (without, capsys.readouterr().err.startswith("error: ")) == (2, True)
        client = sdk_tls(pki.ca, pki.client_cert, pki.client_key)
        code = await send_request(mtls_broker.address, "mtls.known", {"method": "echo"}, b"mine", timeout=10, auth_token=None, output=None, tls=client)
        assert (code, printed_json(capsys.readouterr().out)[-1]["data"]) == (0, "echo:mine")

        args = ["--address", mtls_broker.address, "--channel", "mtls.known", "-m", "method=echo", "--data-text", "shell", "--tls-ca-file", pki.ca]
        args += ["--tls-cert-file", pki.client_cert, "--tls-key-file", pki.client_key, "--tls-server-name", "localhost"]
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "connector.cli", "send", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, stderr.decode()
        assert printed_json(stdout.decode())[-1]["data"] == "echo:shell"

        _, shown = await get_json(runtime, "/bindings")
        text = json.dumps(shown)
        assert pki.client_key in text and key_body(pki.client_key) not in text


async def test_the_broker_command_serves_mutual_tls(pki: PKI) -> None:
    port = free_port()
    args = ["--port", str(port), "--tls-cert-file", pki.server_cert, "--tls-key-file", pki.server_key, "--tls-client-ca-file", pki.ca]
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "connector.cli", "broker", *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        options: dict[str, Any] = {"address": f"127.0.0.1:{port}", "client_id": "tls-probe", "connection_pool_size": 1}
        async with asyncio.timeout(20):
            while True:
                try:
                    async with AsyncCQClient(**options, tls=sdk_tls(pki.ca, pki.client_cert, pki.client_key)) as client:
                        assert (await client.ping()).version
                    break
                except KubeMQError:
                    assert process.returncode is None, (await process.stderr.read()).decode()  # type: ignore[union-attr]
                    await asyncio.sleep(0.1)
        with pytest.raises(KubeMQError):
            async with AsyncCQClient(**options, tls=sdk_tls(pki.ca)):
                pass
    finally:
        process.terminate()
        await process.wait()


def test_the_command_line_refuses_half_a_key_pair_another_key_and_missing_files(pki: PKI, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["send", "--tls-cert-file", pki.client_cert]) == 2
    assert "error: --tls-cert-file and --tls-key-file go together" in capsys.readouterr().err
    assert main(["broker", "--tls-cert-file", pki.server_cert, "--tls-key-file", pki.client_key]) == 2
    assert f"error: --tls-key-file is not the private key of --tls-cert-file ({pki.client_key}, {pki.server_cert})" in capsys.readouterr().err
    assert main(["broker", "--tls-client-ca-file", pki.ca]) == 2
    assert "--tls-client-ca-file needs the server's own --tls-cert-file and --tls-key-file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["broker", "--tls-cert-file", str(tmp_path / "absent.crt")])
    assert exited.value.code == 2
    assert f"argument --tls-cert-file: file not found: {tmp_path / 'absent.crt'}" in capsys.readouterr().err


def parse(source: dict[str, str], address: str = "127.0.0.1:50000") -> ResolvedConfig:
    """Validate a config with one query binding that has these source properties."""
    return parse_config(config(binding("b", "kubemq.query", "q", source)).replace("{broker}", address).replace("{api_port}", "0"), REGISTRY)


def problems(source: dict[str, str], address: str = "127.0.0.1:50000") -> list[str]:
    """What validation says about those source properties (empty: valid)."""
    try:
        parse(source, address)
    except ConfigError as exc:
        return [str(problem) for problem in exc.problems]
    return []


@pytest.mark.parametrize("given", ["tls_cert_file", "tls_key_file"])
def test_a_certificate_without_its_key_or_the_reverse_is_refused_naming_both(pki: PKI, given: str) -> None:
    [problem] = problems({given: pki.client_cert if given == "tls_cert_file" else pki.client_key})
    assert "tls_cert_file and tls_key_file go together: give both (the certificate and its private key), or neither" in problem


def test_tls_files_are_checked_at_config_time_and_shown_by_path_only(pki: PKI, tmp_path: Path) -> None:
    [missing] = problems({"tls_ca_file": str(tmp_path / "absent.crt")})
    assert f"tls_ca_file: Value error, file not found: {tmp_path / 'absent.crt'}" in missing
    swapped = problems({"tls_cert_file": pki.client_key, "tls_key_file": pki.client_cert})
    assert [problem.split(": ", 2)[1] for problem in swapped] == ["bindings[0].source.properties.tls_cert_file", "bindings[0].source.properties.tls_key_file"]
    assert f"no PEM certificate (-----BEGIN CERTIFICATE-----) in {pki.client_key}" in swapped[0]
    assert f"no PEM private key (-----BEGIN ... PRIVATE KEY-----) in {pki.client_cert}" in swapped[1]
    assert key_body(pki.client_key) not in "".join(swapped)
    [directory] = problems({"tls_ca_file": str(tmp_path)})
    assert f"not a regular file: {tmp_path}" in directory
    [other_key] = problems({"tls_cert_file": pki.client_cert, "tls_key_file": pki.server_key})
    assert f"tls_key_file is not the private key of tls_cert_file ({pki.server_key}, {pki.client_cert})" in other_key
    encrypted = tmp_path / "encrypted.key"
    openssl(tmp_path, "pkcs8", "-topk8", "-in", pki.client_key, "-out", str(encrypted), "-passout", "pass:hunter2")
    [locked] = problems({"tls_cert_file": pki.client_cert, "tls_key_file": str(encrypted)})
    assert f"the private key in {encrypted} is encrypted" in locked


def test_tls_options_imply_tls_but_tls_false_with_them_or_the_embedded_broker_is_refused(pki: PKI) -> None:
    properties = parse({"tls_server_name": "kubemq"}).bindings[0].source.properties
    assert (properties.tls, properties.client_config(0).tls.server_name_override) == (True, "kubemq")
    [contradiction] = problems({"tls": "false", "tls_ca_file": pki.ca})
    assert "tls is false but tls_ca_file is set: set tls to true, or remove them" in contradiction
    [embedded] = problems({"tls": "true"}, address="embedded")
    assert "address 'embedded' starts a plaintext development broker" in embedded
    assert problems({"tls": "false"}) == []
