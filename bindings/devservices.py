"""Development services: servers a development config asks the connector to run for it.

A component property set to ``embedded`` (a source's ``address``, the S3
target's ``endpoint``) names such a service instead of a real server. The
engine knows them only through this hook: before a binding's source starts or
its target is initialised, every registered service that ``serves`` the
component's properties is acquired and hands back the properties pointed at
the running server. The first user starts a service and the last one to
release it stops it; a binding being replaced acquires before its predecessor
releases, so a reload never restarts a server under a binding that keeps it.

Production configs never name one, and nothing here is imported by a
component: the product (``connector.app``) registers the services it offers.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from bindings.properties import Properties

EMBEDDED = "embedded"

PropertiesT = TypeVar("PropertiesT", bound=Properties)


class DevelopmentService(abc.ABC):
    """One development server shared by every binding that names it, reference counted."""

    name: ClassVar[str]

    def __init__(self) -> None:
        self._users = 0
        self._lock = asyncio.Lock()

    @property
    def users(self) -> int:
        return self._users

    @abc.abstractmethod
    def serves(self, properties: Properties) -> bool:
        """Whether these component properties name this service (a property set to ``embedded``)."""

    @abc.abstractmethod
    async def start(self, properties: Any) -> None:
        """Start the server for its first user, with what that user's properties ask for."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop the server after its last user released it."""

    def check_joins(self, properties: Any) -> None:
        """Refuse a later user whose properties ask for another server than the running one; by default any may join."""

    @abc.abstractmethod
    def point_at(self, properties: PropertiesT) -> PropertiesT:
        """The properties with the placeholder replaced by the running server's address (and whatever else it needs)."""

    async def acquire(self, properties: PropertiesT) -> PropertiesT:
        async with self._lock:
            if self._users == 0:
                await self.start(properties)
            else:
                self.check_joins(properties)
            self._users += 1
            return self.point_at(properties)

    async def release(self) -> None:
        async with self._lock:
            if self._users == 0:
                return
            self._users -= 1
            if self._users == 0:
                await self.stop()


# How a product offers a service: made once per runtime, from the config's top-level settings.
ServiceFactory = Callable[[Any], DevelopmentService]


class Acquired:
    """The development services one binding holds; released together when it stops."""

    def __init__(self, services: list[DevelopmentService]) -> None:
        self._services = services
        self._held: list[DevelopmentService] = []

    async def resolve(self, properties: PropertiesT) -> PropertiesT:
        """``properties`` pointed at every service that serves them (each acquired once per binding)."""
        for service in self._services:
            if service.serves(properties):
                properties = await service.acquire(properties)
                self._held.append(service)
        return properties

    async def release(self) -> None:
        held, self._held = self._held, []
        for service in reversed(held):
            await service.release()
