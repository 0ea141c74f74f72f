"""Least privilege per binding: the methods, buckets and keys one ``aws.s3`` binding may reach.

IAM bounds what the connector's credentials may do, and every service that
can write to the binding's channel gets all of it. This policy narrows that
per binding. It is checked once per request, after the metadata is parsed
and before any S3 call, against what the method table declares the request
reaches (``Access``), so no method can skip it.

Patterns are IAM's resource wildcards, which S3 users already write: ``*`` is
any run of characters, ``/`` included (``incoming/*`` covers
``incoming/2024/a.csv``), ``?`` is one character, everything else is literal
and case-sensitive (``[`` included: it is an ordinary key character).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from bindings.errors import TargetError
from bindings.hints import did_you_mean
from bindings.wire import Request

POLICY_DENIED = "PolicyDenied"  # the error code, as the errors metric counts it
WILDCARD = "*"


@dataclass(frozen=True)
class Access:
    """One thing a request reaches, and whether it (or the URL it hands out) writes there.

    ``bucket`` None: no bucket at all (``list_buckets``). In the bucket, ``key``
    is one object and ``prefix`` every key starting with it (``""``: all of
    them); neither: the bucket itself (creating it, deleting it empty).
    """

    writes: bool
    bucket: str | None = None
    key: str | None = None
    prefix: str | None = None
    role: str = ""  # "source" for what a copy reads: refusals say which side was refused
    via: str = ""  # what makes this request a write, when the method alone does not say

    def named(self, noun: str) -> str:
        return f"{self.role} {noun}" if self.role else noun


class NamesBucket(Protocol):
    """Metadata naming a bucket (what the reach helpers read: typed, so mypy matches each declaration's metadata to its reach)."""

    @property
    def bucket_name(self) -> str: ...


class NamesItem(NamesBucket, Protocol):
    @property
    def item_name(self) -> str: ...


class NamesPrefix(NamesBucket, Protocol):
    @property
    def prefix(self) -> str | None: ...


class ForcesBucket(NamesBucket, Protocol):
    @property
    def force(self) -> bool: ...


class NamesSource(NamesItem, Protocol):
    @property
    def source(self) -> dict[str, str]: ...


class NamesOperation(NamesItem, Protocol):
    @property
    def operation(self) -> str: ...


def reaches_nothing(metadata: object, request: Request) -> tuple[Access, ...]:
    return ()


def reads_item(metadata: NamesItem, request: Request) -> tuple[Access, ...]:
    return (Access(writes=False, bucket=metadata.bucket_name, key=metadata.item_name),)


def writes_item(metadata: NamesItem, request: Request) -> tuple[Access, ...]:
    return (Access(writes=True, bucket=metadata.bucket_name, key=metadata.item_name),)


def writes_bucket(metadata: NamesBucket, request: Request) -> tuple[Access, ...]:
    return (Access(writes=True, bucket=metadata.bucket_name),)


def reads_prefix(metadata: NamesPrefix, request: Request) -> tuple[Access, ...]:
    return (Access(writes=False, bucket=metadata.bucket_name, prefix=metadata.prefix or ""),)


def writes_prefix(metadata: NamesPrefix, request: Request) -> tuple[Access, ...]:
    return (Access(writes=True, bucket=metadata.bucket_name, prefix=metadata.prefix or ""),)


def deletes_bucket(metadata: ForcesBucket, request: Request) -> tuple[Access, ...]:
    """The bucket; with ``force`` also every object in it."""
    return (Access(writes=True, bucket=metadata.bucket_name, prefix="" if metadata.force else None),)


def copies(metadata: NamesSource, request: Request) -> tuple[Access, ...]:
    """A copy reads its source and writes its destination; both are checked."""
    source = metadata.source
    return (Access(writes=False, bucket=source["Bucket"], key=source["Key"], role="source"), *writes_item(metadata, request))


def presigns(metadata: NamesOperation, request: Request) -> tuple[Access, ...]:
    """A URL allows what its operation does: a put or delete URL is a write, though signing it changes nothing."""
    operation = metadata.operation
    return (Access(writes=operation != "get", bucket=metadata.bucket_name, key=metadata.item_name, via=f" with operation={operation}"),)


class PolicyDenied(TargetError):
    """The binding's policy refuses the request. Never retried: the same request is refused again."""

    def __init__(self, message: str) -> None:
        super().__init__(f"AccessDenied: {message}", code=POLICY_DENIED, status=403)


class Patterns:
    """Names allowed by a list of wildcard patterns."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self._patterns = tuple(patterns)
        self._compiled = tuple(_compile(pattern) for pattern in self._patterns)

    def match(self, name: str) -> bool:
        return any(pattern.fullmatch(name) for pattern in self._compiled)

    def cover(self, prefix: str) -> bool:
        """True when every name starting with ``prefix`` matches.

        It does when a pattern ending in ``*`` matches the prefix itself (that
        final ``*`` takes whatever follows): ``incoming/*`` covers ``incoming/``
        and ``incoming/2024/``, not ``inc`` or ``""``. No other pattern is
        taken to cover a prefix.
        """
        return any(text.endswith(WILDCARD) and pattern.fullmatch(prefix) for text, pattern in zip(self._patterns, self._compiled, strict=True))


def _compile(pattern: str) -> re.Pattern[str]:
    parts = (".*" if char == WILDCARD else "." if char == "?" else re.escape(char) for char in pattern)
    return re.compile("".join(parts), re.DOTALL)  # keys may hold newlines; ``*`` and ``?`` take them too


@dataclass(frozen=True)
class AccessPolicy:
    """A binding's rules; ``None`` means unrestricted, as kubemq-targets behaves."""

    methods: frozenset[str] | None = None
    buckets: Patterns | None = None
    keys: Patterns | None = None
    read_only: bool = False

    @property
    def restricts(self) -> bool:
        """Whether any rule is set; without one every request passes, as in kubemq-targets."""
        return self.methods is not None or self.buckets is not None or self.keys is not None or self.read_only

    def check(self, method: str, reaches: Sequence[Access], binding: str) -> None:
        """Raise ``PolicyDenied`` naming the first rule the request breaks (its values only, never the policy's)."""
        where = f"on binding {binding!r}"
        if self.methods is not None and method not in self.methods:
            raise PolicyDenied(f"method {method} is not allowed {where} (allowed_methods)")
        for access in reaches:
            if access.writes and self.read_only:
                raise PolicyDenied(f"method {method}{access.via} writes, and binding {binding!r} is read-only (read_only)")
            if access.bucket is None:
                continue
            if not self.allows_bucket(access.bucket):
                raise PolicyDenied(f"{access.named('bucket')} {access.bucket!r} is not allowed {where} (allowed_buckets)")
            if self.keys is None:
                continue
            if access.key is not None and not self.keys.match(access.key):
                raise PolicyDenied(f"{access.named('key')} {access.key!r} is not allowed {where} (allowed_keys)")
            if access.prefix is not None and not self.keys.cover(access.prefix):
                reached = f"every key under prefix {access.prefix!r}" if access.prefix else "every key of the bucket"
                raise PolicyDenied(f"method {method} reaches {reached}, beyond what is allowed {where} (allowed_keys; give a prefix that a pattern ending in * matches)")

    def allows_bucket(self, name: str) -> bool:
        return self.buckets is None or self.buckets.match(name)


def check_method_names(names: Iterable[str], known: Sequence[str]) -> None:
    """Refuse names that are not methods, suggesting the closest one (a typo would otherwise quietly deny that method)."""
    problems = []
    for name in names:
        if name not in known:
            hint = did_you_mean(name, known)
            problems.append(f"unknown method {name!r}" + (f" ({hint})" if hint else ""))
    if problems:
        raise ValueError("; ".join(problems) + "; methods: " + ", ".join(known))


def check_bucket_patterns(patterns: Iterable[str]) -> None:
    """A ``/`` cannot occur in a bucket name: such a pattern is a key pattern put in the wrong place."""
    wrong = [pattern for pattern in patterns if "/" in pattern]
    if wrong:
        raise ValueError(f"bucket names hold no '/', so {', '.join(map(repr, wrong))} can never match (key patterns go in allowed_keys)")
