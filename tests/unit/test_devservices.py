"""The development-services hook: a binding holds each service its config names once, and gives it back when it stops."""

from __future__ import annotations

from typing import Any

from bindings.config import parse_config
from bindings.devservices import EMBEDDED, DevelopmentService, PropertiesT
from bindings.engine import Binding
from bindings.kubemq.connection import ConnectionProperties
from bindings.metrics import Metrics
from bindings.properties import Properties
from tests.fixtures.echo_target import EchoProperties
from tests.fixtures.registries import ECHO_REGISTRY


class Recorder(DevelopmentService):
    """A service that serves one kind of properties with ``embedded`` in ``field``; it can refuse its first starts."""

    name = "recorder"

    def __init__(self, kind: type[Properties], field: str, failures: int = 0) -> None:
        super().__init__()
        self.kind, self.field, self.failures, self.starts, self.stops = kind, field, failures, 0, 0

    def serves(self, properties: Properties) -> bool:
        return isinstance(properties, self.kind) and getattr(properties, self.field) == EMBEDDED

    async def start(self, properties: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("port in use")
        self.starts += 1

    async def stop(self) -> None:
        self.stops += 1

    def point_at(self, properties: PropertiesT) -> PropertiesT:
        return properties.model_copy(update={self.field: "127.0.0.1:1" if self.field == "address" else "served"})


def embedded_binding(services: list[DevelopmentService]) -> Binding:
    config = parse_config(
        """
bindings:
  - name: dev
    source:
      kind: kubemq.query
      properties:
        address: embedded
        channel: dev
    target:
      kind: test.echo
      properties:
        prefix: embedded
""",
        ECHO_REGISTRY,
    )
    return Binding(config.bindings[0], ECHO_REGISTRY, Metrics(), services)


async def test_each_side_is_pointed_once_even_when_a_later_step_failed_and_released_on_stop() -> None:
    broker, store = Recorder(ConnectionProperties, "address"), Recorder(EchoProperties, "prefix", failures=1)
    binding = embedded_binding([broker, store])
    await binding.prepare()  # the store refuses: the broker is held, the target not ready
    assert (binding.target_ready, broker.users, store.users) == (False, 1, 0)
    await binding.prepare()  # the store starts now; the broker is not acquired a second time
    assert (binding.target_ready, broker.users, store.users) == (True, 1, 1)
    assert binding.source.properties.address == "127.0.0.1:1"
    assert binding.source.status.connection == "127.0.0.1:1/dev"
    await binding.stop(0)
    assert (broker.users, store.users, broker.stops, store.stops) == (0, 0, 1, 1)


async def test_a_service_is_shared_by_the_bindings_that_name_it() -> None:
    broker = Recorder(ConnectionProperties, "address")
    first, second = embedded_binding([broker]), embedded_binding([broker])
    await first.prepare()
    await second.prepare()
    assert (broker.starts, broker.users) == (1, 2)
    await first.stop(0)
    assert (broker.stops, broker.users) == (0, 1)  # the second binding still uses it
    await second.stop(0)
    assert (broker.stops, broker.users) == (1, 0)
