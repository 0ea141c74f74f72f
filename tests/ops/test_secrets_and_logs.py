"""Logs and endpoints of a real connector process: JSON request lines at each binding's level, and never a secret.

The child runs at ``debug`` for one binding, serves successes and failures,
reloads (SIGHUP) a config with a rotated token, refuses one with yet another
token in it, and stops; then its whole output and its endpoints are searched
for every secret value it ever held.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from bindings.kubemq.client import query
from bindings.redaction import MASK
from bindings.wire import Request, Response
from devbroker import EmbeddedBroker
from tests.fixtures.kubemq import free_port
from tests.fixtures.waiting import eventually
from tests.ops.support import connector_process, get_json, get_text, write_config

TOKENS = ("kubemq-token-FIRST-4f1c", "kubemq-token-ROTATED-9a7e", "kubemq-token-REFUSED-2b3d")


def s3_config(seaweed: Any, loud_token: str, *, extra: str = "") -> str:
    def binding(name: str, level: str, token: str) -> str:
        return f"""
  - name: {name}
    source:
      kind: kubemq.query
      properties:
        address: "{{broker}}"
        channel: "ops.logs.{name}"
        auth_token: "{token}"
    target:
      kind: aws.s3
      properties:
        aws_key: "{seaweed.access_key}"
        aws_secret_key: "{seaweed.secret_key}"
        endpoint: "{seaweed.endpoint}"{extra}
    properties:
      log_level: "{level}\""""

    return "apiPort: {api_port}\napiHost: 127.0.0.1\nlogLevel: info\ndrainTimeoutSeconds: 5\nbindings:" + binding("loud", "debug", loud_token) + binding("quiet", "error", TOKENS[0]) + "\n"


async def ask(broker: EmbeddedBroker, binding: str, metadata: dict[str, str], data: bytes = b"") -> Response:
    return await query(broker.address, f"ops.logs.{binding}", Request(metadata, data), timeout=15)


async def test_request_lines_levels_and_no_secret_anywhere(broker: EmbeddedBroker, seaweed: Any, bucket: str, tmp_path: Path) -> None:
    path, port = tmp_path / "config.yaml", free_port()
    api = f"http://127.0.0.1:{port}"
    write_config(path, s3_config(seaweed, TOKENS[0]), broker, port)
    async with connector_process(path, args=("--no-watch",)) as child:
        await child.wait_ready(api)
        for name in ("loud", "quiet"):
            await broker.wait_for_subscribers(f"ops.logs.{name}", 1, kind="queries")
            assert not (await ask(broker, name, {"method": "upload_item", "bucket_name": bucket, "item_name": name}, b"data")).is_error
            assert (await ask(broker, name, {"method": "get_item", "bucket_name": bucket, "item_name": "missing"})).is_error
        assert (await ask(broker, "loud", {"method": "no_such_method"})).is_error
        endpoints = [(await get_text(f"{api}{route}"))[1] for route in ("/bindings", "/bindings/stats", "/config/status", "/metrics")]
        target_config = (await get_json(f"{api}/bindings"))[1][0]["target_config"]
        assert (target_config["aws_key"], target_config["aws_secret_key"]) == (MASK, MASK)

        write_config(path, s3_config(seaweed, TOKENS[1]), broker, port)
        child.send_signal(signal.SIGHUP)
        await eventually(lambda: _reload_result(api, "applied"))
        write_config(path, s3_config(seaweed, TOKENS[2], extra='\n        no_such_property: "x"'), broker, port)
        child.send_signal(signal.SIGHUP)
        status = await eventually(lambda: _reload_result(api, "refused"))
        assert "bindings[0].target.properties.no_such_property: unknown property" in status["last_reload"]["error"]
        endpoints += [(await get_text(f"{api}{route}"))[1] for route in ("/bindings", "/config/status")]

        child.send_signal(signal.SIGTERM)
        assert await child.wait(timeout=20) == 0

    secrets = [*TOKENS, seaweed.access_key, seaweed.secret_key]
    leaks = [secret for secret in secrets for text in (child.output, *endpoints) if secret in text]
    assert leaks == []

    events = child.events()  # every line is JSON: parsing fails otherwise
    lines = [(e["binding"], e["event"], e["level"]) for e in events if e.get("event", "").startswith("request ")]
    assert sorted(set(lines)) == [
        ("loud", "request detail", "debug"),  # above the global info: the binding's own level wins
        ("loud", "request done", "info"),
        ("loud", "request failed", "error"),
        ("quiet", "request failed", "error"),  # below it: successes are not logged
    ]
    for event in (e for e in events if e.get("event", "").startswith("request ")):
        assert {"binding", "method", "request_id", "duration_ms", "timestamp"} <= set(event)
    failed = [e for e in events if e.get("event") == "request failed" and e["binding"] == "loud"]
    assert {e["method"] for e in failed} == {"get_item", "no_such_method"}
    assert any(e.get("event") == "config reloaded" and e["trigger"] == "SIGHUP" and e["restarted"] == ["loud"] for e in events)
    assert any(e.get("event") == "config reload refused; the previous config keeps serving" for e in events)


async def _reload_result(api: str, result: str) -> dict[str, Any] | None:
    status = (await get_json(f"{api}/config/status"))[1]
    return status if status["last_reload"]["trigger"] == "SIGHUP" and status["last_reload"]["result"] == result else None


async def test_secret_values_are_scrubbed_from_any_line_even_inside_free_text() -> None:
    """A secret quoted in an exception message or a library's log line is masked too, in JSON and console output."""
    script = (
        "import logging, structlog, sys\n"
        "from bindings import logs\n"
        "for fmt in ('json', 'console'):\n"
        "    logs.configure('debug', fmt, sys.stdout)\n"
        "    logs.protect(['s3cr3t-\"quoted\"-value', 'abc'])\n"
        "    structlog.get_logger('t').error('boom', error='auth failed for s3cr3t-\"quoted\"-value', nested={'password': 'abc', 'ok': 'fine'})\n"
        "    logging.getLogger('sdk').warning('token %s rejected', 's3cr3t-\"quoted\"-value')\n"
    )
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=Path(__file__).resolve().parents[2])
    output = (await process.communicate())[0].decode()
    assert process.returncode == 0, output
    assert "s3cr3t" not in output
    assert output.count(MASK) >= 6
    assert "fine" in output  # only secrets are masked
