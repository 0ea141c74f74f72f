"""The ``aws.s3`` source: scan a bucket, send each object as a message, and act on the object only once the target confirmed it.

kubemq-sources' ``aws.s3`` source scans only the first 1,000 keys, forgets
what it sent on restart, deletes an object after a query whose far side
answered ``is_error: true``, and lets two replicas both send everything.
Here:

* every page of every folder is listed;
* an object counts as sent only when the binding's target confirmed it (the
  engine's ``Outcome`` is not failed); otherwise it stays where it is and is
  tried again on a later scan, with a doubling wait per object;
* ``after_send`` decides what happens next: ``delete`` (the default),
  ``keep`` (the version is recorded in the bucket, so only a changed object
  is sent again, across restarts), or ``move`` under ``move_prefix``;
* replicas send only while they hold the binding's lease in the bucket
  (``state.Lease``); the others stand by, ready, and take over when it lapses;
* an object larger than ``max_object_size_mib`` is never loaded whole: it
  goes as a multipart upload over the bus when the target brings replies back
  (``kubemq.query``), else it stays in the bucket and is reported.

Delivery is at least once: a message confirmed just before the process dies,
before its object was deleted, moved or recorded, is sent again after the
restart. Nothing is deleted unconfirmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from botocore.exceptions import ClientError

from bindings.context import RequestContext
from bindings.errors import RequestError
from bindings.source import Outcome, RequestHandler, Source
from connector.s3.client import MIN_POOL, S3Connection, static_credentials
from connector.s3.connection import MIB
from connector.s3.errors import is_not_found, translate
from connector.s3_source.messages import Found, reference, request_metadata, targets_request
from connector.s3_source.properties import WHOLE_BUCKET, S3SourceProperties
from connector.s3_source.state import Lease, Ledger, version_digest

log = structlog.get_logger("connector.s3_source")
# CopyObject's own limit; a larger object is moved with a managed (multipart) copy.
COPY_OBJECT_LIMIT = 5 * 1024 * MIB
FIRST_RETRY_SECONDS = 1.0


class Gone(Exception):
    """The object was deleted or replaced between the listing and the read: nothing to send now."""


class S3Source(Source):
    """kubemq-sources' ``aws.s3`` source, rebuilt so that nothing is lost or sent twice by two replicas."""

    kind = "aws.s3"
    properties_model = S3SourceProperties
    summary = "Objects landing in an S3 bucket become messages (kubemq-sources' `aws.s3` source): every page scanned, confirmed before deleted, durable `keep` mode, replicas coordinated."

    properties: S3SourceProperties

    def __init__(self, properties: S3SourceProperties, binding: str) -> None:
        super().__init__(properties, binding)
        self._handler: RequestHandler | None = None
        self._runner: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._connection: S3Connection | None = None
        self._lease: Lease | None = None
        self._ledger: Ledger | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        # Per key: the version that failed, when it may be tried again, and how many times it failed.
        self._retry: dict[str, tuple[str, float, int]] = {}
        # Per key: since when (monotonic) it waits to be delivered.
        self._waiting_since: dict[str, float] = {}

    @property
    def max_concurrency(self) -> int:
        return self.properties.concurrency

    @property
    def raw_payload(self) -> bool:
        """The message body is built here, whole; the target sends it as it is."""
        return True

    @property
    def in_flight(self) -> int:
        return len(self._deliveries)

    async def start(self, handler: RequestHandler) -> None:
        self._handler = handler
        self._stopping.clear()
        self.status.connection = f"s3://{self.properties.bucket_name}"
        self._runner = asyncio.create_task(self._run(), name=f"{self.binding}-aws.s3")

    async def stop(self, drain_timeout: float) -> None:
        self._stopping.set()
        if self._deliveries:
            _, pending = await asyncio.wait(set(self._deliveries), timeout=drain_timeout)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("drain timed out", binding=self.binding, cancelled=len(pending))
                await asyncio.gather(*pending, return_exceptions=True)
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner
            self._runner = None
        if self._lease is not None:
            with contextlib.suppress(Exception):
                await self._lease.release()
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()
        self.status.connected = False

    # The scanning loop ----------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                await self._round()
                failures = 0
                pause: float = self.properties.scan_interval
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reported on /ready, tried again
                failures += 1
                self._down(_reason(exc))
                pause = min(self.properties.retry_max_interval_seconds, self.properties.scan_interval * 2 ** min(failures - 1, 10))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=pause)

    async def _round(self) -> None:
        """Check the bucket, hold the lease, scan once and send what is due."""
        s3, lease = await self._client()
        await s3.head_bucket(Bucket=self.properties.bucket_name)
        if not await lease.refresh():
            self._up("standby: another replica holds the lease")
            return
        self._up("")
        renewer = asyncio.create_task(self._keep_lease(lease))
        try:
            await self._scan(s3, lease)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await renewer

    async def _keep_lease(self, lease: Lease) -> None:
        while True:
            await asyncio.sleep(lease.seconds / 3)
            try:
                await lease.refresh()
            except Exception as exc:  # noqa: BLE001 - the lease lapses on its own; sends stop when it does
                log.warning("lease not renewed", binding=self.binding, reason=_reason(exc))

    async def _client(self) -> tuple[Any, Lease]:
        """The S3 client and the binding's lease, made on first use."""
        if self._connection is None or self._lease is None:
            properties = self.properties
            connection = S3Connection(properties)
            await connection.open(static_credentials(properties), max(MIN_POOL, properties.concurrency * 2))
            self._connection = connection
            state = f"{properties.state_prefix}{self.binding}/"
            self._lease = Lease(connection.s3, properties.bucket_name, state + "lease", properties.lease_seconds)
            self._ledger = Ledger(connection.s3, properties.bucket_name, state + "sent/") if properties.after_send == "keep" else None
        return self._connection.s3, self._lease

    def _up(self, note: str) -> None:
        was_down = self.status.down_since is not None
        self.status.connected, self.status.last_error, self.status.down_since, self.status.attempts = True, None, None, 0
        self.status.connection = f"s3://{self.properties.bucket_name}" + (f" ({note})" if note else "")
        if was_down:
            log.info("bucket reachable again", binding=self.binding, bucket=self.properties.bucket_name)

    def _down(self, reason: str) -> None:
        if self.status.down_since is None:
            self.status.down_since = time.monotonic()
            log.warning("cannot scan the bucket; retrying", binding=self.binding, bucket=self.properties.bucket_name, reason=reason)
        else:
            self.status.attempts += 1
        self.status.connected, self.status.last_error = False, reason

    # One scan -------------------------------------------------------------------

    async def _scan(self, s3: Any, lease: Lease) -> None:
        if self._ledger is not None:
            await self._ledger.load()
        listed: list[Found] = [found async for found in self._listing(s3)]
        self.item_counts.found(len(listed))
        due = self._due(listed)
        self._report_backlog()
        slots = asyncio.Semaphore(self.properties.concurrency)
        batch: list[asyncio.Task[None]] = []
        for found in due:
            await slots.acquire()
            if self._stopping.is_set() or not lease.held:
                slots.release()
                break
            task = asyncio.create_task(self._deliver(s3, found))
            task.add_done_callback(self._deliveries.discard)
            task.add_done_callback(lambda _: slots.release())
            self._deliveries.add(task)
            batch.append(task)
        await asyncio.gather(*batch, return_exceptions=True)
        self._report_backlog()
        if self._ledger is not None and not self._stopping.is_set():
            await self._ledger.prune({version_digest(found.key, found.etag) for found in listed})

    async def _listing(self, s3: Any) -> AsyncIterator[Found]:
        """Every object of the watched folders that the filters let through, every page."""
        properties = self.properties
        excluded = properties.excluded_prefixes()
        roots = [""] if properties.folders == [WHOLE_BUCKET] else properties.folders
        paginator = s3.get_paginator("list_objects_v2")
        for root in roots:
            async for page in paginator.paginate(Bucket=properties.bucket_name, Prefix=root + properties.prefix):
                for item in page.get("Contents", ()):
                    key: str = item["Key"]
                    if key.startswith(excluded) or (key.endswith("/") and item["Size"] == 0):
                        continue  # this source's own state, what it moved, folder markers
                    if properties.suffixes and not key.endswith(tuple(properties.suffixes)):
                        continue
                    if properties.modified_after is not None and item["LastModified"] <= properties.modified_after:
                        continue
                    yield Found(key, item["ETag"], item["Size"], item["LastModified"])

    def _due(self, listed: list[Found]) -> list[Found]:
        """What to send now: not sent yet (``keep``: this version), not waiting out a failure."""
        now = time.monotonic()
        due = []
        present = set()
        for found in listed:
            if self._ledger is not None and self._ledger.has(found.key, found.etag):
                continue
            present.add(found.key)
            self._waiting_since.setdefault(found.key, now)
            failed = self._retry.get(found.key)
            if failed is not None and failed[0] == found.etag and failed[1] > now:
                continue
            due.append(found)
        # Keys gone from the listing wait no more (deleted by someone else, or sent and recorded).
        for key in set(self._waiting_since) - present:
            del self._waiting_since[key]
        for key in set(self._retry) - present:
            del self._retry[key]
        return due

    def _report_backlog(self) -> None:
        oldest = min(self._waiting_since.values(), default=None)
        self.item_counts.backlog(len(self._waiting_since), 0.0 if oldest is None else time.monotonic() - oldest)

    # One object -----------------------------------------------------------------

    async def _deliver(self, s3: Any, found: Found) -> None:
        """Send one object and act on it; every path ends in delivered, failed (tried again later) or gone."""
        try:
            error = await self._send(s3, found)
            if error is None:
                await self._after_send(s3, found)
        except Gone:
            log.debug("object changed or deleted before it was read; skipped", binding=self.binding, key=found.key)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - one object's failure must not stop the scan
            error = _reason(exc)
        if error is not None:
            self._failed(found, error)
            return
        self._retry.pop(found.key, None)
        self._waiting_since.pop(found.key, None)
        self.item_counts.delivered()
        log.info("object sent", binding=self.binding, key=found.key, size=found.size, after_send=self.properties.after_send)

    async def _send(self, s3: Any, found: Found) -> str | None:
        """Send ``found``'s message; None when confirmed, else why not."""
        properties = self.properties
        if properties.payload == "reference":
            expires = datetime.now(UTC) + timedelta(seconds=properties.reference_url_seconds)
            params = {"Bucket": properties.bucket_name, "Key": found.key}
            url = await s3.generate_presigned_url("get_object", Params=params, ExpiresIn=properties.reference_url_seconds)
            return await self._confirmed(reference(found, properties.bucket_name, url, expires), found, "")
        if found.size > properties.max_object_size_mib * MIB:
            return await self._send_in_parts(s3, found)
        metadata = request_metadata(str(properties.target_type), found, properties.addressed_bucket, properties.bucket_name)
        # The bytes read are dropped once encoded: only the message body stays while it is sent.
        return await self._confirmed(targets_request(metadata, await self._read(s3, found)), found, "")

    async def _confirmed(self, body: bytes, found: Found, step: str) -> str | None:
        """Hand one message to the binding; None when the target confirmed it."""
        outcome = await self._outcome(body, found, step)
        return outcome.response.last_error or "not delivered" if outcome.failed else None

    async def _outcome(self, body: bytes, found: Found, step: str) -> Outcome:
        handler = self._handler
        if handler is None:
            raise RuntimeError("the aws.s3 source was not started")
        context = RequestContext(self.binding, request_id=f"{found.key}@{found.etag}{step}", source_kind=self.kind)
        return await handler(body, context)

    async def _read(self, s3: Any, found: Found, byte_range: str | None = None) -> bytes:
        """The object's bytes (or a range of them), as long as it is still the version listed."""
        params: dict[str, Any] = {"Bucket": self.properties.bucket_name, "Key": found.key, "IfMatch": found.etag}
        if byte_range is not None:
            params["Range"] = byte_range
        try:
            answer = await s3.get_object(**params)
            async with answer["Body"] as stream:
                return bytes(await stream.read())
        except ClientError as exc:
            if is_not_found(exc) or exc.response.get("Error", {}).get("Code") == "PreconditionFailed":
                raise Gone from exc
            raise

    async def _send_in_parts(self, s3: Any, found: Found) -> str | None:
        """A multipart upload over the bus: the object a part at a time, never whole in memory."""
        properties = self.properties
        limit = f"the object ({found.size} bytes) is larger than max_object_size_mib ({properties.max_object_size_mib} MiB)"
        if properties.target_type != "aws":
            return f"{limit}; only target_type 'aws' can send it in parts (or use payload 'reference')"
        if not self.target_answers:
            return f"{limit}; sending it in parts needs the far side's replies (a kubemq.query target), or use payload 'reference'"
        where = {"bucket_name": properties.addressed_bucket, "item_name": found.key}
        created = await self._outcome(targets_request({"method": "create_multipart_upload", **where}, b""), found, "#create")
        if created.failed:
            return f"create_multipart_upload: {created.response.last_error}"
        upload_id = created.response.metadata.get("upload_id")
        if not upload_id:
            return f"create_multipart_upload: the reply names no upload_id ({created.response.metadata})"
        part_size = properties.part_size_mib * MIB
        for number, start in enumerate(range(0, found.size, part_size), start=1):
            end = min(start + part_size, found.size) - 1
            try:
                data = await self._read(s3, found, f"bytes={start}-{end}")
            except BaseException:
                await self._abort(where, upload_id, found)
                raise
            error = await self._confirmed(targets_request({"method": "upload_part", **where, "upload_id": upload_id, "part_number": str(number)}, data), found, f"#part{number}")
            if error is not None:
                await self._abort(where, upload_id, found)
                return f"upload_part {number}: {error}"
        error = await self._confirmed(targets_request({"method": "complete_multipart_upload", **where, "upload_id": upload_id}, b""), found, "#complete")
        if error is not None:
            await self._abort(where, upload_id, found)
            return f"complete_multipart_upload: {error}"
        return None

    async def _abort(self, where: dict[str, str], upload_id: str, found: Found) -> None:
        with contextlib.suppress(Exception):
            await self._outcome(targets_request({"method": "abort_multipart_upload", **where, "upload_id": upload_id}, b""), found, "#abort")

    async def _after_send(self, s3: Any, found: Found) -> None:
        properties = self.properties
        bucket = properties.bucket_name
        if self._ledger is not None:  # keep mode
            await self._ledger.record(found.key, found.etag)
            return
        if properties.after_send == "move":
            source = {"Bucket": bucket, "Key": found.key}
            if found.size <= COPY_OBJECT_LIMIT:
                await s3.copy_object(Bucket=bucket, Key=properties.move_prefix + found.key, CopySource=source, CopySourceIfMatch=found.etag)
            else:
                await s3.copy(source, bucket, properties.move_prefix + found.key)
        await s3.delete_object(Bucket=bucket, Key=found.key)

    def _failed(self, found: Found, error: str) -> None:
        previous = self._retry.get(found.key)
        failures = previous[2] + 1 if previous is not None and previous[0] == found.etag else 1
        wait = min(self.properties.retry_max_interval_seconds, FIRST_RETRY_SECONDS * 2 ** min(failures - 1, 20)) * random.uniform(0.8, 1.2)
        self._retry[found.key] = (found.etag, time.monotonic() + wait, failures)
        self.item_counts.failed()
        log.warning("object not sent; trying again later", binding=self.binding, key=found.key, reason=error, failures=failures, retry_in_seconds=round(wait, 1))


def _reason(exc: BaseException) -> str:
    """One line saying what failed, S3's code and status included; never a credential."""
    error = exc if isinstance(exc, RequestError) else translate(exc) if isinstance(exc, Exception) else exc
    return " ".join(str(error).split()) or type(exc).__name__
