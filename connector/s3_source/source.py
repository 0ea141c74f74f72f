"""The ``aws.s3`` source: scan a bucket, send each object as a message, and act on the object only once the target confirmed it.

kubemq-sources' ``aws.s3`` source scans only the first 1,000 keys, forgets
what it sent on restart, deletes an object after a query whose far side
answered ``is_error: true``, and lets two replicas both send everything.
Here:

* every page of every folder is listed, and objects are sent page by page;
* an object counts as sent only when the binding's target confirmed it (the
  engine's ``Outcome`` is not failed); otherwise it stays where it is and is
  tried again on a later scan, with a doubling wait per object;
* ``after_send`` decides what happens next (``delivery.py``): ``delete`` (the
  default), ``keep`` (the version is recorded in the bucket, so only a changed
  object is sent again, across restarts), or ``move`` under ``move_prefix``;
  when that step fails, only that step is tried again, not the send;
* replicas send only while they hold the binding's lease in the bucket
  (``state.Lease``); the others stand by, ready, and take over when it lapses.

Every object a scan finds ends in one outcome: delivered, failed (tried again
later), or gone (changed or deleted since the listing; the next scan sees what
is there). Delivery is at least once: a message confirmed just before the
process dies, before its object was deleted, moved or recorded, is sent again
after the restart. Nothing is deleted unconfirmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import structlog

from bindings.context import RequestContext
from bindings.errors import RequestError
from bindings.kubemq.targets import TARGETS, KubemqTarget
from bindings.source import Outcome, RequestHandler, Source, drain
from bindings.target import Target
from connector.s3.client import MIN_POOL, S3Connection, static_credentials
from connector.s3.errors import translate
from connector.s3_source.delivery import Delivery, Gone
from connector.s3_source.messages import Found
from connector.s3_source.properties import WHOLE_BUCKET, S3SourceProperties
from connector.s3_source.state import Lease, Ledger, version_digest

log = structlog.get_logger("connector.s3_source")
FIRST_RETRY_SECONDS = 1.0
# Clean-up at a stop (the lease given up, the client closed) must not outlast the drain by much.
STOP_STEP_SECONDS = 5.0


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
        self._delivery: Delivery | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        # Per key: the version that failed, when it may be tried again, and how many times it failed.
        self._retry: dict[str, tuple[str, float, int]] = {}
        # Per key: a version whose message was confirmed while its after_send step failed: only that step is due.
        self._sent_pending_after: dict[str, str] = {}
        # Per key: since when (epoch seconds) it waits to be delivered.
        self._waiting_since: dict[str, float] = {}
        self._ledger_fresh = False  # keep mode: the ledger is read again when the lease was (re)taken
        # Whole scans done (every page listed, every due object settled): what follows one is what the bucket held.
        self.completed_scans = 0

    @classmethod
    def target_problem(cls, target: type[Target]) -> str | None:
        """The source sends whole messages: only a KubeMQ target kind can carry them."""
        if issubclass(target, KubemqTarget):
            return None
        kinds = ", ".join(kind.kind for kind in TARGETS)
        return f"the aws.s3 source sends each object as one message: its target must be a KubeMQ kind ({kinds}), not {target.kind}"

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
        self._runner.add_done_callback(self._runner_ended)

    async def stop(self, drain_timeout: float) -> None:
        self._stopping.set()
        await drain(self._deliveries, drain_timeout, self.binding)
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner
            self._runner = None
        if self._lease is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(STOP_STEP_SECONDS):
                    await self._lease.release()
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(STOP_STEP_SECONDS):
                    await connection.close()
        self.status.connected = False

    def _runner_ended(self, task: asyncio.Task[None]) -> None:
        """A scan loop that ended while nobody stopped it is a bug: the binding says so instead of looking ready."""
        if self._stopping.is_set():
            return
        reason = "the scan loop ended" if task.cancelled() else f"the scan loop ended: {task.exception()!r}"
        self.status.failed, self.status.last_error = True, reason
        log.error("aws.s3 source stopped scanning", binding=self.binding, reason=reason)

    # The scanning loop ----------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                await self._round()
                failures = 0
                pause: float = self.properties.scan_interval
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is None or current.cancelling():
                    raise
                failures += 1  # a cancellation leaked by a library, not ours: one failed round
                self._down("a scan was cancelled")
                pause = self.properties.scan_interval
            except Exception as exc:  # noqa: BLE001 - reported on /ready, tried again
                failures += 1
                self._down(_reason(exc))
                pause = min(self.properties.retry_max_interval_seconds, self.properties.scan_interval * 2 ** min(failures - 1, 10))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=pause)

    async def _round(self) -> None:
        """Check the bucket, hold the lease, scan once and send what is due."""
        s3, lease = await self._client()
        await _step(f"bucket s3://{self.properties.bucket_name}", s3.head_bucket(Bucket=self.properties.bucket_name))
        if not await _step(f"lease s3://{self.properties.bucket_name}/{lease.key}", lease.refresh()):
            self._ledger_fresh = False  # another replica sends meanwhile: read the ledger again when the lease comes back
            self._waiting_since.clear()
            self.item_counts.backlog(0, None)
            self._up("standby: another replica holds the lease")
            return
        self._up("" if lease.conditional else "the store ignores conditional writes: run one replica only")
        renewing = asyncio.Event()
        renewer = asyncio.create_task(self._keep_lease(lease, renewing))
        try:
            await self._scan(s3, lease)
        finally:
            renewing.set()  # the renewer stops between writes, never in the middle of one
            with contextlib.suppress(Exception):
                await renewer

    async def _keep_lease(self, lease: Lease, done: asyncio.Event) -> None:
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout=lease.seconds / 3)
                return
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
            self._lease = Lease(connection.api, properties.bucket_name, state + "lease", properties.lease_seconds)
            ledger = Ledger(connection.api, properties.bucket_name, state + "sent/") if properties.after_send == "keep" else None
            self._delivery = Delivery(connection.api, properties, ledger, self._send, target_answers=self.target_answers, credentials_expiry=connection.credentials_expiry)
        return self._connection.api, self._lease

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
        """List page by page and send what is due as it comes, ``concurrency`` at once; then forget what is gone."""
        delivery = self._delivery
        if delivery is None:
            return
        ledger = delivery.ledger
        if ledger is not None and not self._ledger_fresh:
            await _step("ledger", ledger.load())
            self._ledger_fresh = True
        slots = asyncio.Semaphore(self.properties.concurrency)
        batch: list[asyncio.Task[None]] = []
        present: set[str] = set()
        listed_versions: set[str] = set()
        complete = True
        async for found in self._listing(s3):
            present.add(found.key)
            if ledger is not None:
                listed_versions.add(version_digest(found.key, found.etag))
                if ledger.has(found.key, found.etag):
                    continue
            if found.key not in self._waiting_since:
                self._waiting_since[found.key] = time.time()
                self.item_counts.found(1)
            if not self._due(found):
                continue
            await slots.acquire()
            if self._stopping.is_set() or not lease.held:
                slots.release()
                complete = False
                break
            task = asyncio.create_task(self._deliver(delivery, found))
            task.add_done_callback(self._deliveries.discard)
            task.add_done_callback(lambda _: slots.release())
            self._deliveries.add(task)
            batch.append(task)
        await asyncio.gather(*batch, return_exceptions=True)
        if complete:
            # What the listing no longer shows waits no more (deleted by someone else, or delivered).
            for state in (self._waiting_since, self._retry, self._sent_pending_after):
                for key in set(state) - present:
                    del state[key]
        self._report_backlog()
        if ledger is not None and complete and not self._stopping.is_set():
            await _step("ledger", ledger.prune(listed_versions))
        if complete:
            self.completed_scans += 1

    async def _listing(self, s3: Any) -> AsyncIterator[Found]:
        """Every object of the watched folders that the filters let through, every page."""
        properties = self.properties
        excluded = properties.excluded_prefixes()
        roots = [""] if properties.folders == [WHOLE_BUCKET] else properties.folders
        paginator = s3.get_paginator("list_objects_v2")
        for root in roots:
            pages = aiter(paginator.paginate(Bucket=properties.bucket_name, Prefix=root + properties.prefix))
            while True:
                page = await _step(f"listing s3://{properties.bucket_name}/{root + properties.prefix}", anext(pages, None))
                if page is None:
                    break
                for item in page.get("Contents", ()):
                    key: str = item["Key"]
                    if key.startswith(excluded) or (key.endswith("/") and item["Size"] == 0):
                        continue  # this source's own state, what it moved, folder markers
                    if properties.suffixes and not key.endswith(tuple(properties.suffixes)):
                        continue
                    if properties.modified_after is not None and item["LastModified"] <= properties.modified_after:
                        continue
                    yield Found(key, item["ETag"], item["Size"], item["LastModified"])

    def _due(self, found: Found) -> bool:
        """Whether to act on ``found`` now: not waiting out a failure of this version."""
        failed = self._retry.get(found.key)
        return failed is None or failed[0] != found.etag or failed[1] <= time.monotonic()

    def _report_backlog(self) -> None:
        self.item_counts.backlog(len(self._waiting_since), min(self._waiting_since.values(), default=None))

    # One object -----------------------------------------------------------------

    async def _deliver(self, delivery: Delivery, found: Found) -> None:
        """Send one object (or finish its after_send); every path ends in delivered, failed (tried again later) or gone."""
        sent_before = self._sent_pending_after.get(found.key) == found.etag
        step = "after_send" if sent_before else "send"
        try:
            if not sent_before:
                error = await delivery.send(found)
                if error is not None:
                    self.item_counts.failed()
                    self._failed(found, error, "object not sent; trying again later")
                    return
                self.item_counts.delivered()
                self._sent_pending_after[found.key] = found.etag
                step = "after_send"
            await delivery.after_send(found)
        except Gone:
            await self._gone(delivery, found, step)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - one object's failure must not stop the scan
            if step == "send":
                self.item_counts.failed()
                self._failed(found, _reason(exc), "object not sent; trying again later")
            else:
                self.item_counts.after_send_failed()
                self._failed(found, _reason(exc), f"object sent, but its after_send ({self.properties.after_send}) failed; trying that step again later")
            return
        self._done(found)
        log.info("object sent" if not sent_before else "after_send done", binding=self.binding, key=found.key, size=found.size, after_send=self.properties.after_send)

    async def _send(self, body: bytes, found: Found, step: str) -> Outcome:
        """One message to the binding's chain (its middleware, metrics and target)."""
        handler = self._handler
        if handler is None:
            raise RuntimeError("the aws.s3 source was not started")
        context = RequestContext(self.binding, request_id=f"{found.key}@{found.etag}{step}", source_kind=self.kind)
        return await handler(body, context)

    async def _gone(self, delivery: Delivery, found: Found, step: str) -> None:
        """The version listed is no longer there (the next scan sees the new one); unless the store says it is, which is a failure."""
        try:
            still_there = await delivery.is_still_there(found)
        except Exception as exc:  # noqa: BLE001 - cannot tell: tried again later
            self.item_counts.failed()
            self._failed(found, _reason(exc), "object could not be read; trying again later")
            return
        if still_there:
            self.item_counts.failed()
            self._failed(found, "the store refuses the version it lists (If-Match on its own ETag)", "object could not be read; trying again later")
            return
        self._done(found)
        self.item_counts.gone()
        log.info("object changed or deleted since it was listed; the next scan sees what is there", binding=self.binding, key=found.key, step=step)

    def _done(self, found: Found) -> None:
        for state in (self._retry, self._sent_pending_after, self._waiting_since):
            state.pop(found.key, None)

    def _failed(self, found: Found, error: str, event: str) -> None:
        previous = self._retry.get(found.key)
        failures = previous[2] + 1 if previous is not None and previous[0] == found.etag else 1
        wait = min(self.properties.retry_max_interval_seconds, FIRST_RETRY_SECONDS * 2 ** min(failures - 1, 20)) * random.uniform(0.8, 1.2)
        self._retry[found.key] = (found.etag, time.monotonic() + wait, failures)
        log.warning(event, binding=self.binding, key=found.key, reason=error, failures=failures, retry_in_seconds=round(wait, 1))


async def _step(what: str, awaitable: Any) -> Any:
    """Await one S3 step of a round; a failure says which step it was."""
    try:
        return await awaitable
    except RequestError:
        raise
    except Exception as exc:
        raise StepFailed(f"{what}: {_reason(exc)}") from exc


class StepFailed(Exception):
    """A round's S3 step failed; the message names the step and S3's reason."""


def _reason(exc: BaseException) -> str:
    """One line saying what failed, S3's code and status included; never a credential."""
    if isinstance(exc, StepFailed):
        return str(exc)
    error = exc if isinstance(exc, RequestError) else translate(exc) if isinstance(exc, Exception) else exc
    return " ".join(str(error).split()) or type(exc).__name__
