"""SIGTERM with requests in flight: a real ``python -m connector run`` child, aws.s3 on SeaweedFS."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

from bindings.kubemq.client import query
from bindings.wire import Request
from devbroker import EmbeddedBroker
from tests.fixtures.kubemq import free_port, s3_binding_yaml
from tests.fixtures.waiting import eventually
from tests.ops.support import connector_process, get_json, get_text, write_config

CHANNEL = "ops.shutdown"


async def test_sigterm_answers_every_accepted_request_and_exits_0(broker: EmbeddedBroker, seaweed: Any, s3_client: Any, bucket: str, tmp_path: Path) -> None:
    path, port = tmp_path / "config.yaml", free_port()
    # Four requests a second: eight sent at once are still being served when the signal comes.
    write_config(path, s3_binding_yaml(seaweed, CHANNEL, middleware='\n          rate_per_second: "4"'), broker, port)
    api = f"http://127.0.0.1:{port}"
    async with connector_process(path) as child:
        await child.wait_ready(api)
        await broker.wait_for_subscribers(CHANNEL, 1, kind="queries")
        uploads = [asyncio.create_task(query(broker.address, CHANNEL, Request({"method": "upload_item", "bucket_name": bucket, "item_name": f"k{n}"}, b"x" * 100_000), timeout=30)) for n in range(8)]
        await eventually(lambda: _in_flight(api, 8))
        child.send_signal(signal.SIGTERM)
        status, body = await eventually(_draining(api))
        assert (status, body["reason"]) == (503, "shutting down: draining in-flight requests")

        replies = await asyncio.gather(*uploads)
        assert [r.error for r in replies if r.is_error] == []
        assert await child.wait(timeout=20) == 0

    listed = await s3_client.list_objects_v2(Bucket=bucket)
    assert sorted(o["Key"] for o in listed["Contents"]) == [f"k{n}" for n in range(8)]
    events = [e["event"] for e in child.events()]
    assert "shutdown requested; draining in-flight requests" in events
    assert events[-1] == "connector stopped"
    assert "drain timed out" not in events


def _draining(api: str) -> Any:
    async def check() -> tuple[int, Any] | None:
        # Until the signal is handled, /ready still answers 200 with the plain text "ready".
        status, text = await get_text(f"{api}/ready")
        return (status, json.loads(text)) if status == 503 else None

    return check


async def test_a_second_sigterm_while_draining_exits_at_once(broker: EmbeddedBroker, seaweed: Any, bucket: str, tmp_path: Path) -> None:
    path, port = tmp_path / "config.yaml", free_port()
    # One request a second: the queued ones would keep the drain busy for many seconds.
    write_config(path, s3_binding_yaml(seaweed, f"{CHANNEL}.twice", middleware='\n          rate_per_second: "1"'), broker, port)
    api = f"http://127.0.0.1:{port}"
    async with connector_process(path) as child:
        await child.wait_ready(api)
        await broker.wait_for_subscribers(f"{CHANNEL}.twice", 1, kind="queries")
        uploads = [asyncio.create_task(query(broker.address, f"{CHANNEL}.twice", Request({"method": "upload_item", "bucket_name": bucket, "item_name": f"t{n}"}, b"x"), timeout=30)) for n in range(6)]
        await eventually(lambda: _in_flight(api, 6))
        child.send_signal(signal.SIGTERM)
        await eventually(_draining(api))
        started = asyncio.get_running_loop().time()
        child.send_signal(signal.SIGTERM)
        assert await child.wait(timeout=10) == 128 + signal.SIGTERM.value
        assert asyncio.get_running_loop().time() - started < 5
        for upload in uploads:
            upload.cancel()
        await asyncio.gather(*uploads, return_exceptions=True)
    assert "second stop signal while draining; exiting without waiting for in-flight requests" in [e["event"] for e in child.events()]


async def _in_flight(api: str, count: int) -> bool:
    return (await get_json(f"{api}/bindings"))[1][0]["in_flight"] == count
