"""The KubeMQ source kinds. A new kind is a module here plus one line in ``SOURCES``."""

from bindings.source import Source
from bindings.sources.command import CommandSource
from bindings.sources.events import EventsSource, EventsStoreSource
from bindings.sources.query import QuerySource
from bindings.sources.queue import QueueSource

SOURCES: tuple[type[Source], ...] = (QuerySource, CommandSource, QueueSource, EventsSource, EventsStoreSource)

__all__ = ["SOURCES"]
