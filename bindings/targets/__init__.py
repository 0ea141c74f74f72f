"""The engine's own target kinds: KubeMQ as a destination. A product adds its store's targets beside them."""

from bindings.target import Target
from bindings.targets.kubemq import TARGETS

__all__ = ["TARGETS", "Target"]
