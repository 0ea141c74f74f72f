"""kubemq.events and kubemq.events-store end to end: responses on response_channel, resuming by sequence."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from kubemq import AsyncPubSubClient, EventMessage, EventStoreMessage

from bindings.kubemq.events import EventsSource, EventsStoreProperties, EventsStoreSource
from bindings.limits import MIB
from bindings.source import REPLY_ENVELOPE_ALLOWANCE
from bindings.wire import Request
from devbroker import EmbeddedBroker
from tests.fixtures.configs import binding, config
from tests.fixtures.kubemq import RunningConnector, StartConnector
from tests.fixtures.waiting import eventually
from tests.sources.support import echo_target, listen, options, start, wait_subscribed


async def publish(broker: EmbeddedBroker, channel: str, metadata: dict[str, str], data: bytes = b"", *, store: bool = False) -> str:
    """Publish one request with the SDK; returns its event id."""
    body = Request(metadata=metadata, data=data).to_json()
    async with AsyncPubSubClient(**options(broker)) as client:
        if store:
            message = EventStoreMessage(channel=channel, body=body)
            assert (await client.send_event_store(message)).sent
            return message.id
        event = EventMessage(channel=channel, body=body)
        await client.send_event_unary(event)
        return event.id


async def test_events_publish_each_response_on_the_response_channel(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    running = await start(start_connector, broker, config(binding("ev", "kubemq.events", "ev.req", {"response_channel": "ev.resp"})))
    async with listen(broker, "ev.resp") as responses:
        ok_id = await publish(broker, "ev.req", {"method": "echo"}, b"fire")
        failed_id = await publish(broker, "ev.req", {"method": "fail", "code": "AccessDenied"})
        await eventually(lambda: len(responses.received) == 2)
    by_request = {tags["request_id"]: response for (tags, _), response in zip(responses.received, responses.responses(), strict=True)}
    assert (by_request[ok_id].is_error, by_request[ok_id].data) == (False, b"echo:fire")
    assert (by_request[failed_id].is_error, by_request[failed_id].error) == (True, "All attempts fail:\n#1: AccessDenied: injected failure")
    assert echo_target(running, "ev").calls == 2


async def test_events_without_response_channel_just_run(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    running = await start(start_connector, broker, config(binding("ev", "source.events", "ev.quiet")))
    await publish(broker, "ev.quiet", {"method": "echo"}, b"x")
    await eventually(lambda: echo_target(running, "ev").calls == 1)
    assert running.runtime.metrics.stats["ev"].errors_count == 0  # ran and answered into nowhere, without an error


async def test_events_store_responses_are_stored_events(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    await start(start_connector, broker, config(binding("es", "kubemq.events-store", "es.req", {"response_channel": "es.resp"})))
    request_id = await publish(broker, "es.req", {"method": "echo"}, b"kept", store=True)
    async with listen(broker, "es.resp", store=True) as responses:  # subscribes after the fact: the store replays it
        await eventually(lambda: len(responses.received) == 1)
    [(tags, _)] = responses.received
    assert tags["request_id"] == request_id
    assert responses.responses()[0].data == b"echo:kept"


async def test_events_store_resumes_after_resubscribe_without_repeats_or_gaps(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    source_props = {"reconnect_interval_seconds": "0.1", "max_concurrency": "4"}
    running = await start(start_connector, broker, config(binding("es", "kubemq.events-store", "es.resume", source_props)))
    source = running.runtime.engine.bindings["es"].source
    assert isinstance(source, EventsStoreSource)
    target = echo_target(running, "es")
    for i in (1, 2):
        await publish(broker, "es.resume", {"method": "echo"}, str(i).encode(), store=True)
    await publish(broker, "es.resume", {"method": "sleep", "milliseconds": "1500"}, b"3", store=True)
    await eventually(lambda: target.calls == 3 and source.progress.floor == 2)  # 3 still running

    await source._clients[0].close()  # the connection drops while event 3 is in flight
    await eventually(lambda: not source.status.connected)
    for i in (4, 5):  # published while the binding is away
        await publish(broker, "es.resume", {"method": "echo"}, str(i).encode(), store=True)
    await wait_subscribed(running, broker)  # re-subscribed at sequence 3: 3 is replayed while it runs
    await eventually(lambda: target.calls == 5)
    assert source.progress.floor == 2  # 4 and 5 are done, but 3 is not yet
    await eventually(lambda: source.progress.floor == 5)
    assert target.calls == 5  # 4 and 5 once each; 3 and 1-2 not again


async def test_events_store_first_start_position_and_resume_from_state_file(broker: EmbeddedBroker, start_connector: StartConnector, tmp_path: Path) -> None:
    for i in (1, 2):  # before any connector exists
        await publish(broker, "es.state", {"method": "echo"}, str(i).encode(), store=True)
    state = tmp_path / "state" / "es.json"
    yaml = config(binding("es", "kubemq.events-store", "es.state", {"start_position": "first", "state_file": str(state)}))
    first = await start(start_connector, broker, yaml)
    await eventually(lambda: echo_target(first, "es").calls == 2)
    await eventually(lambda: state.exists() and json.loads(state.read_text()) == {"channel": "es.state", "sequence": 2})
    await first.runtime.stop()

    await publish(broker, "es.state", {"method": "echo"}, b"3", store=True)  # while no connector runs
    second = await start(start_connector, broker, yaml)
    await eventually(lambda: json.loads(state.read_text())["sequence"] == 3)
    assert echo_target(second, "es").calls == 1  # only the new one, despite start_position: first


async def reload_changed(running: RunningConnector, old: str, new: str) -> None:
    """Edit the running config file (``old`` -> ``new``) and reload it, as a SIGHUP would."""
    text = running.config_path.read_text()
    assert old in text
    running.config_path.write_text(text.replace(old, new))
    assert await running.runtime.reload()


def store_source(running: RunningConnector, name: str) -> EventsStoreSource:
    source = running.runtime.engine.bindings[name].source
    assert isinstance(source, EventsStoreSource)
    return source


LOG_LEVEL = ('log_level: "error"', 'log_level: "warning"')  # a change that restarts the binding and nothing else


async def test_events_store_reload_resumes_instead_of_replaying_or_losing(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    for i in (1, 2):  # history, run once by the first source
        await publish(broker, "es.reload", {"method": "echo"}, str(i).encode(), store=True)
    source_props = {"start_position": "first", "response_channel": "es.reload.resp", "max_concurrency": "4"}
    running = await start(start_connector, broker, config(binding("es", "kubemq.events-store", "es.reload", source_props)))
    old_source, old_target = store_source(running, "es"), echo_target(running, "es")
    await eventually(lambda: old_target.calls == 2)
    await publish(broker, "es.reload", {"method": "sleep", "milliseconds": "800"}, b"3", store=True)
    await eventually(lambda: old_target.calls == 3)  # in flight when the reload comes: the old source finishes it

    reload = asyncio.create_task(reload_changed(running, *LOG_LEVEL))
    await eventually(lambda: not old_source.status.connected)  # the old one has unsubscribed and drains 3
    await publish(broker, "es.reload", {"method": "echo"}, b"4", store=True)  # published during the swap
    await reload
    await publish(broker, "es.reload", {"method": "echo"}, b"5", store=True)
    new_source, new_target = store_source(running, "es"), echo_target(running, "es")
    assert new_source is not old_source and new_source.progress is old_source.progress
    await eventually(lambda: new_source.progress.floor == 5)
    await asyncio.sleep(0.3)  # room for a wrong replay to show
    assert (old_target.calls, new_target.calls) == (3, 2)
    async with listen(broker, "es.reload.resp", store=True) as responses:
        await eventually(lambda: len(responses.received) == 5)
    assert sorted(response.data or b"" for response in responses.responses()) == [b"3", b"echo:1", b"echo:2", b"echo:4", b"echo:5"]


async def test_events_store_reload_before_any_event_starts_where_the_old_source_did(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    await publish(broker, "es.fresh", {"method": "echo"}, b"before", store=True)  # before the binding: never run
    await asyncio.sleep(1.1)  # a resume rounds back up to a second; keep "before" out of that second
    source_props = {"reconnect_interval_seconds": "60"}  # new_only (the default)
    running = await start(start_connector, broker, config(binding("es", "kubemq.events-store", "es.fresh", source_props)))
    old_source, old_target = store_source(running, "es"), echo_target(running, "es")
    await old_source._clients[0].close()  # the old source stops listening (and stays away: the reconnect is a minute off)
    await eventually(lambda: not old_source.status.connected)
    await publish(broker, "es.fresh", {"method": "echo"}, b"unheard", store=True)
    await reload_changed(running, *LOG_LEVEL)
    await publish(broker, "es.fresh", {"method": "echo"}, b"after", store=True)
    new_target = echo_target(running, "es")
    await eventually(lambda: store_source(running, "es").progress.floor == 3)
    await asyncio.sleep(0.3)
    assert (old_target.calls, new_target.calls) == (0, 2)  # "unheard" and "after"; not "before"


async def test_events_store_reload_with_a_shared_group_runs_events_waiting_for_a_slot(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    source_props = {"start_position": "first", "group": "es-g", "max_concurrency": "1"}
    running = await start(start_connector, broker, config(binding("es", "kubemq.events-store", "es.group", source_props)))
    old_source, old_target = store_source(running, "es"), echo_target(running, "es")
    await publish(broker, "es.group", {"method": "sleep", "milliseconds": "600"}, b"1", store=True)
    await publish(broker, "es.group", {"method": "echo"}, b"2", store=True)
    await eventually(lambda: old_target.calls == 1 and old_source._waiting == {2})  # 2 is claimed, waiting for the slot 1 holds
    await reload_changed(running, *LOG_LEVEL)  # the new source subscribes (and skips 1 and 2) before the old one stops
    await eventually(lambda: old_source.progress.floor == 2)
    assert (old_target.calls, echo_target(running, "es").calls) == (2, 0)  # the old one ran 2 before it stopped


async def test_events_store_events_cut_off_or_still_waiting_after_the_drain_are_read_again(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    source_props = {"start_position": "first", "max_concurrency": "1", "response_channel": "es.late.resp"}
    yaml = config(binding("es", "kubemq.events-store", "es.late", source_props)).replace("drainTimeoutSeconds: 5", "drainTimeoutSeconds: 0.3")
    running = await start(start_connector, broker, yaml)
    old_source, old_target = store_source(running, "es"), echo_target(running, "es")
    await publish(broker, "es.late", {"method": "sleep", "milliseconds": "1500"}, b"1", store=True)
    await publish(broker, "es.late", {"method": "echo"}, b"2", store=True)
    await eventually(lambda: old_target.calls == 1 and old_source._waiting == {2})
    await reload_changed(running, *LOG_LEVEL)  # 1 is cut off by the drain timeout, 2 never started: both are handed back
    new_target = echo_target(running, "es")
    await eventually(lambda: store_source(running, "es").progress.floor == 2)
    assert (old_target.calls, new_target.calls) == (1, 2)
    async with listen(broker, "es.late.resp", store=True) as responses:
        await eventually(lambda: len(responses.received) == 2)
        await asyncio.sleep(0.3)  # room for a response to the cut-off run to show
    assert [(r.is_error, r.data) for r in responses.responses()] == [(False, b"1"), (False, b"echo:2")]  # none for the cut-off run


def test_events_store_inherits_progress_only_on_the_same_channel_and_keeps_it_in_the_new_state_file(tmp_path: Path) -> None:
    def source(channel: str, state_file: Path) -> EventsStoreSource:
        return EventsStoreSource(EventsStoreProperties(address="localhost:50000", channel=channel, state_file=str(state_file)), "es")

    old = source("es.a", tmp_path / "old.json")
    assert old.progress.claim(7)
    old.progress.finish(7)
    elsewhere = source("es.b", tmp_path / "b.json")
    elsewhere.inherit(old)
    assert elsewhere.progress is not old.progress and elsewhere.progress.resume_at == 0
    moved = source("es.a", tmp_path / "new.json")
    moved.inherit(old)
    assert moved.progress is old.progress and moved.progress.resume_at == 8
    assert json.loads((tmp_path / "new.json").read_text()) == {"channel": "es.a", "sequence": 7}


async def test_events_store_reload_with_a_shared_group_reads_again_the_events_handed_back_at_the_drain_timeout(broker: EmbeddedBroker, start_connector: StartConnector) -> None:
    # The reviewer's case: the successor's live group subscription is already past 2 when the old source hands it back.
    source_props = {"start_position": "first", "group": "es-g2", "max_concurrency": "1"}
    yaml = config(binding("es", "kubemq.events-store", "es.grp2", source_props)).replace("drainTimeoutSeconds: 5", "drainTimeoutSeconds: 0.5")
    running = await start(start_connector, broker, yaml)
    old_source, old_target = store_source(running, "es"), echo_target(running, "es")
    await publish(broker, "es.grp2", {"method": "sleep", "milliseconds": "2000"}, b"1", store=True)
    await publish(broker, "es.grp2", {"method": "echo"}, b"2", store=True)
    await eventually(lambda: old_target.calls == 1 and old_source._waiting == {2})
    await reload_changed(running, *LOG_LEVEL)  # 1 is cut off by the drain timeout; both 1 and 2 are handed back
    new_source, new_target = store_source(running, "es"), echo_target(running, "es")
    for i in range(3, 8):
        await publish(broker, "es.grp2", {"method": "echo"}, str(i).encode(), store=True)
    await eventually(lambda: new_source.progress.floor == 7)
    await asyncio.sleep(0.3)  # room for a wrong replay to show
    assert (old_target.calls, new_target.calls) == (1, 7)  # 1-2 again and 3-7, each once
    assert new_source.progress.resume_at == 8 and not new_source.progress._finished


@pytest.mark.parametrize("source_type", [EventsSource, EventsStoreSource])
def test_events_have_no_reply_size_limit_without_a_response_channel(source_type: type[EventsSource]) -> None:
    def source(**reply: str) -> EventsSource:
        return source_type(source_type.properties_model(address="localhost:50000", channel="es.limit", max_message_size=MIB, **reply), "es")

    assert source(response_channel="es.limit.resp").max_reply_data == (MIB - REPLY_ENVELOPE_ALLOWANCE) * 3 // 4
    assert source().max_reply_data is None
