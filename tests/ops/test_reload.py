"""Hot reload end to end: the file is edited under a running, watching connector while requests flow."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aiohttp
import pytest

from bindings import runtime as runtime_module
from bindings.config import load_config
from bindings.errors import ConfigError
from bindings.reload import file_digest
from bindings.runtime import Runtime
from devbroker import EmbeddedBroker
from tests.fixtures.kubemq import RunningConnector, free_port
from tests.fixtures.registries import ECHO_REGISTRY
from tests.fixtures.waiting import eventually
from tests.ops.support import SteadySender, get_json, get_text, watched_connector, write_config
from tests.sources.support import send

REGISTRY = ECHO_REGISTRY


def binding(name: str, channel: str, prefix: str, *, group: str = "", middleware: str = 'log_level: "error"') -> str:
    group_line = f'\n            group: "{group}"' if group else ""
    return f"""
      - name: {name}
        source:
          kind: kubemq.query
          properties:
            address: "{{broker}}"
            channel: "{channel}"
            client_id: "{name}-connector"{group_line}
        target:
          kind: test.echo
          properties:
            prefix: "{prefix}"
        properties:
          {middleware}"""


async def serves_with_prefix(running: RunningConnector, broker: EmbeddedBroker, channel: str, prefix: str) -> None:
    """After a restart: ready, subscribed at the broker, and answering from the new config."""
    await running.wait_ready()
    await broker.wait_for_subscribers(channel, 1, kind="queries")
    assert (await send(broker, channel, {"method": "echo"}, b"x")).data == prefix.encode() + b"x"


def config(*bindings: str) -> str:
    return "apiPort: {api_port}\napiHost: 127.0.0.1\ndrainTimeoutSeconds: 5\nbindings:" + "".join(bindings) + "\n"


async def test_valid_edit_is_applied_binding_by_binding_with_no_failed_request(broker: EmbeddedBroker, tmp_path: Path) -> None:
    path, port = tmp_path / "config.yaml", free_port()
    keep = binding("keep", "r.keep", "keep:")
    write_config(path, config(binding("edit", "r.edit", "v1:", group="s3-workers"), keep, binding("gone", "r.gone", "gone:")), broker, port)
    async with watched_connector(path, REGISTRY, broker) as running:
        engine = running.runtime.engine
        kept = engine.bindings["keep"]
        steady = SteadySender(broker, "r.edit", {"method": "sleep", "milliseconds": "150"})
        steady.start()
        await eventually(lambda: len(steady.replies) >= 8)
        before = len(steady.replies)
        write_config(path, config(binding("edit", "r.edit", "v2:", group="s3-workers", middleware='log_level: "info"'), keep, binding("fresh", "r.fresh", "fresh:")), broker, port)
        await eventually(lambda: running.runtime.status.last_reload_trigger == "file change" and not engine._retiring)
        # The sleep method echoes bare data, so ask the edited binding for its prefix.
        assert (await send(broker, "r.edit", {"method": "echo"}, b"x")).data == b"v2:x"
        await eventually(lambda: len(steady.replies) >= before + 8)
        await steady.stop()

        assert steady.failures == []
        assert running.runtime.status.last_reload_changes == {"started": ["fresh"], "restarted": ["edit"], "stopped": ["gone"], "unchanged": ["keep"]}
        assert engine.bindings["keep"] is kept  # untouched: not even re-subscribed
        assert set(engine.bindings) == {"edit", "keep", "fresh"}
        assert (await send(broker, "r.fresh", {"method": "echo"}, b"y")).data == b"fresh:y"
        _, stats = await get_json(f"{running.api_url}/bindings/stats")
        edit_totals = next(s for s in stats if s["binding"] == "edit")
        assert edit_totals["request_count"] >= len(steady.replies)  # totals carry over the restart


async def test_changed_binding_without_group_finishes_in_flight_requests_first(broker: EmbeddedBroker, tmp_path: Path) -> None:
    path, port = tmp_path / "config.yaml", free_port()
    write_config(path, config(binding("solo", "r.solo", "v1:")), broker, port)
    async with watched_connector(path, REGISTRY, broker) as running:
        slow = [asyncio.create_task(send(broker, "r.solo", {"method": "sleep", "milliseconds": "1500"}, str(n).encode())) for n in range(3)]
        await eventually(lambda: running.runtime.engine.bindings["solo"].source.in_flight == 3)
        write_config(path, config(binding("solo", "r.solo", "v2:")), broker, port)
        replies = await asyncio.gather(*slow)
        assert [(r.is_error, r.data) for r in replies] == [(False, b"0"), (False, b"1"), (False, b"2")]
        await eventually(lambda: running.runtime.status.last_reload_changes.get("restarted") == ["solo"])
        await serves_with_prefix(running, broker, "r.solo", "v2:")


async def test_invalid_edit_is_refused_the_old_config_serves_and_the_error_is_shown(broker: EmbeddedBroker, tmp_path: Path) -> None:
    path, port = tmp_path / "config.yaml", free_port()
    good = config(binding("echo", "r.invalid", "v1:"))
    write_config(path, good, broker, port)
    async with watched_connector(path, REGISTRY, broker) as running:
        api = running.api_url
        broken = good.replace("kind: test.echo", "kind: test.nosuch").replace('log_level: "error"', 'retry_attempts: "zero"')
        write_config(path, broken, broker, port)
        _, status = await eventually(lambda: _refused(api))
        with pytest.raises(ConfigError) as expected:
            load_config(path, REGISTRY)  # what `kubemq-s3 validate` reports for the same file
        assert status["last_reload"]["error"] == str(expected.value)
        assert status["last_reload"]["error"].splitlines() == [
            "line 13: bindings[0].target.kind: invalid kind 'test.nosuch' for target; valid kinds: test.echo (binding 'echo')",
            "line 17: bindings[0].properties.retry_attempts: Input should be a valid integer, unable to parse string as an integer (binding 'echo')",
        ]
        assert status["last_reload"]["trigger"] == "file change" and status["bindings"] == ["echo"]

        assert (await send(broker, "r.invalid", {"method": "echo"}, b"x")).data == b"v1:x"
        assert (await get_text(f"{api}/ready"))[0] == 200
        listing = (await get_json(f"{api}/bindings"))[1]
        assert [b["binding"] for b in listing] == ["echo"]  # still the kubemq-targets list
        metrics = (await get_text(f"{api}/metrics"))[1]
        assert "kubemq_s3_config_last_reload_successful 0.0" in metrics

        write_config(path, good.replace('"v1:"', '"v3:"'), broker, port)
        await eventually(lambda: running.runtime.status.last_reload_result == "applied")
        assert running.runtime.status.last_reload_error is None
        assert "kubemq_s3_config_last_reload_successful 1.0" in (await get_text(f"{api}/metrics"))[1]
        await serves_with_prefix(running, broker, "r.invalid", "v3:")


async def _refused(api: str) -> tuple[int, dict] | None:  # type: ignore[type-arg]
    code, status = await get_json(f"{api}/config/status")
    return (code, status) if status["last_reload"]["result"] == "refused" else None


async def test_configmap_symlink_swap_is_noticed(broker: EmbeddedBroker, tmp_path: Path) -> None:
    """The kubelet's atomic writer: a new timestamped directory, ``..data`` renamed over to point at it."""
    volume, port = tmp_path / "volume", free_port()
    volume.mkdir()

    def publish(version: str, text: str) -> None:
        directory = volume / f"..2024_01_01_00_00_0{version}.000000001"
        directory.mkdir()
        write_config(directory / "config.yaml", text, broker, port)
        (volume / "..data_tmp").symlink_to(directory.name)
        os.replace(volume / "..data_tmp", volume / "..data")

    publish("1", config(binding("cm", "r.configmap", "v1:")))
    (volume / "config.yaml").symlink_to("..data/config.yaml")
    async with watched_connector(volume / "config.yaml", REGISTRY, broker) as running:
        assert (await send(broker, "r.configmap", {"method": "echo"}, b"x")).data == b"v1:x"
        publish("2", config(binding("cm", "r.configmap", "v2:")))
        await eventually(lambda: running.runtime.status.last_reload_changes.get("restarted") == ["cm"])
        assert running.runtime.status.last_reload_trigger == "file change"
        await serves_with_prefix(running, broker, "r.configmap", "v2:")


async def test_touching_the_file_without_changing_it_reloads_nothing(broker: EmbeddedBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, port = tmp_path / "config.yaml", free_port()
    text = config(binding("same", "r.same", "v1:"))
    write_config(path, text, broker, port)
    async with watched_connector(path, REGISTRY, broker) as running:
        first = running.runtime.engine.bindings["same"]
        looked: list[Path] = []  # every time the watcher compares the file with the config served

        def digest(checked: Path) -> str | None:
            looked.append(checked)
            return file_digest(checked)

        monkeypatch.setattr(runtime_module, "file_digest", digest)
        write_config(path, text, broker, port)  # same content, new inode and mtime
        (tmp_path / "neighbour.txt").write_text("unrelated file in the same directory")
        await eventually(lambda: looked)  # the watcher saw the touch and compared
        assert running.runtime.status.last_reload_trigger == "start"
        assert running.runtime.engine.bindings["same"] is first


async def test_shutdown_during_a_reload_drains_once_and_starts_nothing_more(broker: EmbeddedBroker, tmp_path: Path) -> None:
    path, port = tmp_path / "config.yaml", free_port()
    write_config(path, config(binding("late", "r.late", "v1:")), broker, port)
    runtime = Runtime(path, REGISTRY, configure_logging=False)
    await runtime.start()
    try:
        await RunningConnector(runtime, path).wait_ready()
        await broker.wait_for_subscribers("r.late", 1, kind="queries")
        slow = [asyncio.create_task(send(broker, "r.late", {"method": "sleep", "milliseconds": "1000"}, str(n).encode())) for n in range(2)]
        await eventually(lambda: runtime.engine.bindings["late"].source.in_flight == 2)
        write_config(path, config(binding("late", "r.late", "v2:")), broker, port)
        reload = asyncio.create_task(runtime.reload("test"))
        await eventually(lambda: runtime.engine._stopping)  # the old binding is draining
    finally:
        started = asyncio.get_running_loop().time()
        await runtime.stop()
    assert asyncio.get_running_loop().time() - started < 2.0  # one drain, not two
    assert [(r.is_error, r.data) for r in await asyncio.gather(*slow)] == [(False, b"0"), (False, b"1")]
    assert await reload is True
    assert runtime.engine.bindings == {}  # the replacement was never launched: it would be listed


async def test_a_new_api_address_is_served_and_the_old_one_closed(broker: EmbeddedBroker, tmp_path: Path) -> None:
    path, port, moved = tmp_path / "config.yaml", free_port(), free_port()
    text = config(binding("api", "r.api", "v1:"))
    write_config(path, text, broker, port)
    async with watched_connector(path, REGISTRY, broker) as running:
        write_config(path, text, broker, moved)
        await eventually(lambda: running.runtime.api_port == moved)
        assert await get_text(f"http://127.0.0.1:{moved}/health") == (200, "ok")
        with pytest.raises(aiohttp.ClientConnectionError):
            await get_text(f"http://127.0.0.1:{port}/health")
        assert running.runtime.status.last_reload_changes["unchanged"] == ["api"]
