"""What a product is made of: its source and target kinds by name (and kubemq-targets' aliases), and the development services it offers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from bindings.devservices import ServiceFactory
from bindings.source import Source
from bindings.target import Target


@dataclass(frozen=True)
class Registry:
    sources: dict[str, type[Source]] = field(default_factory=dict)
    targets: dict[str, type[Target]] = field(default_factory=dict)
    # Made once per runtime from the top-level settings; see ``bindings.devservices``.
    development_services: tuple[ServiceFactory, ...] = ()

    @classmethod
    def of(cls, sources: Iterable[type[Source]], targets: Iterable[type[Target]], development_services: Iterable[ServiceFactory] = ()) -> Registry:
        source_kinds: dict[str, type[Source]] = {}
        for source in sources:
            for name in (source.kind, *source.aliases):
                source_kinds[name] = source
        return cls(sources=source_kinds, targets={target.kind: target for target in targets}, development_services=tuple(development_services))

    def source_kinds(self) -> list[str]:
        """Canonical kinds only, in registration order."""
        return list(dict.fromkeys(source.kind for source in self.sources.values()))
