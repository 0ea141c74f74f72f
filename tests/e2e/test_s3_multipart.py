"""Objects of any size through the bus and around it, with end-to-end integrity: SDK -> broker -> connector -> SeaweedFS.

Multipart uploads driven step by step with the official KubeMQ SDK, a part
sent straight to SeaweedFS with aiohttp through a presigned URL, damaged
bytes refused, tags and encryption read back, and a batch delete of 2,500
keys; every outcome checked behind the connector's back.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devbroker import EmbeddedBroker
from tests.e2e.support import MIB, Send, keys_in, ok, put_many, stored
from tests.fixtures.kubemq import S3_CHANNEL

REPO = Path(__file__).resolve().parents[2]
KEY = "uploads/big movie.mp4"
PARTS = [os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(4321)]


def sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


async def start(connector_send: Send, bucket: str, **metadata: str) -> str:
    reply = await connector_send({"method": "create_multipart_upload", "bucket_name": bucket, "item_name": KEY, **metadata})
    assert ok(reply)["UploadId"] == reply.metadata["upload_id"]
    return reply.metadata["upload_id"]


async def send_part(connector_send: Send, bucket: str, upload_id: str, number: int, data: bytes, **metadata: str) -> Any:
    request = {"method": "upload_part", "bucket_name": bucket, "item_name": KEY, "upload_id": upload_id, "part_number": str(number), **metadata}
    return await connector_send(request, data, timeout=60)


async def test_three_parts_through_the_bus_completed_with_and_without_a_part_list(connector_send: Send, s3_client: Any, bucket: str) -> None:
    implicit = await start(connector_send, bucket, content_type="video/mp4")
    for number, data in enumerate(PARTS, start=1):
        reply = await send_part(connector_send, bucket, implicit, number, data, checksum_sha256=sha256(data))
        assert reply.metadata["checksum_sha256"] == sha256(data) and reply.metadata["part_number"] == str(number)
    listed = await connector_send({"method": "list_parts", "bucket_name": bucket, "item_name": KEY, "upload_id": implicit})
    assert [part["Size"] for part in ok(listed)["Parts"]] == [len(data) for data in PARTS]
    done = await connector_send({"method": "complete_multipart_upload", "bucket_name": bucket, "item_name": KEY, "upload_id": implicit, "wait_for_completion": "true"})
    assert ok(done)["UploadID"] == implicit and done.metadata["etag"].endswith('-3"')
    got = await connector_send({"method": "get_item", "bucket_name": bucket, "item_name": KEY}, timeout=60)
    assert got.data == b"".join(PARTS) and got.metadata["content_type"] == "video/mp4"

    explicit = await start(connector_send, bucket)
    swapped = [PARTS[1], PARTS[0], PARTS[2]]
    etags = [(await send_part(connector_send, bucket, explicit, number, data)).metadata["etag"] for number, data in enumerate(swapped, start=1)]
    part_list = json.dumps([{"PartNumber": number, "ETag": etag} for number, etag in enumerate(etags, start=1)]).encode()
    ok(await connector_send({"method": "complete_multipart_upload", "bucket_name": bucket, "item_name": KEY, "upload_id": explicit}, part_list))
    assert await stored(s3_client, bucket, KEY) == b"".join(swapped)
    uploads = await connector_send({"method": "list_multipart_uploads", "bucket_name": bucket})
    assert ok(uploads)["Uploads"] is None and uploads.metadata["count"] == "0"


async def test_a_part_put_to_a_presigned_url_by_a_plain_http_client_then_completed_through_the_bus(connector_send: Send, s3_client: Any, bucket: str) -> None:
    upload_id = await start(connector_send, bucket)
    first = await send_part(connector_send, bucket, upload_id, 1, PARTS[0])
    signed = ok(await connector_send({"method": "presign_url", "bucket_name": bucket, "item_name": KEY, "operation": "upload_part", "upload_id": upload_id, "part_number": "2"}))
    assert signed["method"] == "PUT"
    async with aiohttp.ClientSession() as session, session.put(signed["url"], data=PARTS[2]) as response:
        assert response.status == 200
        second = response.headers["ETag"]
    part_list = json.dumps([{"PartNumber": 1, "ETag": first.metadata["etag"]}, {"PartNumber": 2, "ETag": second}]).encode()
    ok(await connector_send({"method": "complete_multipart_upload", "bucket_name": bucket, "item_name": KEY, "upload_id": upload_id}, part_list))
    assert await stored(s3_client, bucket, KEY) == PARTS[0] + PARTS[2]


async def test_damaged_bytes_are_refused_with_bad_digest_and_nothing_is_stored(connector_send: Send, s3_client: Any, bucket: str) -> None:
    upload_id = await start(connector_send, bucket)
    damaged = await send_part(connector_send, bucket, upload_id, 1, b"bytes damaged on the way", checksum_sha256=sha256(b"bytes as sent"))
    assert damaged.is_error and damaged.error.startswith("BadDigest: the checksum_sha256 given") and damaged.metadata == {} and damaged.data is None
    listed = await connector_send({"method": "list_parts", "bucket_name": bucket, "item_name": KEY, "upload_id": upload_id})
    assert ok(listed)["Parts"] is None
    wrong_md5 = base64.b64encode(hashlib.md5(b"bytes as sent").digest()).decode()
    refused = await connector_send({"method": "upload_item", "bucket_name": bucket, "item_name": "a.txt", "content_md5": wrong_md5}, b"bytes damaged")
    assert refused.is_error and refused.error.startswith("BadDigest: the content_md5 given")
    ok(await connector_send({"method": "abort_multipart_upload", "bucket_name": bucket, "item_name": KEY, "upload_id": upload_id}))
    assert await keys_in(s3_client, bucket) == []


async def test_tags_and_encryption_round_trip(connector_send: Send, bucket: str) -> None:
    uploaded = await connector_send({"method": "upload_item", "bucket_name": bucket, "item_name": "r.pdf", "tags": "team=finance,year=2024", "server_side_encryption": "AES256"}, b"%PDF")
    assert uploaded.metadata["server_side_encryption"] == "AES256"
    head = await connector_send({"method": "head_item", "bucket_name": bucket, "item_name": "r.pdf"})
    described = ok(head)
    assert (described["ServerSideEncryption"], described["TagCount"]) == ("AES256", 2) and head.metadata["server_side_encryption"] == "AES256"
    tags = await connector_send({"method": "get_item_tags", "bucket_name": bucket, "item_name": "r.pdf"})
    assert sorted(tags.metadata["tags"].split(",")) == ["team=finance", "year=2024"]
    ok(await connector_send({"method": "put_item_tags", "bucket_name": bucket, "item_name": "r.pdf"}, b'{"year": "2025"}'))
    assert (await connector_send({"method": "get_item_tags", "bucket_name": bucket, "item_name": "r.pdf"})).metadata["tags"] == "year=2025"
    ok(await connector_send({"method": "delete_item_tags", "bucket_name": bucket, "item_name": "r.pdf"}))
    assert ok(await connector_send({"method": "get_item_tags", "bucket_name": bucket, "item_name": "r.pdf"}))["TagSet"] == []


async def test_delete_items_deletes_2500_keys_missing_ones_included(connector_send: Send, s3_client: Any, bucket: str) -> None:
    asked = [f"batch/{i:04d}" for i in range(2500)]
    await put_many(s3_client, bucket, [*asked[::25], "other/keep"])
    reply = await connector_send({"method": "delete_items", "bucket_name": bucket}, json.dumps(asked).encode(), timeout=60)
    assert ok(reply) == {"Deleted": asked, "Errors": []} and reply.metadata == {"result": "ok", "bucket": bucket, "deleted": "2500", "errors": "0"}
    assert await keys_in(s3_client, bucket) == ["other/keep"]


@pytest.mark.slow  # eight `kubemq-s3 send` processes: 6 to 10 s on the 2-core development machine
async def test_the_documented_multipart_walk_through_runs_as_is(connector_send: Send, broker: EmbeddedBroker, s3_client: Any, bucket: str, tmp_path: Path) -> None:
    """The ``bash`` blocks of docs/methods.md, in order, as one script; ``kubemq-s3`` is this checkout, reaching the test connector.

    The last ``--address``/``--channel`` wins, so the documented ``localhost:50000`` and ``query.aws.s3`` are overridden.
    """
    blocks = re.findall(r"^```bash\n(.*?)^```", (REPO / "docs" / "methods.md").read_text(), re.S | re.M)
    runner = f'kubemq-s3() {{ "{sys.executable}" -m connector "$@" --address {broker.address} --channel {S3_CHANNEL}; }}\n'
    script = "set -euo pipefail\n" + runner + "".join(blocks).replace("bucket_name=demo", f"bucket_name={bucket}")
    environment = {**os.environ, "PYTHONPATH": str(REPO), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = await asyncio.to_thread(subprocess.run, ["bash", "-c", script], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"stdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}"
    assert "big.bin is byte for byte the two parts" in done.stdout
    assert await stored(s3_client, bucket, "big.bin") == (tmp_path / "part1.bin").read_bytes() + b"the last part may be small"
    assert (await s3_client.list_multipart_uploads(Bucket=bucket)).get("Uploads", []) == []  # the aborted one is gone too
