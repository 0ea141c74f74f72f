"""The binding's ``reply_style``: kubemq-targets' error wording by default, the plain last error with ``extended``.

The echo target fails on request, so these run through real sources and the
middleware chain without S3; what the S3 target adds per style (metadata,
``{"Deleted": n}``) is in tests/s3/test_reply_styles.py.
"""

from __future__ import annotations

import pytest
from kubemq import AsyncCQClient, QueryMessage

from bindings.kubemq.client import query
from bindings.wire import Request, Response
from devbroker import EmbeddedBroker
from tests.fixtures.configs import binding, config
from tests.fixtures.kubemq import StartConnector
from tests.sources.support import echo_target, options, send_command, start

RETRY = {"retry_attempts": 3, "retry_delay_milliseconds": 10, "retry_max_jitter_milliseconds": 5}
ALWAYS_THROTTLED = {"method": "fail", "code": "SlowDown", "retryable": "true"}
ECHO_METHODS = " :echo, :sleep, :write, :fail, :crash, :unsendable,"


async def ask(broker: EmbeddedBroker, channel: str, metadata: dict[str, str]) -> Response:
    return await query(broker.address, channel, Request(metadata=metadata), timeout=10)


async def test_by_default_every_error_lists_its_attempts_as_kubemq_targets_does(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    running = await start(start_connector, broker, config(binding("q", "kubemq.query", "style.default", middleware=RETRY)))
    assert (await ask(broker, "style.default", {"method": "fail", "code": "NoSuchKey"})).error == "All attempts fail:\n#1: NoSuchKey: injected failure"
    throttled = await ask(broker, "style.default", ALWAYS_THROTTLED)
    assert throttled.error == "All attempts fail:\n" + "\n".join(f"#{n}: SlowDown: injected failure" for n in (1, 2, 3))
    assert echo_target(running, "q").calls == 4  # NoSuchKey once, SlowDown three times


async def test_by_default_a_refused_request_is_worded_and_listed_as_kubemq_targets_does(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    await start(start_connector, broker, config(binding("q", "kubemq.query", "style.refused")))
    unknown = await ask(broker, "style.refused", {"method": "ech"})
    assert unknown.error == f"All attempts fail:\n#1: invalid method type, method type should be one of the following:{ECHO_METHODS}"
    assert "did you mean" not in unknown.error
    invalid = await ask(broker, "style.refused", {"method": "sleep", "milliseconds": "soon", "extra": "x"})
    assert invalid.error.startswith("All attempts fail:\n#1: error parsing milliseconds, ") and "; " not in invalid.error
    # A body kubemq-targets' source cannot read is refused before its middleware: not listed as an attempt.
    async with AsyncCQClient(**options(broker)) as client:
        reply = await client.send_query(QueryMessage(channel="style.refused", body=b'{"metadata":{"method":"echo"},"data":7}', timeout_in_seconds=10))
    assert Response.from_json(reply.body).error == "invalid request format, invalid data format, float64"


async def test_extended_gives_the_last_error_alone_and_every_problem(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    await start(start_connector, broker, config(binding("q", "kubemq.query", "style.extended", middleware={**RETRY, "reply_style": "extended"})))
    assert (await ask(broker, "style.extended", ALWAYS_THROTTLED)).error == "SlowDown: injected failure"
    unknown = await ask(broker, "style.extended", {"method": "ech"})
    assert unknown.error.startswith("invalid method type, method type should be one of the following: echo, sleep") and "did you mean 'echo'" in unknown.error


@pytest.mark.parametrize(("style", "expected"), [("kubemq-targets", "All attempts fail:\n#1: NoSuchKey: injected failure"), ("extended", "NoSuchKey: injected failure")])
async def test_a_command_carries_the_styled_error(broker: EmbeddedBroker, start_connector: StartConnector, style: str, expected: str) -> None:
    channel = f"style.command.{style}"
    await start(start_connector, broker, config(binding("c", "kubemq.command", channel, middleware={"reply_style": style})))
    assert await send_command(broker, channel, {"method": "fail", "code": "NoSuchKey"}) == (False, expected)


async def test_an_unknown_reply_style_is_refused_naming_both(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    with pytest.raises(Exception, match="reply_style") as refused:
        await start_connector(config(binding("q", "kubemq.query", "style.bad", middleware={"reply_style": "go"})))
    assert "kubemq-targets" in str(refused.value) and "extended" in str(refused.value)
