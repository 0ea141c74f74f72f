"""``send -m method=upload_item --data-file`` and ``send -m method=get_item --output``, for files of any size.

What fits in one message goes exactly as before: one ``upload_item`` with the
file's bytes, one ``get_item`` whose data is written to ``--output``. The
rest switches on its own:

* a file larger than one message of ``--max-message-size`` goes up in parts;
  so does one the binding refuses as larger than its own ``max_message_size``
  (the refusal names that size, so the parts are cut to fit it);
* an object the connector refuses as ``ReplyTooLarge`` (checked before any
  byte is read) comes down in ranges of at most what it says a reply carries.

The result of a transfer in parts is one JSON document on stdout.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bindings.kubemq.client import FAILURES, Connection, Pattern, Session, exchange, explain_failure, report
from bindings.wire import Request
from connector.files.download import Download
from connector.files.plan import Options, request_size
from connector.files.sizes import shown
from connector.files.steps import Steps, TransferError
from connector.files.upload import Upload

# The source's refusal of a request over its max_message_size (bindings/kubemq/subscription.py).
REFUSED_AS_TOO_LARGE = re.compile(r"more than max_message_size \((\d+)\); not run")
# The aws.s3 target's refusal of an object its reply cannot carry (connector/s3/errors.py).
REPLY_TOO_LARGE = re.compile(r"^ReplyTooLarge: .*\(at most (\d+) bytes each")
USAGE = 2


@dataclass(frozen=True)
class Destination:
    """Where the command's requests go, and how their responses come back."""

    connection: Connection
    pattern: Pattern
    channel: str
    timeout: int
    response_channel: str | None = None

    async def single(self, request: Request, switch: re.Pattern[str], output: Path | None) -> int | re.Match[str]:
        """Send ``request`` as ``send`` sends any and print the outcome (the exit code), unless the reply is an error ``switch`` finds: that match."""
        try:
            sent, response = await exchange(self.connection, self.pattern, self.channel, request, timeout=self.timeout, response_channel=self.response_channel)
        except FAILURES as exc:
            print(explain_failure(exc, self.connection.address, self.channel, timeout=self.timeout, response_channel=self.response_channel), file=sys.stderr)
            return 2
        found = switch.search(response.last_error) if response is not None and response.is_error else None
        return report(sent, response, output) if found is None else found

    async def in_parts(self, why: str, transfer: Callable[[Steps], Awaitable[dict[str, Any]]]) -> int:
        """Run ``transfer`` over one session and print its result; refused for a pattern that brings no replies back, saying ``why`` parts were needed."""
        try:
            session = Session(self.connection, self.pattern, self.channel, timeout=self.timeout, response_channel=self.response_channel)
        except ValueError as exc:
            raise TransferError(f"{why}, and parts need replies, but {exc}: use --pattern query, or --response-channel with queue, events or events-store", exit_code=USAGE) from None
        async with session:
            result = await transfer(Steps(session, self.connection.address, self.channel))
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0


async def upload_file(destination: Destination, metadata: dict[str, str], file: Path, options: Options) -> int:
    """``upload_item`` of ``file``: in one message when it fits, else in parts. The exit code."""
    size = file.stat().st_size
    limit = options.max_message_size
    if options.upload_id is None and request_size(metadata, size) <= limit:
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise TransferError(f"cannot read --data-file {file}: {exc.strerror or exc}") from None
        outcome = await destination.single(Request(metadata=metadata, data=data), REFUSED_AS_TOO_LARGE, None)
        if isinstance(outcome, int):
            return outcome
        limit = int(outcome.group(1))
    why = f"{file} is {size} bytes, more than one message of {shown(limit)} carries" if options.upload_id is None else "--upload-id continues an upload in parts"
    return await destination.in_parts(why, lambda steps: Upload(steps, file, metadata, options, limit).run())


async def download_file(destination: Destination, metadata: dict[str, str], output: Path, options: Options) -> int:
    """``get_item`` into ``output``: in one reply when it fits, else in ranges. The exit code."""
    outcome = await destination.single(Request(metadata=metadata), REPLY_TOO_LARGE, output)
    if isinstance(outcome, int):
        return outcome
    reply_limit = int(outcome.group(1))
    return await destination.in_parts("the object is larger than one reply", lambda steps: Download(steps, metadata, output, options, reply_limit).run())
