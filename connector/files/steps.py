"""One step of a transfer: a request to the ``aws.s3`` target, tried again with back-off when that can help.

A step failed when nothing came back (the broker, the network, a timeout)
or when the reply is an error. Error replies keep aws-sdk-go's layout,
``Code: message\\n\\tstatus code: N, ...``, so the code and status tell
what trying again can fix: throttling, 5xx answers, timeouts, lost
connections, a part damaged on the way (``BadDigest``). A refusal (access,
a missing bucket or upload, a wrong request) is ``permanent``.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from bindings.kubemq.client import FAILURES, Session, explain_failure
from bindings.wire import Request, Response
from connector.s3.errors import CONNECTION_ERRORS, THROTTLING_CODES, TRANSIENT_CODES

ATTEMPTS = 4
FIRST_DELAY_SECONDS = 0.5  # doubled after each failed attempt
CODE = re.compile(r"^([A-Za-z][A-Za-z0-9.]*): ")
STATUS = re.compile(r"\n\tstatus code: (\d+)")
# Besides the S3 codes worth another try: the part arrived damaged, or the S3 call timed out inside the connector.
AGAIN_CODES = THROTTLING_CODES | TRANSIENT_CODES | {error.__name__ for error in CONNECTION_ERRORS} | {"BadDigest", "RequestTimeTooSkewed"}
AGAIN_TEXTS = ("the S3 operation timed out", "connection to the S3 endpoint failed", "the reply could not be sent", "request timed out")


class TransferError(Exception):
    """A transfer that stopped: the reason (and hint lines), the exit code, whether trying again later cannot help, the error reply's code."""

    def __init__(self, message: str, *, exit_code: int = 1, permanent: bool = True, code: str = "", hints: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.exit_code, self.permanent, self.code, self.hints = exit_code, permanent, code, hints

    def with_hints(self, *hints: str) -> TransferError:
        return TransferError(self.args[0], exit_code=self.exit_code, permanent=self.permanent, code=self.code, hints=(*self.hints, *hints))

    def __str__(self) -> str:
        return "\n".join((super().__str__(), *(f"hint: {hint}" for hint in self.hints)))


def error_code(error: str) -> str:
    """``NoSuchUpload`` from ``NoSuchUpload: The specified upload does not exist...``; empty when the text names none."""
    match = CODE.match(error)
    return match.group(1) if match else ""


def worth_retrying(error: str) -> bool:
    """Can the same request succeed later? Only for failures that pass (see the module's doc)."""
    status = STATUS.search(error)
    if status is not None and (int(status.group(1)) >= 500 or int(status.group(1)) in (408, 429)):
        return True
    return error_code(error) in AGAIN_CODES or any(text in error for text in AGAIN_TEXTS)


@dataclass
class Steps:
    """Sends a transfer's requests over one session; ``address`` and ``channel`` name where, in failures."""

    session: Session
    address: str
    channel: str
    attempts: int = ATTEMPTS

    async def ask(self, metadata: dict[str, str], data: bytes = b"", *, what: str, again: bool = True) -> Response:
        """The successful reply to one request; ``again``: retried up to ``attempts`` times when that can help."""
        attempts, attempt = (self.attempts if again else 1), 1
        while True:
            try:
                response = await self.session.request(Request(metadata=metadata, data=data))
            except FAILURES as exc:
                explained = explain_failure(exc, self.address, self.channel, timeout=self.session.timeout, response_channel=self.session.response_channel)
                reason, exit_code, permanent, code = explained.removeprefix("error: "), 2, False, ""
            else:
                if not response.is_error:
                    return response
                last = response.last_error  # a connector in kubemq-targets' reply style lists every attempt
                reason, exit_code, permanent, code = last, 1, not worth_retrying(last), error_code(last)
            if permanent or attempt == attempts:
                tries = f" (tried {attempt} times)" if attempt > 1 else ""
                raise TransferError(f"{what}{tries}: {reason}", exit_code=exit_code, permanent=permanent, code=code)
            await asyncio.sleep(FIRST_DELAY_SECONDS * 2 ** (attempt - 1))
            attempt += 1
