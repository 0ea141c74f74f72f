"""One object's way out: read it, shape its message, hand it to the binding, then delete, keep or move it.

``Delivery`` knows nothing of scans, back-off or metrics (``source.py`` keeps
those); each step says what happened: the send is confirmed (None), not
confirmed (the reason), or the object is ``Gone`` (changed or deleted since it
was listed: the next scan sees what is there now). Every S3 step that reads
or removes the object names the version listed (``If-Match``), so a newer
version written meanwhile is never sent as the old one, nor deleted unsent.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from bindings.source import Outcome
from connector.s3.connection import MIB
from connector.s3.errors import is_not_found, is_precondition_failed
from connector.s3.transfer import MAX_PARTS
from connector.s3_source.messages import Found, reference, request_metadata, targets_request
from connector.s3_source.properties import S3SourceProperties
from connector.s3_source.state import Ledger

# CopyObject's own limit; a larger object is moved with a managed (multipart) copy.
COPY_OBJECT_LIMIT = 5 * 1024 * MIB
# An abort is best effort, and must not hold up a stop: the far side drops an unfinished upload by its own rules too.
ABORT_TIMEOUT_SECONDS = 10.0

# Hands one message body to the binding; ``step`` tells the parts of one object apart in the request id.
Send = Callable[[bytes, Found, str], Awaitable[Outcome]]


class Gone(Exception):
    """The object was deleted or replaced since it was listed: nothing to send now."""


class Delivery:
    """The S3 and message steps of one object, for one binding."""

    def __init__(self, s3: Any, properties: S3SourceProperties, ledger: Ledger | None, send: Send, *, target_answers: bool, credentials_expiry: Callable[[], Awaitable[datetime | None]]) -> None:
        self.s3 = s3
        self.properties = properties
        self.ledger = ledger
        self._send = send
        self._target_answers = target_answers
        self._credentials_expiry = credentials_expiry

    async def send(self, found: Found) -> str | None:
        """Send ``found``'s message; None when the target confirmed it, else why not."""
        properties = self.properties
        if properties.payload == "reference":
            return await self._confirmed(await self._reference(found), found, "")
        if found.size > properties.max_object_size_mib * MIB:
            return await self._send_in_parts(found)
        metadata = request_metadata(str(properties.target_type), found, properties.addressed_bucket, properties.bucket_name)
        # The bytes read are dropped once encoded: only the message body stays while it is sent.
        return await self._confirmed(targets_request(metadata, await self._read(found)), found, "")

    async def after_send(self, found: Found) -> None:
        """What ``after_send`` asks for, once the message was confirmed: record, or move, then delete this version."""
        properties = self.properties
        bucket = properties.bucket_name
        if self.ledger is not None:  # keep mode
            await self.ledger.record(found.key, found.etag)
            return
        if properties.after_send == "move":
            source = {"Bucket": bucket, "Key": found.key}
            destination = properties.move_prefix + found.key
            if found.size <= COPY_OBJECT_LIMIT:
                await self._if_unchanged(self.s3.copy_object(Bucket=bucket, Key=destination, CopySource=source, CopySourceIfMatch=found.etag))
            else:
                await self._if_unchanged(self.s3.copy(source, bucket, destination, ExtraArgs={"CopySourceIfMatch": found.etag}))
        await self._delete(found)

    async def is_still_there(self, found: Found) -> bool:
        """Whether the version listed still exists (a store whose reads refuse it would otherwise make it pending forever)."""
        try:
            head = await self.s3.head_object(Bucket=self.properties.bucket_name, Key=found.key)
        except ClientError as exc:
            if is_not_found(exc):
                return False
            raise
        return bool(head.get("ETag") == found.etag)

    # Steps ----------------------------------------------------------------------

    async def _confirmed(self, body: bytes, found: Found, step: str) -> str | None:
        outcome = await self._send(body, found, step)
        return outcome.response.last_error or "not delivered" if outcome.failed else None

    async def _reference(self, found: Found) -> bytes:
        """The reference document; its URL valid as asked, but never past the credentials that sign it."""
        properties = self.properties
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=properties.reference_url_seconds)
        credentials_end = await self._credentials_expiry()
        if credentials_end is not None and credentials_end < expires:
            expires = credentials_end
        seconds = max(1, int((expires - now).total_seconds()))
        url = await self.s3.generate_presigned_url("get_object", Params={"Bucket": properties.bucket_name, "Key": found.key}, ExpiresIn=seconds)
        return reference(found, properties.bucket_name, url, expires)

    async def _read(self, found: Found, byte_range: str | None = None) -> bytes:
        """The object's bytes (or a range of them), as long as it is still the version listed."""
        params: dict[str, Any] = {"Bucket": self.properties.bucket_name, "Key": found.key, "IfMatch": found.etag}
        if byte_range is not None:
            params["Range"] = byte_range
        try:
            answer = await self.s3.get_object(**params)
            async with answer["Body"] as stream:
                return bytes(await stream.read())
        except ClientError as exc:
            if is_not_found(exc) or is_precondition_failed(exc):
                raise Gone from exc
            raise

    async def _delete(self, found: Found) -> None:
        """Delete the version sent, not a newer one written meanwhile (that one is sent by the next scan)."""
        bucket = self.properties.bucket_name
        try:
            await self.s3.delete_object(Bucket=bucket, Key=found.key, IfMatch=found.etag)
        except ClientError as exc:
            if is_not_found(exc):
                return  # deleted by someone else: what we wanted
            if is_precondition_failed(exc):
                raise Gone from exc
            if exc.response.get("Error", {}).get("Code") != "NotImplemented":
                raise
            # A store without conditional deletes: the key goes, as kubemq-sources deletes it.
            await self.s3.delete_object(Bucket=bucket, Key=found.key)

    async def _if_unchanged(self, step: Awaitable[Any]) -> None:
        try:
            await step
        except ClientError as exc:
            if is_not_found(exc) or is_precondition_failed(exc):
                raise Gone from exc
            raise

    async def _send_in_parts(self, found: Found) -> str | None:
        """A multipart upload over the bus: the object a part at a time, never whole in memory; aborted on any failure."""
        properties = self.properties
        limit = f"the object ({found.size} bytes) is larger than max_object_size_mib ({properties.max_object_size_mib} MiB)"
        if properties.target_type != "aws":
            return f"{limit}; only target_type 'aws' can send it in parts (or use payload 'reference')"
        if not self._target_answers:
            return f"{limit}; sending it in parts needs the far side's replies (a kubemq.query target to a kubemq-s3 aws.s3 binding), or use payload 'reference'"
        part_size = max(properties.part_size_mib * MIB, math.ceil(found.size / MAX_PARTS))
        if part_size > properties.max_object_size_mib * MIB:
            return f"{limit}; in {MAX_PARTS} parts of at most max_object_size_mib it is still too large: raise max_object_size_mib, or use payload 'reference'"
        where = {"bucket_name": properties.addressed_bucket, "item_name": found.key}
        created = await self._send(targets_request({"method": "create_multipart_upload", **where}, b""), found, "#create")
        if created.failed:
            return f"create_multipart_upload: {created.response.last_error}"
        upload_id = created.response.metadata.get("upload_id")
        if not upload_id:
            return "create_multipart_upload: the reply names no upload_id (is the far side a kubemq-s3 aws.s3 binding?)"
        upload = {**where, "upload_id": upload_id}
        completed = False
        try:
            for number, start in enumerate(range(0, found.size, part_size), start=1):
                data = await self._read(found, f"bytes={start}-{min(start + part_size, found.size) - 1}")
                error = await self._confirmed(targets_request({"method": "upload_part", **upload, "part_number": str(number)}, data), found, f"#part{number}")
                if error is not None:
                    return f"upload_part {number}: {error}"
            error = await self._confirmed(targets_request({"method": "complete_multipart_upload", **upload}, b""), found, "#complete")
            if error is not None:
                return f"complete_multipart_upload: {error}"
            completed = True
            return None
        finally:
            if not completed:
                await self._abort(upload, found)

    async def _abort(self, upload: dict[str, str], found: Found) -> None:
        """Drop the unfinished upload at the far side: shielded from a cancel, bounded in time, best effort."""
        abort = asyncio.ensure_future(self._send(targets_request({"method": "abort_multipart_upload", **upload}, b""), found, "#abort"))
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(abort), ABORT_TIMEOUT_SECONDS)
