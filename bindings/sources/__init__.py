"""The KubeMQ source kinds. A new kind is a module here plus one line in ``SOURCES``."""

from bindings.source import Source
from bindings.sources.command import CommandSource
from bindings.sources.query import QuerySource

SOURCES: tuple[type[Source], ...] = (QuerySource, CommandSource)

__all__ = ["SOURCES"]
