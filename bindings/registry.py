"""What a product is made of: its source and target kinds by name (and kubemq-targets' aliases), and the development services it offers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pydantic import BaseModel

from bindings.devservices import ServiceFactory
from bindings.internals import PrivateParts
from bindings.source import Source
from bindings.target import Target


@dataclass(frozen=True)
class Identity:
    """The names a product gives the engine, so the engine itself names no product.

    ``name`` appears in the JSON Schema, the generated reference, tracing and
    the ``send`` client's id; ``metric_prefix`` starts every metric name.
    """

    name: str = "bindings"
    metric_prefix: str = "bindings"
    schema_id: str = ""  # the ``$id`` of the shipped JSON Schema


@dataclass(frozen=True)
class Registry:
    identity: Identity = Identity()
    sources: dict[str, type[Source]] = field(default_factory=dict)
    targets: dict[str, type[Target]] = field(default_factory=dict)
    # Made once per runtime from the top-level settings; see ``bindings.devservices``.
    development_services: tuple[ServiceFactory, ...] = ()
    # Top-level config keys the development services read, one pydantic model each (``bindings.config.config_model``).
    settings: tuple[type[BaseModel], ...] = ()
    # The private library parts the adapters of the product's components use (the KubeMQ kinds' ``bindings.kubemq.sdk`` among them), checked at start-up (``bindings.internals``).
    private_parts: tuple[PrivateParts, ...] = ()

    @classmethod
    def of(
        cls,
        sources: Iterable[type[Source]],
        targets: Iterable[type[Target]],
        development_services: Iterable[ServiceFactory] = (),
        identity: Identity = Identity(),
        private_parts: Iterable[PrivateParts] = (),
        settings: Iterable[type[BaseModel]] = (),
    ) -> Registry:
        source_kinds: dict[str, type[Source]] = {}
        for source in sources:
            for name in (source.kind, *source.aliases):
                source_kinds[name] = source
        return cls(identity, source_kinds, {target.kind: target for target in targets}, tuple(development_services), tuple(settings), tuple(private_parts))

    def source_kinds(self) -> list[str]:
        """Canonical kinds only, in registration order."""
        return list(dict.fromkeys(source.kind for source in self.sources.values()))
