"""KubeMQ on both sides of a binding, through the official SDK.

The source kinds (``SOURCES``: a new kind is a module here plus one line in it),
the target kinds (``targets.TARGETS``), the one adapter of the SDK's private
parts (``sdk.py``) and the ``send`` client (``client.py``).
"""

from typing import Any

from bindings.kubemq.command import CommandSource
from bindings.kubemq.events import EventsSource, EventsStoreSource
from bindings.kubemq.query import QuerySource
from bindings.kubemq.queue import QueueSource
from bindings.kubemq.subscription import SubscriptionSource

SOURCES: tuple[type[SubscriptionSource[Any, Any]], ...] = (QuerySource, CommandSource, QueueSource, EventsSource, EventsStoreSource)

__all__ = ["SOURCES"]
