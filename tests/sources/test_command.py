"""kubemq.command end to end: the sender learns Executed=true, or Executed=false with the error, never the data."""

from __future__ import annotations

from kubemq import AsyncCQClient, CommandMessage, CommandResponse

from bindings.wire import Request
from devbroker import EmbeddedBroker
from tests.fixtures.configs import binding, config
from tests.fixtures.kubemq import StartConnector
from tests.sources.support import echo_target, options, start


async def send_command(broker: EmbeddedBroker, channel: str, body: bytes, timeout: int = 10) -> CommandResponse:
    async with AsyncCQClient(**options(broker)) as client:
        return await client.send_command(CommandMessage(channel=channel, body=body, timeout_in_seconds=timeout))


async def test_command_success_is_executed_without_data(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    running = await start(start_connector, broker, config(binding("cmd", "source.command", "c.ok")))
    reply = await send_command(broker, "c.ok", Request(metadata={"method": "echo"}, data=b"payload").to_json())
    assert (reply.is_executed, reply.error, reply.body) == (True, "", b"")
    assert echo_target(running, "cmd").calls == 1


async def test_command_failure_is_not_executed_with_the_error_text(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    await start(start_connector, broker, config(binding("cmd", "kubemq.command", "c.fail")))
    failed = await send_command(broker, "c.fail", Request(metadata={"method": "fail", "code": "NoSuchKey"}).to_json())
    assert (failed.is_executed, failed.error, failed.body) == (False, "All attempts fail:\n#1: NoSuchKey: injected failure", b"")
    unknown = await send_command(broker, "c.fail", Request(metadata={"method": "nope"}).to_json())
    assert not unknown.is_executed
    assert unknown.error == "All attempts fail:\n#1: invalid method type, method type should be one of the following: :echo, :sleep, :write, :fail, :crash, :unsendable,"
    malformed = await send_command(broker, "c.fail", b'{"data":12}')
    assert (malformed.is_executed, malformed.error) == (False, "invalid request format, invalid data format, float64")
