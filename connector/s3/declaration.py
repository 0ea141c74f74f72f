"""An S3 method, declared once next to its handler.

``S3Method`` is the engine's ``Method`` (name, metadata model, handler,
summary, whether it may be cancelled, how kubemq-targets answers it) plus
what the S3 target's own machinery needs of it:

* ``reaches``: what a request reaches and whether it writes there, seeing the
  request's data where it matters (``delete_items`` reads its keys there); the
  binding's least-privilege policy checks it once, before any S3 call;
* ``example``: a request's metadata as docs/methods.md shows it (besides
  ``method``), with ``example_data``; tests check that the docs show it.

The method table, ``read_only``, the policy, the method lists in errors,
docs and tests are all derived from these declarations (``target.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bindings.context import RequestContext
from bindings.target import KubemqTargetsReply, MetadataT, Method
from bindings.wire import Request, Response
from connector.s3.client import S3Client
from connector.s3.policy import Access

# What a request reaches: its parsed metadata and the request itself -> every bucket, key or prefix, read or written.
Reaches = Callable[[Any, Request], tuple[Access, ...]]


@dataclass(frozen=True, kw_only=True)
class S3Method(Method[MetadataT]):
    """One ``aws.s3`` method: the engine's declaration plus its reach and its documented example."""

    # Handed the target's S3 client: mypy checks the handler's owner too, not only its metadata.
    handler: Callable[[S3Client, MetadataT, Request, RequestContext], Awaitable[Response]]
    reaches: Callable[[MetadataT, Request], tuple[Access, ...]]
    example: Mapping[str, str]
    example_data: bytes = b""


# kubemq-targets answers ``{"result":"ok"}`` with the S3 output as data (``get_item`` also names bucket and key).
KUBEMQ_TARGETS_REPLY = KubemqTargetsReply()
