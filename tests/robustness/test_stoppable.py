"""The process is always stoppable and never harmed by its outputs.

A real ``python -m connector run`` child writes its logs into a pipe whose
reader goes away early (a closed terminal, ``| head``): the lines are dropped
and counted, requests are still served, SIGHUP still reloads, and SIGTERM
still drains every accepted request and exits 0.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

from bindings.kubemq.client import query
from bindings.wire import Request
from devbroker import EmbeddedBroker
from tests.fixtures.kubemq import free_port, s3_binding_yaml
from tests.fixtures.waiting import eventually
from tests.ops.support import REPO, get_text, write_config

CHANNEL = "robust.closed-pipe"


async def dropped_lines(api: str) -> float:
    _, metrics = await get_text(f"{api}/metrics")
    found = re.search(r"^kubemq_s3_log_lines_dropped_total (\S+)$", metrics, re.MULTILINE)
    assert found, "the dropped log lines counter is exported"
    return float(found.group(1))


async def test_a_closed_log_pipe_neither_stops_serving_nor_blocks_sigterm(broker: EmbeddedBroker, seaweed: Any, bucket: str, tmp_path: Path) -> None:
    path, port = tmp_path / "config.yaml", free_port()
    write_config(path, s3_binding_yaml(seaweed, CHANNEL, middleware='\n          rate_per_second: "4"'), broker, port)
    api = f"http://127.0.0.1:{port}"
    read_end, write_end = os.pipe()
    child = await asyncio.create_subprocess_exec(sys.executable, "-m", "connector", "run", "-c", str(path), cwd=REPO, stdout=write_end, stderr=write_end)
    os.close(write_end)
    try:
        await eventually(lambda: _ready(api), timeout=30, interval=0.1)
        await broker.wait_for_subscribers(CHANNEL, 1, kind="queries")
        assert os.read(read_end, 4096)  # it did write to the pipe
        os.close(read_end)  # the reader goes away: every later write gets EPIPE
        read_end = -1

        child.send_signal(signal.SIGHUP)  # a reload logs, into the dead pipe
        await eventually(lambda: _dropped_some(api), timeout=10)
        uploads = [asyncio.create_task(query(broker.address, CHANNEL, Request({"method": "upload_item", "bucket_name": bucket, "item_name": f"p{n}"}, b"x" * 1000), timeout=30)) for n in range(6)]
        await asyncio.sleep(0.3)  # some are in flight, some wait for the rate limit
        child.send_signal(signal.SIGTERM)
        replies = await asyncio.gather(*uploads)
        assert [reply.error for reply in replies if reply.is_error] == []
        assert await asyncio.wait_for(child.wait(), 20) == 0
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        if read_end >= 0:
            os.close(read_end)


async def _ready(api: str) -> bool:
    try:
        return (await get_text(f"{api}/ready"))[0] == 200
    except OSError:
        return False


async def _dropped_some(api: str) -> bool:
    return await dropped_lines(api) > 0
