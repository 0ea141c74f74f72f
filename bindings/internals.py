"""Private parts of libraries the project relies on, declared and checked at start-up.

A few things the connector needs are only reachable through a library's
private attributes (the kubemq SDK's transport streams, botocore's loaded
credentials). Each library's uses live in one adapter module, which declares
them here as ``PrivateParts``. The runtime checks every declaration before it
starts anything: a library upgraded past what the adapter knows makes the
connector refuse to start with a message naming the library, its version, the
missing piece and the supported version, instead of failing later, in the
middle of a request, with a bare ``AttributeError``.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass

from bindings.errors import BindingsError


class IncompatibleLibrary(BindingsError):
    """An installed library lacks a private part an adapter uses."""


@dataclass(frozen=True)
class Part:
    """One private attribute, named as a reader finds it (``AsyncTransport._register_stream``), and how to tell it is there."""

    name: str
    present: Callable[[], bool]


def attribute(owner: object, name: str, *, label: str | None = None) -> Part:
    """``owner.name`` exists (a class attribute or method, or an attribute of an object the adapter makes to look)."""
    shown = label or f"{getattr(owner, '__name__', type(owner).__name__)}.{name}"
    return Part(shown, lambda: hasattr(owner, name))


@dataclass(frozen=True)
class PrivateParts:
    """What one adapter uses of one library, and the versions it was written for."""

    library: str  # the distribution's name, as pip knows it
    supported: str  # the version specifier the project pins
    adapter: str  # the module that holds every use
    parts: tuple[Part, ...]

    def missing(self) -> list[str]:
        """The parts the installed library lacks (a check that raises counts as missing)."""
        lacking = []
        for part in self.parts:
            try:
                present = part.present()
            except Exception:  # noqa: BLE001 - whatever the library does instead, the part is not as expected
                present = False
            if not present:
                lacking.append(part.name)
        return lacking

    def check(self) -> None:
        """Raise ``IncompatibleLibrary`` naming every missing part."""
        lacking = self.missing()
        if lacking:
            raise IncompatibleLibrary(
                f"{self.library} {_installed(self.library)} lacks {', '.join(lacking)}, which {self.adapter} uses; "
                f"the supported version is {self.library}{self.supported}: install it (pip install '{self.library}{self.supported}')"
            )


def _installed(library: str) -> str:
    try:
        return importlib.metadata.version(library)
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def check_all(declared: tuple[PrivateParts, ...]) -> None:
    """Check every adapter's parts; the first library that lacks any stops start-up."""
    for parts in declared:
        parts.check()
