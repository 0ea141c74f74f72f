"""``address: embedded``: the development KubeMQ broker (``devbroker``) as a development service of the runtime.

It listens on 127.0.0.1 only, on the config's ``embeddedBrokerPort``, and
serves every binding whose source says ``address: embedded``; the first such
binding starts it and the last one to stop stops it.
"""

from __future__ import annotations

from typing import Any

import structlog
from pydantic import BaseModel, Field

from bindings.config import Config
from bindings.devservices import EMBEDDED, DevelopmentService, PropertiesT
from bindings.kubemq.connection import KubemqClientProperties
from bindings.properties import Properties
from devbroker import EmbeddedBroker

log = structlog.get_logger("connector.embedded_broker")


DEFAULT_PORT = 50000


class EmbeddedBrokerSettings(BaseModel):
    """The top-level config key this service reads (declared here, where it is read)."""

    embeddedBrokerPort: int = Field(DEFAULT_PORT, ge=0, le=65535, description="Port of the built-in development broker started for `address: embedded`.")


class EmbeddedBrokerService(DevelopmentService):
    """The development broker for the sources that name it."""

    name = "embedded KubeMQ broker"

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port
        self._broker: EmbeddedBroker | None = None

    @classmethod
    def offer(cls, settings: Config) -> EmbeddedBrokerService:
        return cls(EmbeddedBrokerSettings.model_validate(settings, from_attributes=True).embeddedBrokerPort)

    def serves(self, properties: Properties) -> bool:
        return isinstance(properties, KubemqClientProperties) and properties.address == EMBEDDED

    async def start(self, properties: Any) -> None:
        broker = EmbeddedBroker(host="127.0.0.1", port=self.port)
        await broker.start()
        self._broker = broker
        log.warning("embedded development broker started; use a real KubeMQ in production", address=broker.address)

    async def stop(self) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.stop()

    def point_at(self, properties: PropertiesT) -> PropertiesT:
        if self._broker is None:
            raise RuntimeError("the embedded broker is not running")
        return properties.model_copy(update={"address": self._broker.address})
