"""The KubeMQ source kinds. A new kind is a module here plus one line in ``SOURCES``."""

from typing import Any

from bindings.sources.command import CommandSource
from bindings.sources.events import EventsSource, EventsStoreSource
from bindings.sources.query import QuerySource
from bindings.sources.queue import QueueSource
from bindings.sources.subscription import SubscriptionSource

SOURCES: tuple[type[SubscriptionSource[Any, Any]], ...] = (QuerySource, CommandSource, QueueSource, EventsSource, EventsStoreSource)

__all__ = ["SOURCES"]
