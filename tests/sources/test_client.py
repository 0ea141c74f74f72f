"""``kubemq-s3 send`` in every pattern against one running connector with five bindings."""

from __future__ import annotations

import asyncio
import sys

import pytest
import pytest_asyncio

from bindings.kubemq import SOURCES
from bindings.kubemq.client import PATTERNS, SENDERS, pattern_named, send_request
from devbroker import EmbeddedBroker
from tests.fixtures.configs import binding, config
from tests.fixtures.kubemq import RunningConnector, StartConnector
from tests.fixtures.waiting import eventually
from tests.sources.support import echo_target, printed_json, start

FIVE = config(
    binding("query", "kubemq.query", "cl.query"),
    binding("command", "kubemq.command", "cl.command"),
    binding("queue", "kubemq.queue", "cl.queue", {"response_channel": "cl.queue.resp"}),
    binding("event", "kubemq.events", "cl.event", {"response_channel": "cl.event.resp"}),
    binding("store", "kubemq.events-store", "cl.store", {"response_channel": "cl.store.resp"}),
)
CHANNELS = {
    "query": ("cl.query", None),
    "command": ("cl.command", None),
    "queue": ("cl.queue", "cl.queue.resp"),
    "events": ("cl.event", "cl.event.resp"),
    "events-store": ("cl.store", "cl.store.resp"),
}


@pytest_asyncio.fixture
async def five(broker: EmbeddedBroker, start_connector: StartConnector) -> RunningConnector:
    return await start(start_connector, broker, FIVE)


@pytest.mark.parametrize("pattern", list(CHANNELS))
async def test_every_pattern_gets_its_answer(five: RunningConnector, broker: EmbeddedBroker, capsys: pytest.CaptureFixture[str], pattern: str) -> None:
    channel, response_channel = CHANNELS[pattern]
    code = await send_request(broker.address, channel, {"method": "echo"}, b"hi", timeout=10, auth_token=None, output=None, pattern=pattern, response_channel=response_channel)  # type: ignore[arg-type]
    documents = printed_json(capsys.readouterr().out)
    assert code == 0
    if response_channel:
        sent, reply = documents
        assert (sent["sent"], sent["pattern"], sent["channel"]) == (True, pattern, channel)
        assert reply["data"] == "echo:hi"
    elif pattern == "query":
        assert documents[0]["data"] == "echo:hi"
    else:
        assert documents == [{"metadata": {}, "is_error": False, "error": "", "data": None}]


async def test_error_replies_exit_1_and_fire_and_forget_exits_0(five: RunningConnector, broker: EmbeddedBroker, capsys: pytest.CaptureFixture[str]) -> None:
    code = await send_request(broker.address, "cl.command", {"method": "fail", "code": "AccessDenied"}, b"", timeout=10, auth_token=None, output=None, pattern="command")
    assert code == 1
    assert printed_json(capsys.readouterr().out)[0]["error"] == "All attempts fail:\n#1: AccessDenied: injected failure"
    code = await send_request(broker.address, "cl.queue", {"method": "fail", "code": "NoSuchKey"}, b"", timeout=10, auth_token=None, output=None, pattern="queue", response_channel="cl.queue.resp")
    assert code == 1
    code = await send_request(
        broker.address, "cl.event", {"method": "echo"}, b"no wait", timeout=10, auth_token=None, output=None, pattern="event"
    )  # the singular spelling earlier versions took still works
    [sent] = printed_json(capsys.readouterr().out)[-1:]
    assert (code, sent["sent"]) == (0, True)
    await eventually(lambda: echo_target(five, "event").calls == 1)


async def test_the_command_line_sends_to_a_queue_and_waits_for_the_response(five: RunningConnector, broker: EmbeddedBroker) -> None:
    args = ["--address", broker.address, "--pattern", "queue", "--channel", "cl.queue", "--response-channel", "cl.queue.resp", "-m", "method=echo", "--data-text", "from the shell"]
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "connector.cli", "send", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    sent, reply = printed_json(stdout.decode())
    assert (sent["pattern"], reply["data"], reply["is_error"]) == ("queue", "echo:from the shell", False)


async def test_the_command_line_refuses_a_response_channel_for_queries() -> None:
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "connector.cli", "send", "--response-channel", "x", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert "--response-channel is for queue, events and events-store" in stderr.decode()


def test_every_source_kind_has_a_sender_and_its_pattern_is_its_kind() -> None:
    assert set(SENDERS) == set(PATTERNS) == {source.kind.removeprefix("kubemq.") for source in SOURCES}
    assert (pattern_named("event"), pattern_named("event-store")) == ("events", "events-store")  # earlier spellings
