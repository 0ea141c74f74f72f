"""Tracing: a traced sender, the embedded broker, a connector and SeaweedFS share one trace.

The sender is another service with its own tracer: it puts its span's W3C
context in the message tags as the KubeMQ SDK's carrier does, and sends with
no span current (the SDK 4.1.5 cannot send with one: see the first test).
The connector runs in-process with an in-memory exporter.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubemq import (
    AsyncCQClient,
    AsyncPubSubClient,
    AsyncQueuesClient,
    CommandMessage,
    EventMessage,
    EventStoreMessage,
    QueryMessage,
    QueueMessage,
)
from kubemq.core.exceptions import KubeMQValidationError
from kubemq.grpc import kubemq_pb2 as pb
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from bindings import otel, tracing
from bindings.context import RequestContext
from bindings.kubemq import SOURCES
from bindings.kubemq.connection import SubscriptionProperties
from bindings.kubemq.query import QuerySource
from bindings.kubemq.sdk import Received, received
from bindings.registry import Registry
from bindings.source import Outcome
from bindings.tracing import TracingSettings, wanted_exporters
from bindings.wire import Request, Response
from connector.product import IDENTITY
from connector.s3 import S3Target
from devbroker import EmbeddedBroker
from tests.fixtures.configs import binding, config
from tests.fixtures.kubemq import StartConnector, free_port
from tests.fixtures.waiting import eventually
from tests.sources.support import listen, options, start, take

REGISTRY = Registry.of(SOURCES, [S3Target])
# The sender is another service: its own tracer, nothing exported.
SENDER = TracerProvider().get_tracer("sender")
ROOT = Path(__file__).resolve().parents[2]
KINDS = ("kubemq.query", "kubemq.command", "kubemq.queue", "kubemq.events", "kubemq.events-store")


def as_received(message: pb.Request) -> Received[pb.Request]:
    """``message`` as a source receives it: from its bytes."""
    return received(message.SerializeToString(), pb.Request)


@pytest.fixture
async def spans() -> AsyncIterator[InMemorySpanExporter]:
    """Tracing on for the test, into memory (requested before the connector, so it is on when the target opens)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    running = otel.Tracing(provider, IDENTITY)
    assert tracing.install(running) is None
    yield exporter
    await tracing.stop(running)


def context_tags(span: trace.Span) -> dict[str, str]:
    """Tags carrying ``span``'s W3C context, written as the SDK's ``KubeMQTagsCarrier`` writes them."""
    tags: dict[str, str] = {}
    propagate.inject(tags, context=trace.set_span_in_context(span))
    return tags


def traceparent(span: ReadableSpan) -> str:
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


async def send(broker: EmbeddedBroker, kind: str, channel: str, request: Request, tags: dict[str, str]) -> None:
    """Send one request of ``kind`` with the official SDK (waiting for the reply of a query or command)."""
    body, sender = request.to_json(), options(broker, "traced-sender")
    if kind in ("kubemq.query", "kubemq.command"):
        async with AsyncCQClient(**sender) as client:
            if kind == "kubemq.query":
                await client.send_query(QueryMessage(channel=channel, body=body, tags=tags, timeout_in_seconds=20))
            else:
                await client.send_command(CommandMessage(channel=channel, body=body, tags=tags, timeout_in_seconds=20))
    elif kind == "kubemq.queue":
        async with AsyncQueuesClient(**sender) as client:
            assert not (await client.send_queue_message_simple(QueueMessage(channel=channel, body=body, tags=tags))).is_error
    else:
        async with AsyncPubSubClient(**sender) as client:
            if kind == "kubemq.events":
                await client.send_event_unary(EventMessage(channel=channel, body=body, tags=tags))
            else:
                assert (await client.send_event_store(EventStoreMessage(channel=channel, body=body, tags=tags))).sent


async def consumer_span(spans: InMemorySpanExporter, channel: str, count: int = 1) -> list[ReadableSpan]:
    """The connector's finished CONSUMER spans for ``channel`` (waits for ``count`` of them)."""

    def found() -> list[ReadableSpan]:
        return [s for s in spans.get_finished_spans() if s.kind is SpanKind.CONSUMER and (s.attributes or {}).get("messaging.destination.name") == channel]

    await eventually(lambda: len(found()) >= count)
    return found()


def query_source(channel: str) -> QuerySource:
    """A query source, not started: what ``consume`` reads of it is its channel and a message's tags."""
    return QuerySource(SubscriptionProperties(address="127.0.0.1:50000", channel=channel), "traced")


def s3_target_yaml(s3_properties: dict[str, str]) -> str:
    return "      kind: aws.s3\n      properties:\n" + "\n".join(f'        {key}: "{value}"' for key, value in s3_properties.items())


async def test_the_sdk_cannot_send_with_a_span_current_so_the_connector_sends_outside_it(spans: InMemorySpanExporter, broker: EmbeddedBroker) -> None:
    """kubemq 4.1.5 injects the current context through a carrier without ``__setitem__``: its sends fail.

    The request's span is current only while the handler runs; a source's
    reply after ``run`` returns goes through, carrying the span in its tags.
    """
    source = query_source("trace.defect")
    message = as_received(pb.Request(RequestID="r-1", Channel="trace.defect", Body=b"{}"))
    sent: list[dict[str, str]] = []
    async with AsyncQueuesClient(**options(broker, "defect")) as client:

        async def send_reply(tags: dict[str, str]) -> None:
            result = await client.send_queue_message_simple(QueueMessage(channel="trace.defect.replies", body=b"reply", tags=tags))
            assert not result.is_error, result.error
            sent.append(tags)

        async def handler(body: bytes, context: RequestContext) -> Outcome:
            # What would happen if the source replied with the span current: the SDK refuses.
            with pytest.raises(KubeMQValidationError, match="'KubeMQTagsCarrier' object does not support item assignment"):
                await send_reply({})
            return Outcome(Response.ok())

        context = RequestContext(binding="defect", request_id="r-1", source_kind=source.kind)
        with tracing.consume(source, message) as request_trace:
            request_trace.record(await tracing.run(handler, message.body, context))
            await send_reply(tracing.inject({"request_id": "r-1"}))
    [span] = await consumer_span(spans, "trace.defect")
    assert sent == [{"request_id": "r-1", "traceparent": traceparent(span)}]


async def test_a_query_to_s3_is_one_trace_from_sender_to_s3(spans: InMemorySpanExporter, broker: EmbeddedBroker, start_connector: StartConnector, s3_properties: dict[str, str], bucket: str) -> None:
    await start(start_connector, broker, config(binding("s3", "kubemq.query", "trace.s3", target=s3_target_yaml(s3_properties))), REGISTRY)
    sender = SENDER.start_span("upload report", kind=SpanKind.PRODUCER)
    request = Request({"method": "upload_item", "bucket_name": bucket, "item_name": "reports/q1.txt"}, b"quarterly")
    async with AsyncCQClient(**options(broker, "traced-sender")) as client:
        reply = await client.send_query(QueryMessage(channel="trace.s3", body=request.to_json(), tags=context_tags(sender), timeout_in_seconds=20))
    sender.end()
    response = Response.from_json(reply.body)
    assert not response.is_error

    [consumer] = await consumer_span(spans, "trace.s3")
    expected = sender.get_span_context()
    assert consumer.context.trace_id == expected.trace_id
    assert consumer.parent is not None and consumer.parent.span_id == expected.span_id
    assert consumer.name == "process trace.s3"
    assert consumer.status.status_code is StatusCode.UNSET
    assert consumer.attributes == {
        "messaging.system": "kubemq",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": "trace.s3",
        "messaging.message.id": consumer.attributes["messaging.message.id"],
        "messaging.message.body.size": len(request.to_json()),
        "kubemq_s3.binding": "s3",
        "kubemq_s3.source.kind": "kubemq.query",
        "kubemq_s3.method": "upload_item",
        "kubemq_s3.outcome": "ok",
        "kubemq_s3.response.data.size": len(response.data or b""),
        "aws.s3.bucket": bucket,
        "aws.s3.key": "reports/q1.txt",
    }
    [put] = [s for s in spans.get_finished_spans() if s.name == "S3.PutObject" and s.context.trace_id == expected.trace_id]
    assert put.kind is SpanKind.CLIENT
    assert put.parent is not None and put.parent.span_id == consumer.context.span_id
    assert put.attributes is not None
    assert (put.attributes["rpc.method"], put.attributes["aws.s3.bucket"], put.attributes["aws.s3.key"]) == ("PutObject", bucket, "reports/q1.txt")
    # The reply carries the request's context too.
    assert reply.tags.get("traceparent") == traceparent(consumer)


async def test_a_request_without_trace_context_starts_a_new_trace(
    spans: InMemorySpanExporter, broker: EmbeddedBroker, start_connector: StartConnector, s3_properties: dict[str, str], bucket: str
) -> None:
    await start(start_connector, broker, config(binding("s3", "kubemq.query", "trace.new", target=s3_target_yaml(s3_properties))), REGISTRY)
    for key in ("a.txt", "b.txt"):
        await send(broker, "kubemq.query", "trace.new", Request({"method": "get_item", "bucket_name": bucket, "item_name": key}), {})
    first, second = await consumer_span(spans, "trace.new", 2)
    assert first.parent is None and second.parent is None
    assert first.context.trace_id != second.context.trace_id
    assert first.status.status_code is StatusCode.ERROR and first.attributes is not None
    assert (first.attributes["kubemq_s3.outcome"], first.attributes["error.type"]) == ("error", "NoSuchKey")
    s3_calls = [s for s in spans.get_finished_spans() if s.context.trace_id == first.context.trace_id and s.kind is SpanKind.CLIENT]
    assert s3_calls and all(s.parent is not None and s.parent.span_id == first.context.span_id for s in s3_calls)


async def test_each_source_kind_continues_the_senders_trace(spans: InMemorySpanExporter, broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    bindings = [binding(kind.split(".")[1], kind, f"trace.kind.{kind}") for kind in KINDS]
    await start(start_connector, broker, config(*bindings))
    for kind in KINDS:
        sender = SENDER.start_span(f"send {kind}", kind=SpanKind.PRODUCER)
        await send(broker, kind, f"trace.kind.{kind}", Request({"method": "echo"}, b"hi"), context_tags(sender))
        sender.end()
        [consumer] = await consumer_span(spans, f"trace.kind.{kind}")
        assert consumer.context.trace_id == sender.get_span_context().trace_id, kind
        assert consumer.parent is not None and consumer.parent.span_id == sender.get_span_context().span_id, kind
        assert consumer.attributes is not None and consumer.attributes["kubemq_s3.source.kind"] == kind


async def test_what_the_connector_publishes_carries_the_requests_trace(spans: InMemorySpanExporter, broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    queue = binding("queue", "kubemq.queue", "trace.pub.queue", {"response_channel": "trace.pub.queue.resp", "max_receive_count": 1})
    events = binding("events", "kubemq.events", "trace.pub.events", {"response_channel": "trace.pub.events.resp"})
    await start(start_connector, broker, config(queue, events))
    sender = SENDER.start_span("send", kind=SpanKind.PRODUCER)
    await send(broker, "kubemq.queue", "trace.pub.queue", Request({"method": "echo"}, b"ok"), context_tags(sender))
    await send(broker, "kubemq.queue", "trace.pub.queue", Request({"method": "fail", "code": "AccessDenied"}), context_tags(sender))
    async with listen(broker, "trace.pub.events.resp") as listener:
        await send(broker, "kubemq.events", "trace.pub.events", Request({"method": "echo"}), context_tags(sender))
        await eventually(lambda: len(listener.received) == 1)
    sender.end()

    consumers = await consumer_span(spans, "trace.pub.queue", 2)
    by_outcome = {span.attributes["kubemq_s3.outcome"]: span for span in consumers if span.attributes}
    responses = {Response.from_json(r.body).is_error: r for r in await take(broker, "trace.pub.queue.resp", 2)}
    assert responses[False].tags["traceparent"] == traceparent(by_outcome["ok"])
    assert responses[True].tags["traceparent"] == traceparent(by_outcome["error"])
    [dead] = await take(broker, "trace.pub.queue.dlq")
    assert dead.tags["traceparent"] == traceparent(by_outcome["error"])
    [event_consumer] = await consumer_span(spans, "trace.pub.events")
    assert listener.received[0][0]["traceparent"] == traceparent(event_consumer)
    for span in [*consumers, event_consumer]:
        assert span.context.trace_id == sender.get_span_context().trace_id


# Tracing off ------------------------------------------------------------------

OFF_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from kubemq import AsyncCQClient, QueryMessage
    from bindings import tracing
    from devbroker import EmbeddedBroker
    from bindings.registry import Registry
    from bindings.runtime import Runtime
    from bindings.kubemq import SOURCES
    from bindings.wire import Request
    from connector.app import registry  # the S3 target's modules too: they load nothing of OpenTelemetry either
    from tests.fixtures.echo_target import EchoTarget

    CONFIG = '''
    apiPort: 0
    bindings:
      - name: echo
        source: {kind: kubemq.query, properties: {address: "{broker}", channel: off.q}}
        target: {kind: test.echo}
    '''

    async def main():
        async with EmbeddedBroker(host="127.0.0.1", port=0) as broker:
            path = sys.argv[1]
            open(path, "w").write(CONFIG.replace("{broker}", broker.address))
            runtime = Runtime(path, Registry.of(SOURCES, [EchoTarget]), configure_logging=False)
            await runtime.start()
            while not runtime.engine.readiness()[0]:
                await asyncio.sleep(0.05)
            await broker.wait_for_subscribers("off.q", 1, kind="queries")
            tags = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
            async with AsyncCQClient(address=broker.address, client_id="off") as client:
                reply = await client.send_query(QueryMessage(channel="off.q", body=Request({"method": "echo"}, b"x").to_json(), tags=tags, timeout_in_seconds=10))
            await runtime.stop()
        loaded = sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk", "opentelemetry.instrumentation", "opentelemetry.exporter", "bindings.otel")))
        print(json.dumps({"active": tracing.active() is not None, "loaded": loaded, "reply_tags": dict(reply.tags), "executed": reply.is_executed}), flush=True)

    asyncio.run(main())
    os._exit(0)  # what is checked is printed; gRPC's teardown at exit is not this test's subject (it can stall on a loaded machine)
    """
)


def test_tracing_off_loads_nothing_and_adds_nothing(tmp_path: Any) -> None:
    """With no ``tracing:`` and no ``OTEL_*``: no OpenTelemetry SDK loaded, nothing injected, the request served."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}
    result = subprocess.run([sys.executable, "-c", OFF_SCRIPT, str(tmp_path / "config.yaml")], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout.strip().splitlines()[-1])
    assert state == {"active": False, "loaded": [], "reply_tags": {}, "executed": True}


def test_untraced_requests_share_one_do_nothing_trace() -> None:
    source = query_source("off")
    assert tracing.active() is None
    assert tracing.consume(source, as_received(pb.Request())) is tracing.UNTRACED
    tags = {"request_id": "r"}
    assert tracing.inject(tags) is tags and tags == {"request_id": "r"}


# Turning it on ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "environ", "expected"),
    [
        ({}, {}, []),
        ({}, {"OTEL_TRACES_EXPORTER": "otlp"}, ["otlp"]),
        ({}, {"OTEL_TRACES_EXPORTER": "console, otlp,zipkin"}, ["console", "otlp"]),
        ({}, {"OTEL_TRACES_EXPORTER": "none"}, []),
        ({"enabled": True}, {}, ["otlp"]),
        ({"enabled": True}, {"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"exporter": "console"}, {}, ["console"]),
        ({"enabled": False}, {"OTEL_TRACES_EXPORTER": "otlp"}, []),
        ({"enabled": True}, {"OTEL_SDK_DISABLED": "true"}, []),
    ],
)
def test_which_exporters_config_and_environment_ask_for(settings: dict[str, Any], environ: dict[str, str], expected: list[str]) -> None:
    assert wanted_exporters(TracingSettings(**settings), environ) == expected


async def test_console_exporter_prints_one_json_line_per_span(capsys: pytest.CaptureFixture[str]) -> None:
    running = tracing.start(TracingSettings(enabled=True, exporter="console"), IDENTITY, {"OTEL_SERVICE_NAME": "s3-gateway"})
    assert running is not None and tracing.active() is running
    try:
        assert tracing.start(TracingSettings(enabled=True), IDENTITY) is None  # already on: not started twice
        source = query_source("console.q")
        context = RequestContext(binding="console", request_id="r-1", source_kind=source.kind)
        with tracing.consume(source, as_received(pb.Request(RequestID="r-1"))) as request_trace:
            request_trace.record(await tracing.run(_echo, b"{}", context))
    finally:
        await tracing.stop(running)
    assert tracing.active() is None
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith('{"name"')]
    span = json.loads(line)
    assert (span["name"], span["kind"], span["resource"]["attributes"]["service.name"]) == ("process console.q", "SpanKind.CONSUMER", "s3-gateway")


async def test_a_collector_that_is_down_does_not_hold_up_the_stop() -> None:
    """OTLP to a port nothing listens on: the exporter would retry for seconds; stop gives it ``FLUSH_ON_CLOSE_SECONDS``."""
    running = tracing.start(TracingSettings(enabled=True, exporter="otlp", endpoint=f"http://127.0.0.1:{free_port()}"), IDENTITY)
    assert running is not None
    source = query_source("down.q")
    with tracing.consume(source, as_received(pb.Request(RequestID="r-1"))) as request_trace:
        request_trace.record(await tracing.run(_echo, b"{}", RequestContext(binding="down", request_id="r-1")))
    started = time.monotonic()
    await tracing.stop(running)
    assert time.monotonic() - started < otel.FLUSH_ON_CLOSE_SECONDS + 1.5


async def _echo(body: bytes, context: RequestContext) -> Outcome:
    await asyncio.sleep(0)
    return Outcome(Response.ok(body))
