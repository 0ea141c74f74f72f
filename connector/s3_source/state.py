"""The source's durable state, kept in the bucket itself under ``state_prefix``.

Nothing lives on local disk, so a restarted pod or another replica sees the
same state:

* **The lease** (``<state_prefix><binding>/lease``): replicas of a binding
  send only while they hold it. It is taken with a conditional create
  (``If-None-Match: *``), renewed and taken over with a compare-and-swap
  (``If-Match`` on the ETag last seen), so two replicas can never both
  believe they hold it: only one conditional write on the same ETag wins.
  A holder that stops renewing (killed, partitioned) loses it after
  ``lease_seconds``, and a standby takes over.
* **The ledger** (``<state_prefix><binding>/sent/<digest>``), in ``keep``
  mode: one empty object per object version sent, named by a digest of the
  key and its ETag. A listing of the ledger says what was sent without
  reading anything; entries of versions no longer in the bucket are pruned.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import uuid
from typing import Any

from botocore.exceptions import ClientError

from connector.s3.errors import is_not_found, is_precondition_failed


class Lease:
    """One binding's lease; ``held`` says whether this replica may send now."""

    def __init__(self, s3: Any, bucket: str, key: str, seconds: int) -> None:
        self.s3, self.bucket, self.key, self.seconds = s3, bucket, key, seconds
        self.owner = uuid.uuid4().hex
        # False once a second conditional create succeeded: the store ignores If-None-Match, and replicas cannot share the lease.
        self.conditional = True
        self._etag: str | None = None
        self._valid_until = 0.0  # monotonic; a margin before the lease really expires for the others

    @property
    def held(self) -> bool:
        return self._etag is not None and time.monotonic() < self._valid_until

    async def refresh(self) -> bool:
        """Renew the lease if held, else take it if free, expired or ours; whether it is held now."""
        if self._etag is not None and await self._write(IfMatch=self._etag):
            return True
        self._etag = None
        if await self._write(IfNoneMatch="*"):
            await self._probe_conditional_writes()
            return True
        current = await self._current()
        if current is None:  # released between the two calls: the next refresh takes it
            return False
        etag, owner, expires = current
        # Ours: a renewal the store applied while its answer was lost (a cancel, a retried timeout) left us its old ETag.
        if owner == self.owner or expires < time.time():
            return await self._write(IfMatch=etag)
        return False

    async def _probe_conditional_writes(self) -> None:
        """A second create of the lease must be refused; a store that takes it ignores conditional writes."""
        try:
            await self.s3.put_object(Bucket=self.bucket, Key=self.key + ".probe", Body=b"", IfNoneMatch="*")
            await self.s3.put_object(Bucket=self.bucket, Key=self.key + ".probe", Body=b"", IfNoneMatch="*")
        except ClientError as exc:
            if not is_precondition_failed(exc, or_conflict=True):
                raise
            self.conditional = True
        else:
            self.conditional = False
        finally:
            with contextlib.suppress(ClientError):
                await self.s3.delete_object(Bucket=self.bucket, Key=self.key + ".probe")

    async def release(self) -> None:
        """Give the lease up at once (a clean stop), so a standby need not wait for it to expire; only a lease still held."""
        etag, held, self._etag = self._etag, self.held, None
        if etag is not None and held:
            with contextlib.suppress(ClientError):  # taken over meanwhile, or gone: nothing to give up
                await self.s3.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=etag)

    async def _write(self, **condition: str) -> bool:
        started = time.monotonic()
        body = json.dumps({"owner": self.owner, "expires": time.time() + self.seconds}).encode()
        try:
            written = await self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=body, ContentType="application/json", **condition)
        except ClientError as exc:
            if is_precondition_failed(exc, or_conflict=True) or (is_not_found(exc) and "IfMatch" in condition):
                return False
            raise
        self._etag = written["ETag"]
        # Valid for a third less than the others wait, counted from before the write: clocks and delays differ.
        self._valid_until = started + self.seconds * 2 / 3
        return True

    async def _current(self) -> tuple[str, str, float] | None:
        """The lease as stored: its ETag, owner and expiry (epoch seconds); None when there is none."""
        try:
            found = await self.s3.get_object(Bucket=self.bucket, Key=self.key)
            async with found["Body"] as body:
                content = await body.read()
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise
        try:
            document = json.loads(content)
            owner, expires = str(document["owner"]), float(document["expires"])
        except (ValueError, KeyError, TypeError):
            owner, expires = "", 0.0  # not a lease this source wrote: free to take
        return found["ETag"], owner, expires


def version_digest(key: str, etag: str) -> str:
    """The ledger name of one object version."""
    return hashlib.sha256(f"{key}\0{etag}".encode()).hexdigest()


class Ledger:
    """Which object versions were sent (``keep`` mode), as empty objects named by digest."""

    def __init__(self, s3: Any, bucket: str, prefix: str) -> None:
        self.s3, self.bucket, self.prefix = s3, bucket, prefix
        self.sent: set[str] = set()

    async def load(self) -> None:
        """Read the ledger's listing, every page."""
        sent: set[str] = set()
        paginator = self.s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            sent.update(item["Key"][len(self.prefix) :] for item in page.get("Contents", ()))
        self.sent = sent

    def has(self, key: str, etag: str) -> bool:
        return version_digest(key, etag) in self.sent

    async def record(self, key: str, etag: str) -> None:
        digest = version_digest(key, etag)
        await self.s3.put_object(Bucket=self.bucket, Key=self.prefix + digest, Body=b"")
        self.sent.add(digest)

    async def prune(self, current: set[str]) -> int:
        """Drop the entries of versions not in ``current`` (digests of what the last full scan listed); how many."""
        stale = sorted(self.sent - current)
        for start in range(0, len(stale), 1000):
            batch = stale[start : start + 1000]
            await self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": self.prefix + digest} for digest in batch], "Quiet": True})
        self.sent -= set(stale)
        return len(stale)
