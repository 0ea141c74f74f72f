"""The kubemq.query source end to end: official SDK sender -> embedded broker -> engine -> target."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from unittest.mock import Mock

import aiohttp
import pytest
from kubemq import AsyncCQClient, QueryMessage, RetryPolicy

from bindings.kubemq.client import query
from bindings.kubemq.connection import SubscriptionProperties
from bindings.kubemq.query import QuerySource
from bindings.kubemq.subscription import ConnectionLost
from bindings.source import Outcome
from bindings.wire import Request, Response
from devbroker import EmbeddedBroker
from tests.fixtures.echo_target import EchoTarget
from tests.fixtures.kubemq import StartConnector
from tests.fixtures.registries import ECHO_REGISTRY
from tests.fixtures.waiting import eventually
from tests.sources.support import PeakInFlight, send

REGISTRY = ECHO_REGISTRY


def echo_yaml(channel: str, *, source_extra: str = "", middleware: str = "", target_extra: str = "") -> str:
    return f"""
    apiPort: {{api_port}}
    apiHost: 127.0.0.1
    drainTimeoutSeconds: 5
    bindings:
      - name: echo
        source:
          kind: kubemq.query
          properties:
            address: "{{broker}}"
            channel: "{channel}"
            client_id: "echo-connector"{source_extra}
        target:
          kind: test.echo
          properties:
            prefix: "echo:"
            secret_word: "hunter2-secret"{target_extra}
        properties:
          log_level: "error"{middleware}
    """


async def test_query_round_trip_with_kubemq_targets_reply_shape(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    await start_connector(echo_yaml("q.roundtrip"), REGISTRY)
    async with AsyncCQClient(address=broker.address, client_id="raw-sender", connection_pool_size=1, retry_policy=RetryPolicy(max_retries=0)) as client:
        body = Request(metadata={"method": "echo"}, data=b"hello").to_json()
        reply = await client.send_query(QueryMessage(channel="q.roundtrip", body=body, timeout_in_seconds=10))
    assert reply.is_executed
    assert json.loads(reply.body) == {"metadata": {"result": "ok"}, "data": "ZWNobzpoZWxsbw==", "is_error": False, "error": ""}


async def test_errors_are_replies_with_executed_true(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    await start_connector(echo_yaml("q.errors"), REGISTRY)
    unknown = await send(broker, "q.errors", {"method": "nope"})
    assert unknown.is_error
    assert unknown.error == "All attempts fail:\n#1: invalid method type, method type should be one of the following: :echo, :sleep, :write, :fail, :crash, :unsendable,"
    bad_type = await query(broker.address, "q.errors", Request(), timeout=10)
    assert bad_type.is_error and bad_type.error.startswith("All attempts fail:\n#1: invalid method type")
    failed = await send(broker, "q.errors", {"method": "fail", "code": "NoSuchKey"})
    assert (failed.is_error, failed.error, failed.metadata, failed.data) == (True, "All attempts fail:\n#1: NoSuchKey: injected failure", {}, None)


async def test_malformed_data_type_gets_the_kubemq_targets_error(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    await start_connector(echo_yaml("q.malformed"), REGISTRY)
    async with AsyncCQClient(address=broker.address, client_id="raw-sender", connection_pool_size=1, retry_policy=RetryPolicy(max_retries=0)) as client:
        reply = await client.send_query(QueryMessage(channel="q.malformed", body=b'{"metadata":{"method":"echo"},"data":12}', timeout_in_seconds=10))
    assert json.loads(reply.body)["error"] == "invalid request format, invalid data format, float64"


async def test_concurrency_is_bounded_by_max_concurrency(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    running = await start_connector(echo_yaml("q.bounded", source_extra='\n            max_concurrency: "3"'), REGISTRY)
    target = running.runtime.engine.bindings["echo"].target
    assert isinstance(target, EchoTarget) and target.context is not None and target.context.max_concurrency == 3
    started = asyncio.get_running_loop().time()
    async with PeakInFlight(running.runtime.engine.bindings["echo"].source) as in_flight:
        replies = await asyncio.gather(*(send(broker, "q.bounded", {"method": "sleep", "milliseconds": "200"}, str(i).encode()) for i in range(9)))
    elapsed = asyncio.get_running_loop().time() - started
    assert sorted(r.data for r in replies) == sorted(str(i).encode() for i in range(9))
    assert in_flight.peak == 3
    assert elapsed >= 0.55  # 9 requests of 200 ms, 3 at a time: at least three rounds


async def test_survives_broker_restart_and_serves_again(start_connector: StartConnector, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A broker of its own, so restarting it does not disturb other tests.
    first = EmbeddedBroker(host="127.0.0.1", port=0)
    await first.start()
    port = first.port
    from tests.fixtures.kubemq import start_runtime

    running = await start_runtime(echo_yaml("q.restart", source_extra='\n            reconnect_interval_seconds: "0.2"'), tmp_path, first, REGISTRY)
    try:
        assert (await send(first, "q.restart", {"method": "echo"}, b"before")).data == b"echo:before"
        await first.stop()
        second = EmbeddedBroker(host="127.0.0.1", port=port)
        await second.start()
        try:
            await second.wait_for_subscribers("q.restart", 1, timeout=30)
            reply = await send(second, "q.restart", {"method": "echo"}, b"after")
            assert reply.data == b"echo:after"
            await running.wait_ready()
        finally:
            await running.runtime.stop()
            await second.stop()
    finally:
        await first.stop()


async def test_parallel_sources_share_a_group_so_each_request_is_served_once(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    running = await start_connector(echo_yaml("q.parallel", source_extra='\n            sources: "3"'), REGISTRY)
    replies = await asyncio.gather(*(send(broker, "q.parallel", {"method": "echo"}, b"x") for _ in range(12)))
    assert all(r.data == b"echo:x" for r in replies)
    target = running.runtime.engine.bindings["echo"].target
    assert isinstance(target, EchoTarget) and target.calls == 12


async def test_retry_middleware_retries_only_retryable_errors(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    running = await start_connector(
        echo_yaml("q.retry", middleware='\n          retry_attempts: "3"\n          retry_delay_milliseconds: "10"\n          retry_max_jitter_milliseconds: "5"'), REGISTRY
    )
    target = running.runtime.engine.bindings["echo"].target
    assert isinstance(target, EchoTarget)
    recovered = await send(broker, "q.retry", {"method": "fail", "code": "SlowDown", "retryable": "true", "times": "2"}, b"ok")
    assert (recovered.is_error, recovered.data) == (False, b"ok")
    assert target.calls == 3
    final = await send(broker, "q.retry", {"method": "fail", "code": "NoSuchKey", "retryable": "false"})
    assert final.error == "All attempts fail:\n#1: NoSuchKey: injected failure"  # tried and listed once
    assert target.calls == 4


async def test_api_health_ready_metrics_and_redacted_bindings(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    running = await start_connector(echo_yaml("q.api", source_extra='\n            auth_token: ""'), REGISTRY)
    await send(broker, "q.api", {"method": "echo"}, b"1")
    await send(broker, "q.api", {"method": "fail"})
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{running.api_url}/health") as resp:
            assert (resp.status, await resp.text()) == (200, "ok")
        async with http.get(f"{running.api_url}/ready") as resp:
            assert resp.status == 200
        async with http.get(f"{running.api_url}/metrics") as resp:
            text = await resp.text()
        assert 'kubemq_s3_requests_total{binding="echo",method="echo",source_kind="kubemq.query",target_kind="test.echo"} 1.0' in text
        assert 'kubemq_s3_errors_total{binding="echo",code="InternalError",method="fail",source_kind="kubemq.query",target_kind="test.echo"} 1.0' in text
        assert 'kubemq_s3_binding_ready{binding="echo"} 1.0' in text
        async with http.get(f"{running.api_url}/bindings") as resp:
            listing = await resp.text()
        assert "hunter2-secret" not in listing
        status = json.loads(listing)[0]
        assert status["target_config"]["secret_word"] == "*****"
        assert (status["ready"], status["source_connection"]) == (True, f"{broker.address}/q.api")
        async with http.get(f"{running.api_url}/bindings/stats") as resp:
            stats = (await resp.json())[0]
        assert (stats["request_count"], stats["errors_count"], stats["response_count"]) == (2, 1, 1)


async def test_ready_is_503_with_a_reason_until_subscribed(start_connector: StartConnector, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from bindings.runtime import Runtime
    from tests.fixtures.kubemq import free_port

    path = tmp_path / "config.yaml"
    path.write_text(echo_yaml("q.nobroker").replace("{broker}", f"127.0.0.1:{free_port()}").replace("{api_port}", str(free_port())))
    runtime = Runtime(path, REGISTRY, configure_logging=False)
    await runtime.start()
    try:
        # Until its first attempt has failed, the binding may still say it is starting; then it says why.
        await eventually(lambda: runtime.engine.readiness()[1].get("echo", "").startswith("source not subscribed"))
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{runtime.api_port}/ready") as resp:
            assert resp.status == 503
            body = await resp.json()
        assert body["ready"] is False
        assert body["bindings"]["echo"].startswith("source not subscribed")
    finally:
        await runtime.stop()


@pytest.mark.parametrize("body", [b"", b"   "])
async def test_empty_or_raw_bodies_never_crash_the_subscription(broker: EmbeddedBroker, start_connector: StartConnector, body: bytes) -> None:
    channel = f"q.raw{len(body)}"
    await start_connector(echo_yaml(channel), REGISTRY)
    async with AsyncCQClient(address=broker.address, client_id="raw-sender", connection_pool_size=1, retry_policy=RetryPolicy(max_retries=0)) as client:
        reply = await client.send_query(QueryMessage(channel=channel, body=body, metadata="m", timeout_in_seconds=10))
    parsed = json.loads(reply.body)
    assert parsed["is_error"] is True
    expected = "invalid request format, empty request" if not body else "All attempts fail:\n#1: invalid method type"
    assert parsed["error"].startswith(expected)
    assert (await send(broker, channel, {"method": "echo"}, b"still alive")).data == b"echo:still alive"


async def test_a_request_cut_off_by_the_drain_timeout_still_gets_an_error_reply(broker: EmbeddedBroker, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.fixtures.kubemq import start_runtime

    running = await start_runtime(echo_yaml("q.cutoff").replace("drainTimeoutSeconds: 5", "drainTimeoutSeconds: 0.3"), tmp_path, broker, REGISTRY)
    slow = asyncio.create_task(send(broker, "q.cutoff", {"method": "sleep", "milliseconds": "20000"}, timeout=15))
    await eventually(lambda: running.runtime.engine.bindings["echo"].source.in_flight == 1)
    started = asyncio.get_running_loop().time()
    await running.runtime.stop()
    reply = await slow
    assert asyncio.get_running_loop().time() - started < 5
    assert reply.is_error
    assert reply.error == "the connector is shutting down and the request did not finish within the drain timeout"


async def test_malformed_requests_are_counted_and_logged(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    running = await start_connector(echo_yaml("q.counted"), REGISTRY)
    async with AsyncCQClient(address=broker.address, client_id="raw-sender", connection_pool_size=1, retry_policy=RetryPolicy(max_retries=0)) as client:
        reply = await client.send_query(QueryMessage(channel="q.counted", body=b'{"data":[1]}', timeout_in_seconds=10))
    assert json.loads(reply.body)["error"] == "invalid request format, invalid data format, []interface {}"
    stats = running.runtime.metrics.stats["echo"]
    assert (stats.request_count, stats.errors_count) == (1, 1)
    async with aiohttp.ClientSession() as http, http.get(f"{running.api_url}/metrics") as resp:
        text = await resp.text()
    assert 'kubemq_s3_errors_total{binding="echo",code="InvalidRequestError",method="invalid",source_kind="kubemq.query",target_kind="test.echo"} 1.0' in text


async def test_http_request_endpoint_is_off_unless_enabled(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    payload = {"binding": "echo", "payload": {"metadata": {"method": "echo"}, "data": "aGk="}}
    closed = await start_connector(echo_yaml("q.http.off"), REGISTRY)
    opened = await start_connector(echo_yaml("q.http.on").replace("apiHost: 127.0.0.1", "apiHost: 127.0.0.1\n    apiRequests: true"), REGISTRY)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{closed.api_url}/bindings/request", json=payload) as resp:
            assert resp.status == 403
            assert "apiRequests: true" in (await resp.json())["error"]
        async with http.post(f"{opened.api_url}/bindings/request", json=payload) as resp:
            assert resp.status == 200
            assert await resp.json() == {"metadata": {"result": "ok"}, "data": "ZWNobzpoaQ==", "is_error": False, "error": ""}
        async with http.post(f"{opened.api_url}/bindings/request", json={"binding": "nope", "payload": {}}) as resp:
            assert (resp.status, await resp.json()) == (404, {"error": "no such binding, nope"})


async def test_shutdown_during_a_reload_closes_the_prepared_replacement(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    running = await start_connector(echo_yaml("q.leak"), REGISTRY)
    old = running.runtime.engine.bindings["echo"]
    writing = asyncio.create_task(send(broker, "q.leak", {"method": "write", "milliseconds": "1500"}))
    await eventually(lambda: old.source.in_flight == 1, timeout=10)  # the old binding has the write (a busy machine connects the sender slowly)
    running.config_path.write_text(running.config_path.read_text().replace('prefix: "echo:"', 'prefix: "new:"'))
    reloading = asyncio.create_task(running.runtime.reload())
    await asyncio.sleep(0.3)  # the replacement's target is prepared; the old binding drains its write
    await running.runtime.engine.stop(5)
    await reloading
    assert not (await writing).is_error
    assert old.target_ready is False
    assert running.runtime.engine.bindings == {}
    assert not [t for t in EchoTarget.open_targets if t.prefix == b"new:"]  # the prepared replacement was closed


def test_a_command_source_has_no_reply_size_limit() -> None:
    from bindings.kubemq.command import CommandSource

    properties = SubscriptionProperties(address="127.0.0.1:50000", channel="c", max_message_size=2 * 1024 * 1024)
    assert CommandSource(properties, "b").max_reply_data is None
    assert QuerySource(properties, "b").max_reply_data == (2 * 1024 * 1024 - 64 * 1024) * 3 // 4


class _Delivering(QuerySource):
    """A query source whose delivery is scripted: what ``deliver`` does, on a client that is there."""

    def __init__(self, deliver: Any) -> None:
        super().__init__(SubscriptionProperties(address="localhost:50000", channel="cut"), "b")
        self._scripted = deliver
        self._clients[0] = Mock()
        self._deliveries[0] = set()

    async def deliver(self, client: Any, message: Any, outcome: Outcome) -> None:
        await self._scripted()


async def test_a_delivery_whose_call_grpc_cancels_is_a_lost_connection_and_the_task_goes_on() -> None:
    async def cancelled_by_grpc() -> None:
        await asyncio.sleep(0)
        raise asyncio.CancelledError  # what grpc.aio raises when the SDK closes the channel under the call

    source = _Delivering(cancelled_by_grpc)
    with pytest.raises(ConnectionLost, match="lost before the outcome was delivered"):
        await source._on_live_connection(0, Mock(), Outcome(Response.ok()))
    assert not asyncio.current_task().cancelling()  # type: ignore[union-attr]


async def test_a_delivery_cut_off_when_its_connection_is_dropped_is_a_lost_connection() -> None:
    source = _Delivering(lambda: asyncio.sleep(30))
    delivering = asyncio.create_task(source._on_live_connection(0, Mock(), Outcome(Response.ok())))
    await eventually(lambda: bool(source._deliveries[0]), timeout=5, interval=0.01)  # the delivery registered its cut-off
    await source._drop_client(0, reachable=False)
    with pytest.raises(ConnectionLost, match="lost before the outcome was delivered"):
        await asyncio.wait_for(delivering, 5)


async def test_a_cancelled_delivery_task_stays_cancelled_and_a_delivery_timeout_stays_a_timeout() -> None:
    slow = _Delivering(lambda: asyncio.sleep(30))
    delivering = asyncio.create_task(slow._on_live_connection(0, Mock(), Outcome(Response.ok())))
    await eventually(lambda: bool(slow._deliveries[0]), timeout=5, interval=0.01)  # the delivery registered its cut-off
    delivering.cancel()
    with pytest.raises(asyncio.CancelledError):
        await delivering

    async def timing_out() -> None:
        raise TimeoutError("the SDK's own deadline")

    with pytest.raises(TimeoutError, match="the SDK's own deadline"):
        await _Delivering(timing_out)._on_live_connection(0, Mock(), Outcome(Response.ok()))
