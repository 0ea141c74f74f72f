"""Silent network partitions between the connector and KubeMQ: noticed, reported, and recovered from fast.

A real ``python -m connector run`` reaches the development broker through a
relay (tests/fixtures/relay.py) that stops forwarding without closing
anything, the way a dead node or an expired NAT entry fails.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from bindings.kubemq.client import Connection, query, send_queue
from bindings.wire import Request
from devbroker import EmbeddedBroker
from tests.fixtures.configs import binding, config, target
from tests.fixtures.kubemq import free_port, start_runtime
from tests.fixtures.registries import ECHO_REGISTRY
from tests.fixtures.relay import Relay
from tests.fixtures.s3 import seaweed_properties
from tests.fixtures.waiting import eventually
from tests.ops.support import connector_process, get_text, write_config

QUERY, QUEUE = "partition.query", "partition.queue"
# The partition: 25 s of silence, then new connections work again.
PARTITION_SECONDS = 25.0
# The defaults detect a dead connection within 15 s (10 s ping interval + 5 s timeout); /ready must say so within 20 s.
NOT_READY_WITHIN = 20.0
ANSWERING_WITHIN = 15.0


def config_through(relay: Relay, *bindings: str) -> str:
    """A config whose bindings reach KubeMQ through ``relay``."""
    return config(*bindings).replace('"{broker}"', f'"{relay.address}"')


async def readiness(api: str) -> tuple[int, Any]:
    status, text = await get_text(f"{api}/ready")
    return status, text


def logged(child: Any, event: str, binding_name: str) -> list[dict[str, Any]]:
    return [e for e in child.events() if e.get("event") == event and e.get("binding") == binding_name]


async def test_a_silent_partition_is_reported_and_both_bindings_answer_within_15_s_of_the_heal_losing_nothing(
    broker: EmbeddedBroker, seaweed: Any, s3_client: Any, bucket: str, tmp_path: Path
) -> None:
    s3 = target("aws.s3", seaweed_properties(seaweed))
    async with Relay.to(broker.address) as relay:
        path, port = tmp_path / "config.yaml", free_port()
        write_config(path, config_through(relay, binding("ask", "kubemq.query", QUERY, target=s3), binding("jobs", "kubemq.queue", QUEUE, {"wait_timeout": "1"}, target=s3)), broker, port)
        api = f"http://127.0.0.1:{port}"
        sender = Connection(broker.address, client_id="partition-sender")
        async with connector_process(path) as child:
            await child.wait_ready(api)
            await broker.wait_for_subscribers(QUERY, 1, kind="queries")
            await _upload_through_queue(sender, bucket, "before")
            await eventually(lambda: _has_keys(s3_client, bucket, ["before"]), timeout=15)

            relay.partition()
            partitioned = time.monotonic()
            # Sent while the connector cannot hear: they wait in KubeMQ (or in a poll that went into the void).
            for n in range(5):
                await _upload_through_queue(sender, bucket, f"during-{n}")
            _, body = await eventually(_not_ready(api), timeout=NOT_READY_WITHIN + 1)
            assert time.monotonic() - partitioned <= NOT_READY_WITHIN
            assert "ask" in body and "jobs" in body and "not connected for" in body
            metrics = (await get_text(f"{api}/metrics"))[1]
            assert 'kubemq_s3_binding_ready{binding="ask"} 0.0' in metrics
            assert 'kubemq_s3_binding_ready{binding="jobs"} 0.0' in metrics

            # It stays not ready for the whole partition: no reconnect looks successful on a silent path.
            while time.monotonic() - partitioned < PARTITION_SECONDS:
                assert (await readiness(api))[0] == 503
                await asyncio.sleep(1)

            relay.heal()
            healed = time.monotonic()
            # The broker's side of the dead connections closes, as its TCP does once retransmissions give up:
            # what a dead poll held goes back to the queue.
            relay.release_dead()
            reply = await eventually(_answered(broker), timeout=ANSWERING_WITHIN + 2, interval=0.2)
            assert time.monotonic() - healed <= ANSWERING_WITHIN, f"answered {time.monotonic() - healed:.1f} s after the heal"
            assert not reply.is_error, reply.error
            await eventually(_ready(api), timeout=ANSWERING_WITHIN)

            # Nothing lost on the queue: every upload sent before and during the partition is in the bucket.
            expected = ["before", *(f"during-{n}" for n in range(5))]
            await eventually(lambda: _has_keys(s3_client, bucket, expected), timeout=30)
            assert await broker.queue_depth(QUEUE) == 0
            assert await broker.queue_depth(f"{QUEUE}.dlq") == 0

            for name in ("ask", "jobs"):
                assert len(logged(child, "connection to KubeMQ lost; reconnecting", name)) == 1
                assert len(logged(child, "connection to KubeMQ back", name)) == 1
            child.send_signal(signal.SIGTERM)
            assert await child.wait(timeout=20) == 0


async def test_a_partition_that_never_heals_keeps_the_binding_not_ready_retrying_at_a_capped_rate_and_sigterm_still_stops_it(broker: EmbeddedBroker, seaweed: Any, tmp_path: Path) -> None:
    s3 = target("aws.s3", seaweed_properties(seaweed))
    async with Relay.to(broker.address) as relay:
        path, port = tmp_path / "config.yaml", free_port()
        # Short settings keep the test short; the defaults are proven above.
        source = {"keepalive_interval_seconds": "5", "keepalive_timeout_seconds": "2", "reconnect_max_interval_seconds": "2"}
        write_config(path, config_through(relay, binding("ask", "kubemq.query", f"{QUERY}.forever", source, target=s3)), broker, port)
        api = f"http://127.0.0.1:{port}"
        async with connector_process(path) as child:
            await child.wait_ready(api)
            relay.partition()
            await eventually(_not_ready(api), timeout=5 + 2 + 2)
            attempts_before = relay.accepted
            watched = 12.0
            started = time.monotonic()
            while time.monotonic() - started < watched:
                assert (await readiness(api))[0] == 503
                await asyncio.sleep(0.5)
            # An attempt every 2 s at most (each waits up to 2 s for an answer): 3 to 7 in 12 s.
            attempts = relay.accepted - attempts_before
            assert 3 <= attempts <= 7, f"{attempts} connection attempts in {watched} s"

            stopping = time.monotonic()
            child.send_signal(signal.SIGTERM)
            assert await child.wait(timeout=15) == 0
            assert time.monotonic() - stopping < 10
        assert len(logged(child, "connection to KubeMQ lost; reconnecting", "ask")) == 1
        assert logged(child, "connection to KubeMQ back", "ask") == []
        assert child.events()[-1]["event"] == "connector stopped"


async def _upload_through_queue(sender: Connection, bucket: str, key: str) -> None:
    await send_queue(sender, QUEUE, Request({"method": "upload_item", "bucket_name": bucket, "item_name": key}, key.encode()))


async def _has_keys(s3_client: Any, bucket: str, keys: list[str]) -> bool:
    listed = await s3_client.list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in listed.get("Contents", [])) == sorted(keys)


def _not_ready(api: str) -> Any:
    async def check() -> tuple[int, str] | None:
        status, body = await readiness(api)
        return (status, body) if status == 503 else None

    return check


def _ready(api: str) -> Any:
    async def check() -> bool:
        return (await readiness(api))[0] == 200

    return check


def _answered(broker: EmbeddedBroker) -> Any:
    async def check() -> Any:
        try:
            return await query(broker.address, QUERY, Request({"method": "list_buckets"}), timeout=1, client_id="partition-asker")
        except Exception:  # noqa: BLE001 - not answered yet: the sender times out
            return None

    return check


async def test_a_reply_whose_connection_died_is_counted_and_logged_once_and_the_binding_serves_again(broker: EmbeddedBroker, tmp_path: Path) -> None:
    async with Relay.to(broker.address) as relay:
        source = {"keepalive_interval_seconds": "5", "keepalive_timeout_seconds": "1", "reconnect_max_interval_seconds": "1"}
        running = await start_runtime(config_through(relay, binding("slow", "kubemq.query", f"{QUERY}.slow", source)), tmp_path, broker, ECHO_REGISTRY)
        try:
            with capture_logs() as logs:
                # Done while the path is dead: its reply waits on the silent connection until the watchdog condemns it.
                asker = asyncio.create_task(query(broker.address, f"{QUERY}.slow", Request({"method": "sleep", "milliseconds": "2000"}), timeout=30, client_id="slow-asker"))
                await eventually(lambda: running.runtime.engine.bindings["slow"].source.in_flight == 1)
                relay.partition()
                await eventually(lambda: running.runtime.metrics.undelivered_replies.labels("slow")._value.get() == 1, timeout=5 + 1 + 2)
                assert not running.runtime.engine.readiness()[0]
                relay.heal()
                relay.release_dead()
                await running.wait_ready(timeout=10)
                asker.cancel()
                reply = await query(broker.address, f"{QUERY}.slow", Request({"method": "echo"}, b"again"), timeout=5, client_id="asker")
            assert not reply.is_error and reply.data == b"echo:again"
            [undelivered] = [line for line in logs if line["event"] == "reply not delivered"]
            assert undelivered["binding"] == "slow" and undelivered["log_level"] == "warning"
        finally:
            await running.runtime.stop()
