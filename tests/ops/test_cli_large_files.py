"""``kubemq-s3 send`` moving files larger than one message, through the embedded broker, a connector and SeaweedFS.

The connector's binding takes messages of at most 8 MiB, so a 12 MiB file
cannot go in one message while 5 MiB parts (S3's smallest) can: the command
switches to the multipart methods on its own, and back to ranges for the
download. Every run is the real command line in a child process.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import hashlib
import json
import os
import re
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bindings.context import RequestContext
from bindings.errors import TargetError
from bindings.kubemq import SOURCES
from bindings.registry import Registry
from bindings.target import Call
from bindings.wire import Request, Response
from connector.s3 import S3Target
from devbroker import EmbeddedBroker
from tests.e2e.support import newcomer_connector, stop_with_sigterm
from tests.fixtures import configs
from tests.fixtures.configs import config, target
from tests.fixtures.kubemq import StartConnector, free_port, s3_binding_yaml
from tests.ops.support import REPO, PeakGrowth, connector_process, status_field, write_config

MIB = 1024 * 1024
CHANNEL = "query.aws.s3.files"
SMALL_MESSAGES = 8 * MIB
LARGE = 12 * MIB + 12345  # three parts of 5 MiB: 5, 5, and the rest
KEY = "videos/large file.bin"


def binding(seaweed: Any, channel: str = CHANNEL, kind: str = "aws.s3") -> str:
    """A query binding whose messages (requests and replies) are at most 8 MiB."""
    return s3_binding_yaml(seaweed, channel, extra_source=f'\n            max_message_size: "{SMALL_MESSAGES}"').replace("kind: aws.s3", f"kind: {kind}")


async def kubemq_s3(*args: str, terminal: bool = False) -> tuple[int, str, str]:
    """The command line in a child process (this test's event loop keeps serving the broker); ``terminal``: stderr is a pseudo-terminal."""
    if not terminal:
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "connector", *args, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode is not None
        return process.returncode, stdout.decode(), stderr.decode()
    with _terminal() as (slave, screen):
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "connector", *args, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=slave)
        os.close(slave)
        stdout, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), b"".join(screen).decode(errors="replace")


@contextlib.contextmanager
def _terminal() -> Iterator[tuple[int, list[bytes]]]:
    """A pseudo-terminal: its slave end for the child's stderr, and what the child wrote there (read while it runs, so it never blocks)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # rows, columns: a terminal window
    screen: list[bytes] = []

    def read() -> None:
        with contextlib.suppress(OSError):  # EIO once the child and the slave end are gone
            while chunk := os.read(master, 65536):
                screen.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield slave, screen
    finally:
        reader.join(timeout=10)
        os.close(master)


def send(broker: EmbeddedBroker, *args: str, channel: str = CHANNEL) -> list[str]:
    return ["send", "--address", broker.address, "--channel", channel, *args]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder of the test's files only (the connector's config is written beside it)."""
    path = tmp_path / "files"
    path.mkdir()
    return path


@pytest.fixture
def large_file(folder: Path) -> Path:
    path = folder / "large.bin"
    path.write_bytes(os.urandom(LARGE))
    return path


@pytest_asyncio.fixture
async def connector(start_connector: StartConnector, seaweed: Any) -> AsyncIterator[None]:
    await start_connector(binding(seaweed))
    yield


async def stored(s3_client: Any, bucket: str, key: str = KEY) -> bytes:
    return await (await s3_client.get_object(Bucket=bucket, Key=key))["Body"].read()  # type: ignore[no-any-return]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_a_file_larger_than_one_message_goes_up_in_parts_and_comes_back_in_ranges(connector: None, broker: EmbeddedBroker, s3_client: Any, bucket: str, large_file: Path, folder: Path) -> None:
    """No --max-message-size: the binding's refusal of the whole file names its limit, and the parts are cut to fit it. stderr is a pipe: nothing on it."""
    content = large_file.read_bytes()
    where = ("-m", f"bucket_name={bucket}", "-m", f"item_name={KEY}")
    code, stdout, stderr = await kubemq_s3(*send(broker, "-m", "method=upload_item", *where, "-m", "content_type=video/mp4", "--data-file", str(large_file)))
    assert (code, stderr) == (0, ""), stderr
    uploaded = json.loads(stdout)
    assert {name: uploaded[name] for name in ("bucket", "key", "size", "parts", "part_size", "uploaded_parts", "sha256")} == {
        "bucket": bucket,
        "key": KEY,
        "size": LARGE,
        "parts": 3,
        "part_size": 5 * MIB,
        "uploaded_parts": 3,
        "sha256": sha256(content),
    }
    head = await s3_client.head_object(Bucket=bucket, Key=KEY, ChecksumMode="ENABLED")
    assert (uploaded["etag"], head["ContentType"]) == (head["ETag"], "video/mp4")
    parts = [content[offset : offset + 5 * MIB] for offset in range(0, LARGE, 5 * MIB)]
    composite = base64.b64encode(hashlib.sha256(b"".join(hashlib.sha256(part).digest() for part in parts)).digest()).decode()
    assert (uploaded["checksum_sha256"], uploaded["verified"]) == (f"{composite}-3", "ChecksumSHA256")
    assert await stored(s3_client, bucket) == content
    assert (await s3_client.list_multipart_uploads(Bucket=bucket)).get("Uploads", []) == []

    output = folder / "downloaded.bin"
    code, stdout, stderr = await kubemq_s3(*send(broker, "-m", "method=get_item", *where, "--output", str(output)))
    assert (code, stderr) == (0, ""), stderr
    downloaded = json.loads(stdout)
    assert output.read_bytes() == content
    assert {name: downloaded[name] for name in ("bucket", "key", "size", "parts", "etag", "file", "sha256", "verified")} == {
        "bucket": bucket,
        "key": KEY,
        "size": LARGE,
        "parts": 3,
        "etag": head["ETag"],
        "file": str(output),
        "sha256": sha256(content),
        "verified": "ChecksumSHA256",
    }
    assert sorted(path.name for path in folder.iterdir()) == ["downloaded.bin", "large.bin"]  # no temporary file left


async def test_small_files_keep_the_single_request(connector: None, broker: EmbeddedBroker, s3_client: Any, bucket: str, tmp_path: Path) -> None:
    """One upload_item and one get_item, printed as before: the reply JSON, and 'data written to' on stderr."""
    small = tmp_path / "small.txt"
    small.write_bytes(b"hello, small world")
    where = ("-m", f"bucket_name={bucket}", "-m", "item_name=small.txt")
    code, stdout, stderr = await kubemq_s3(*send(broker, "-m", "method=upload_item", *where, "--data-file", str(small)))
    reply = json.loads(stdout)
    assert (code, stderr, reply["is_error"], reply["data"]["UploadID"]) == (0, "", False, "")
    output = tmp_path / "back.txt"
    code, stdout, stderr = await kubemq_s3(*send(broker, "-m", "method=get_item", *where, "--output", str(output)))
    assert (code, stderr, output.read_bytes()) == (0, f"data written to {output}\n", b"hello, small world")
    assert json.loads(stdout)["metadata"]["content_length"] == str(len(b"hello, small world"))


async def test_upload_id_sends_only_the_parts_the_upload_lacks(connector: None, broker: EmbeddedBroker, s3_client: Any, bucket: str, large_file: Path) -> None:
    """An upload interrupted after part 1: --upload-id sends parts 2 and 3, keeps 1. On a terminal, stderr shows the progress bar."""
    content = large_file.read_bytes()
    created = await s3_client.create_multipart_upload(Bucket=bucket, Key=KEY, ChecksumAlgorithm="SHA256")
    upload_id = created["UploadId"]
    first = content[: 5 * MIB]
    await s3_client.upload_part(Bucket=bucket, Key=KEY, UploadId=upload_id, PartNumber=1, Body=first, ChecksumSHA256=base64.b64encode(hashlib.sha256(first).digest()).decode())
    where = ("-m", f"bucket_name={bucket}", "-m", f"item_name={KEY}")
    args = send(broker, "-m", "method=upload_item", *where, "--data-file", str(large_file), "--max-message-size", "8MiB", "--part-size", "5MiB", "--upload-id", upload_id)
    code, stdout, screen = await kubemq_s3(*args, terminal=True)
    assert code == 0, screen
    result = json.loads(stdout)
    assert (result["upload_id"], result["parts"], result["uploaded_parts"], result["sha256"], result["verified"]) == (upload_id, 3, 2, sha256(content), "ChecksumSHA256")
    assert await stored(s3_client, bucket) == content
    assert "up videos/large file.bin" in screen and "100%" in screen and "B/s" in screen, screen


async def test_a_queue_with_a_response_channel_moves_a_large_file_too(
    start_connector: StartConnector, seaweed: Any, broker: EmbeddedBroker, s3_client: Any, bucket: str, large_file: Path, folder: Path
) -> None:
    """Each part is its own queue message, its response taken from the response queue, one part at a time."""
    responses = "queue.aws.s3.files.responses"
    source = {"response_channel": responses, "max_message_size": SMALL_MESSAGES, "wait_timeout": "1"}
    s3 = {"aws_key": seaweed.access_key, "aws_secret_key": seaweed.secret_key, "region": "us-east-1", "endpoint": seaweed.endpoint}
    await start_connector(config(configs.binding("s3", "kubemq.queue", "queue.aws.s3.files", source, None, target("aws.s3", s3))))
    where = ("-m", f"bucket_name={bucket}", "-m", f"item_name={KEY}", "--pattern", "queue", "--response-channel", responses)
    code, stdout, stderr = await kubemq_s3(*send(broker, "-m", "method=upload_item", *where, "--data-file", str(large_file), channel="queue.aws.s3.files"))
    assert (code, stderr) == (0, ""), stdout + stderr
    assert (json.loads(stdout)["parts"], json.loads(stdout)["verified"]) == (3, "ChecksumSHA256")
    output = folder / "queued.bin"
    code, stdout, stderr = await kubemq_s3(*send(broker, "-m", "method=get_item", *where, "--output", str(output), channel="queue.aws.s3.files"))
    assert (code, stderr) == (0, ""), stdout + stderr
    assert (json.loads(stdout)["parts"], json.loads(stdout)["verified"], output.read_bytes()) == (3, "ChecksumSHA256", large_file.read_bytes())


async def test_a_file_too_large_for_one_message_needs_a_pattern_with_replies(tmp_path: Path) -> None:
    """Refused before anything is sent (nothing listens at the address): a command brings no upload id back."""
    path = tmp_path / "two.bin"
    path.write_bytes(bytes(2 * MIB))
    args = ("send", "--address", "127.0.0.1:1", "--pattern", "command", "-m", "method=upload_item", "-m", "item_name=k", "--data-file", str(path), "--max-message-size", "1MiB")
    code, stdout, stderr = await kubemq_s3(*args)
    assert (code, stdout) == (2, "")
    assert stderr == (
        f"error: {path} is {2 * MIB} bytes, more than one message of 1MiB carries, and parts need replies, but a command brings no response back: "
        "use --pattern query, or --response-channel with queue, events or events-store\n"
    )


async def test_options_of_an_upload_need_an_upload(tmp_path: Path) -> None:
    code, _, stderr = await kubemq_s3("send", "-m", "method=get_item", "--upload-id", "abc", "--output", str(tmp_path / "x"))
    assert (code, stderr) == (2, "error: --upload-id and --keep-upload continue or keep an upload: they need -m method=upload_item and a --data-file\n")
    code, _, stderr = await kubemq_s3("send", "-m", "method=upload_item", "--data-file", str(tmp_path), "--part-size", "4MiB")
    assert code == 2 and stderr.endswith("error: argument --part-size: '4MiB' is less than 5MiB, S3's smallest part\n")


# Failures ---------------------------------------------------------------------------------------------------------


class Tampering(S3Target):
    """The real aws.s3 target, with a fault of the world around it: see the subclasses."""

    async def handle(self, call: Call, context: RequestContext) -> Response:
        response = await super().handle(call, context)
        return await self.tamper(call, response, context)

    async def tamper(self, call: Call, response: Response, context: RequestContext) -> Response:
        return response


class ReplacedAfterHead(Tampering):
    """Another writer replaces the object (same size, other bytes) right after the command's head_item."""

    kind = "test.replaced-after-head"

    async def tamper(self, call: Call, response: Response, context: RequestContext) -> Response:
        if call.name == "head_item":
            size = int(response.metadata["content_length"])
            replacement = Request(metadata={"method": "upload_item", "bucket_name": call.metadata.bucket_name, "item_name": call.metadata.item_name}, data=os.urandom(size))
            await S3Target.handle(self, self.resolve(replacement), context)
        return response


class DamagedOnTheWay(Tampering):
    """One bit of every ranged reply flipped, as a faulty hop would."""

    kind = "test.damaged-on-the-way"

    async def tamper(self, call: Call, response: Response, context: RequestContext) -> Response:
        if call.name == "get_item" and call.metadata.range and response.data:
            data = bytearray(response.data)
            data[len(data) // 2] ^= 0x01
            return Response(response.metadata, bytes(data), response.is_error, response.error)
        return response


class SlowDownOnPartTwo(Tampering):
    """Throttles part 2 every time (a retryable 503), as a store under load would for longer than the command waits."""

    kind = "test.slow-down-on-part-two"

    async def handle(self, call: Call, context: RequestContext) -> Response:
        if call.name == "upload_part" and call.metadata.part_number == 2:
            raise TargetError("SlowDown: Please reduce your request rate.\n\tstatus code: 503, request id: test", code="SlowDown", status=503, retryable=True)
        return await super().handle(call, context)


async def test_an_interrupted_upload_is_kept_and_continued_with_its_upload_id(
    connector: None, start_connector: StartConnector, seaweed: Any, broker: EmbeddedBroker, s3_client: Any, bucket: str, large_file: Path
) -> None:
    """Part 2 keeps failing for a reason that can pass: tried 4 times, then the upload is kept; --upload-id sends only part 2."""
    throttled = f"{CHANNEL}.{SlowDownOnPartTwo.kind}"
    await start_connector(binding(seaweed, throttled, SlowDownOnPartTwo.kind), Registry.of(SOURCES, [SlowDownOnPartTwo]))
    command = ["-m", "method=upload_item", "-m", f"bucket_name={bucket}", "-m", f"item_name={KEY}", "--data-file", str(large_file), "--part-size", "5MiB"]
    code, stdout, stderr = await kubemq_s3(*send(broker, *command, channel=throttled))
    assert (code, stdout) == (1, ""), stderr
    [upload] = [upload["UploadId"] for upload in (await s3_client.list_multipart_uploads(Bucket=bucket))["Uploads"]]
    assert stderr.splitlines() == [
        "error: part 2 of 3 (tried 4 times): SlowDown: Please reduce your request rate.",
        "\tstatus code: 503, request id: test",
        f"hint: upload {upload} is kept: run the same command with --upload-id {upload} to send only the parts it lacks",
        f"hint: or drop it: kubemq-s3 send -m method=abort_multipart_upload -m bucket_name={bucket} -m item_name={KEY} -m upload_id={upload}",
    ]
    code, stdout, stderr = await kubemq_s3(*send(broker, *command, "--upload-id", upload))
    assert (code, stderr) == (0, ""), stderr
    assert (json.loads(stdout)["uploaded_parts"], json.loads(stdout)["verified"]) == (1, "ChecksumSHA256")
    assert await stored(s3_client, bucket) == large_file.read_bytes()


async def test_a_refused_upload_is_aborted_unless_kept(start_connector: StartConnector, seaweed: Any, broker: EmbeddedBroker, s3_client: Any, bucket: str, large_file: Path) -> None:
    """The binding's policy refuses upload_part: trying again cannot help, so the upload is aborted (--keep-upload keeps it)."""
    policy = '\n            allowed_methods: "create_multipart_upload, abort_multipart_upload, list_parts"'
    await start_connector(s3_binding_yaml(seaweed, f"{CHANNEL}.no-parts", extra_target=policy, extra_source=f'\n            max_message_size: "{SMALL_MESSAGES}"'))
    command = send(broker, "-m", "method=upload_item", "-m", f"bucket_name={bucket}", "-m", f"item_name={KEY}", "--data-file", str(large_file), channel=f"{CHANNEL}.no-parts")
    refused = "AccessDenied: method upload_part is not allowed on binding 's3' (allowed_methods)"
    code, stdout, stderr = await kubemq_s3(*command, "--max-message-size", "8MiB")
    assert (code, stdout) == (1, "") and (await s3_client.list_multipart_uploads(Bucket=bucket)).get("Uploads", []) == []
    [error, aborted] = stderr.splitlines()
    assert error.startswith("error: part ") and error.endswith(f" of 3: {refused}")
    assert aborted.startswith("hint: upload ") and aborted.endswith(" was aborted, its parts deleted (--keep-upload keeps an upload that fails)")
    code, stdout, stderr = await kubemq_s3(*command, "--max-message-size", "8MiB", "--keep-upload")
    [upload] = [upload["UploadId"] for upload in (await s3_client.list_multipart_uploads(Bucket=bucket))["Uploads"]]
    assert (code, stdout) == (1, "") and f"hint: upload {upload} is kept: run the same command with --upload-id {upload}" in stderr


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        (ReplacedAfterHead, "changed while it was being downloaded"),
        (DamagedOnTheWay, "the ChecksumSHA256 of the bytes received, as 3 parts of 5242880, 6291456, 4198419 bytes, is not the store's"),
    ],
)
async def test_a_download_that_does_not_match_the_object_is_refused_and_not_kept(
    target: type[Tampering], problem: str, start_connector: StartConnector, seaweed: Any, broker: EmbeddedBroker, s3_client: Any, bucket: str, folder: Path
) -> None:
    channel = f"{CHANNEL}.{target.kind}"
    await start_connector(binding(seaweed, channel, target.kind), Registry.of(SOURCES, [target]))
    original = os.urandom(LARGE)
    await upload_in_parts(s3_client, bucket, original)
    output = folder / "object.bin"
    code, stdout, stderr = await kubemq_s3(*send(broker, "-m", "method=get_item", "-m", f"bucket_name={bucket}", "-m", f"item_name={KEY}", "--output", str(output), channel=channel))
    assert (code, stdout) == (1, ""), stderr
    [line] = stderr.splitlines()
    assert line.startswith(f"error: object {bucket}/{KEY}") and problem in line and line.endswith(f"{output} was not written" + ("" if target is DamagedOnTheWay else ": run the command again")), line
    assert list(folder.iterdir()) == []


async def upload_in_parts(s3_client: Any, bucket: str, content: bytes) -> None:
    """``content`` as a multipart object of 5 MiB parts with SHA-256 checksums, straight to the store."""
    upload_id = (await s3_client.create_multipart_upload(Bucket=bucket, Key=KEY, ChecksumAlgorithm="SHA256"))["UploadId"]
    parts = []
    for number, offset in enumerate(range(0, len(content), 5 * MIB), start=1):
        part = content[offset : offset + 5 * MIB]
        checksum = base64.b64encode(hashlib.sha256(part).digest()).decode()
        uploaded = await s3_client.upload_part(Bucket=bucket, Key=KEY, UploadId=upload_id, PartNumber=number, Body=part, ChecksumSHA256=checksum)
        parts.append({"PartNumber": number, "ETag": uploaded["ETag"], "ChecksumSHA256": checksum})
    await s3_client.complete_multipart_upload(Bucket=bucket, Key=KEY, UploadId=upload_id, MultipartUpload={"Parts": parts})


# The end to end: 300 MiB up and back through the bus, the connector's memory bounded by its parts -----------

PART = 16 * MIB  # the command's default part size
# Two in flight: on the 2-core machine the command, the broker, the connector and the store share the CPUs.
IN_FLIGHT = 2
# A part in flight is held a few times over in the connector: the message as gRPC received it, its protobuf and SDK
# copies, the decoded data, the S3 request (2 to 5.5 times the part on the development machine, up and down).
HELD_PER_PART = 8
COMMAND_HOLDS_PER_PART = 11


@pytest.mark.slow
async def test_300_mib_go_up_in_parts_and_come_back_in_ranges_within_a_small_multiple_of_the_part_size(seaweed: Any, broker: EmbeddedBroker, bucket: str, folder: Path, tmp_path: Path) -> None:
    """The connector in its own process, so its peak RSS (VmHWM, reset before each transfer) is the transfer's alone.

    A first 40 MiB round trip warms the connector up (code paths, connection
    pools, the allocator's arenas): what is measured is the steady cost of a
    transfer, which must not grow with the object.
    """
    huge, huge_sha256 = random_file(folder / "huge.bin", 300 * MIB)
    warm_up, _ = random_file(folder / "warm-up.bin", 40 * MIB)
    config, api_port = tmp_path / "config.yaml", free_port()
    # Messages of 24 MiB: a 16 MiB part (21.4 MiB as base64) fits, and a reply carries a 16 MiB range.
    write_config(config, s3_binding_yaml(seaweed, "query.aws.s3.huge", extra_source='\n            max_message_size: "25165824"'), broker, api_port)
    async with connector_process(config) as connector:
        await connector.wait_ready(f"http://127.0.0.1:{api_port}")
        await broker.wait_for_subscribers("query.aws.s3.huge", 1, kind="queries")
        assert connector.process is not None
        growth = PeakGrowth(connector.process.pid)

        async def round_trip(file: Path, key: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, int]]:
            """Up and back; the results, and the peak RSS growth of the connector and the peak RSS of the command, each way."""
            where = ("-m", f"bucket_name={bucket}", "-m", f"item_name={key}", "--parallel", str(IN_FLIGHT))
            growth.reset()
            up = await measured(*send(broker, "-m", "method=upload_item", *where, "--data-file", str(file), channel="query.aws.s3.huge"), report=tmp_path / "up")
            peaks = {"connector up": growth.since_reset()}
            growth.reset()
            copy = file.with_suffix(".copy")
            down = await measured(*send(broker, "-m", "method=get_item", *where, "--output", str(copy), channel="query.aws.s3.huge"), report=tmp_path / "down")
            peaks |= {"connector down": growth.since_reset(), "command up": up[3], "command down": down[3]}
            for code, _, stderr, _ in (up, down):
                assert (code, stderr) == (0, ""), stderr
            print(f"{file.name}: " + ", ".join(f"{name} {peak / MIB:.0f} MiB" for name, peak in peaks.items()))
            return json.loads(up[1]), json.loads(down[1]), peaks

        await round_trip(warm_up, "warm-up.bin")
        uploaded, downloaded, peaks = await round_trip(huge, "huge.bin")
    for result in (uploaded, downloaded):
        assert (result["size"], result["parts"], result["part_size"], result["sha256"], result["verified"]) == (300 * MIB, 19, PART, huge_sha256, "ChecksumSHA256")
    assert file_sha256(huge.with_suffix(".copy")) == huge_sha256
    # Well below the object's 300 MiB: a connector holding the object, or every part it saw, fails here.
    assert max(peaks["connector up"], peaks["connector down"]) < IN_FLIGHT * HELD_PER_PART * PART, peaks
    # The command: what it needs to send anything, then the parts in flight, each held several times over (the bytes, its base64,
    # the JSON body as text and as bytes, the protobuf message and gRPC's copy), about 9 times the part on the development machine.
    _, _, _, itself = await measured("send", "--address", f"127.0.0.1:{free_port()}", "-m", "method=list_buckets", report=tmp_path / "itself")
    assert max(peaks["command up"], peaks["command down"]) < itself + IN_FLIGHT * COMMAND_HOLDS_PER_PART * PART, (itself, peaks)


# The command line, then its own peak RSS written where PEAK_RSS_FILE says (the kernel's per-child figure
# would count the pages of the forked test process too).
REPORTS_PEAK = """
import os, sys
from connector.cli import main
code = main(sys.argv[1:])
with open("/proc/self/status") as status, open(os.environ["PEAK_RSS_FILE"], "w") as report:
    report.write(status.read())
sys.exit(code)
"""


async def measured(*args: str, report: Path) -> tuple[int, str, str, int]:
    """The command line in a child process: exit code, stdout, stderr, and its peak RSS (VmHWM)."""
    env = {**os.environ, "PEAK_RSS_FILE": str(report)}
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", REPORTS_PEAK, *args, cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    peak = status_field(report.read_text(), "VmHWM") if report.exists() else -1  # -1: it stopped before main returned (see stderr)
    return process.returncode, stdout.decode(), stderr.decode(), peak


def random_file(path: Path, size: int) -> tuple[Path, str]:
    """``size`` random bytes written to ``path`` a chunk at a time; the path and its SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as file:
        for offset in range(0, size, PART):
            chunk = os.urandom(min(PART, size - offset))
            digest.update(chunk)
            file.write(chunk)
    return path, digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.mark.slow
async def test_the_readme_large_files_example_works_when_pasted(tmp_path: Path) -> None:
    """The README's block, run by bash as pasted, against a connector on the repository's config.yaml (as `make run` starts it)."""
    block = re.search(r"^## Large files\n.*?^```sh\n(.*?)^```", (REPO / "README.md").read_text(), re.S | re.M)
    assert block is not None
    workdir, commands = tmp_path / "paste", tmp_path / "bin"
    workdir.mkdir()
    commands.mkdir()
    async with newcomer_connector(tmp_path) as (child, address):
        # kubemq-s3 as installed, speaking to this connector's embedded broker (a free port instead of 50000).
        wrapper = commands / "kubemq-s3"
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m connector "$@" --address {address}\n')
        wrapper.chmod(0o755)
        env = {**os.environ, "PATH": f"{commands}:{os.environ['PATH']}", "PYTHONPATH": str(REPO)}
        pasted = ["bash", "-euo", "pipefail", "-c", block.group(1)]
        done = await asyncio.to_thread(subprocess.run, pasted, cwd=workdir, env=env, capture_output=True, text=True, timeout=150)
        await stop_with_sigterm(child)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    created, uploaded, downloaded, rest = json_documents(done.stdout, 3)
    [original, copy] = [line.split() for line in rest.strip().splitlines()]
    assert created["is_error"] is False
    assert original == [uploaded["sha256"], "big.bin"] and copy == [downloaded["sha256"], "big-copy.bin"] and original[0] == copy[0]
    for result in (uploaded, downloaded):
        assert (result["size"], result["parts"], result["verified"]) == (100 * MIB, 7, "ChecksumSHA256")


def json_documents(text: str, count: int) -> list[Any]:
    """The first ``count`` JSON documents of ``text``, one after the other, then the rest of it."""
    decoder, documents, position = json.JSONDecoder(), [], 0
    for _ in range(count):
        document, position = decoder.raw_decode(text, len(text) - len(text[position:].lstrip()))
        documents.append(document)
    return [*documents, text[position:]]
