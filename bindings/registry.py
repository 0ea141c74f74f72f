"""Which source and target kinds exist, by name (and kubemq-targets' aliases)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from bindings.source import Source
from bindings.target import Target


@dataclass(frozen=True)
class Registry:
    sources: dict[str, type[Source]] = field(default_factory=dict)
    targets: dict[str, type[Target]] = field(default_factory=dict)

    @classmethod
    def of(cls, sources: Iterable[type[Source]], targets: Iterable[type[Target]]) -> Registry:
        source_kinds: dict[str, type[Source]] = {}
        for source in sources:
            for name in (source.kind, *source.aliases):
                source_kinds[name] = source
        return cls(sources=source_kinds, targets={target.kind: target for target in targets})

    def source_kinds(self) -> list[str]:
        """Canonical kinds only, in registration order."""
        return list(dict.fromkeys(source.kind for source in self.sources.values()))
