"""Least privilege end to end: the read-only reporting binding of docs/operations.md, driven with the official SDK through the broker."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import aiohttp

from bindings.wire import Request
from devbroker import EmbeddedBroker
from tests.e2e.support import http, keys_in, raw_query, target_properties
from tests.fixtures.kubemq import StartConnector, s3_binding_yaml
from tests.fixtures.s3 import empty_bucket, unique_bucket_name

CHANNEL = "query.aws.s3.e2e.reports"
# Retries that would take 6 s at least: a refusal answered well before that was not retried.
SLOW_RETRIES = '\n          retry_attempts: "3"\n          retry_delay_milliseconds: "3000"'


async def send(broker: EmbeddedBroker, metadata: dict[str, str], data: bytes = b"") -> tuple[dict[str, Any], float]:
    """One query with the official SDK: (the reply body as sent on the wire, seconds it took)."""
    started = time.monotonic()
    executed, reply = await raw_query(broker.address, Request(metadata=metadata, data=data).to_json(), channel=CHANNEL)
    assert executed
    return reply, time.monotonic() - started


def data_json(reply: dict[str, Any]) -> Any:
    """A success reply's ``data`` (base64 on the wire) parsed as JSON."""
    assert not reply["is_error"], reply["error"]
    return json.loads(base64.b64decode(reply["data"]))


async def test_a_read_only_reporting_binding_serves_reads_and_refuses_the_rest(start_connector: StartConnector, broker: EmbeddedBroker, seaweed: Any, s3_client: Any, bucket: str) -> None:
    reports = unique_bucket_name("reports")
    await s3_client.create_bucket(Bucket=reports)
    try:
        await s3_client.put_object(Bucket=reports, Key="monthly/2024-05.pdf", Body=b"%PDF may")
        properties = target_properties(read_only="true", allowed_buckets="reports-*", allowed_keys="monthly/*, yearly/*")
        running = await start_connector(s3_binding_yaml(seaweed, CHANNEL, extra_target=properties, middleware=SLOW_RETRIES))

        got, _ = await send(broker, {"method": "get_item", "bucket_name": reports, "item_name": "monthly/2024-05.pdf"})
        assert not got["is_error"] and got["metadata"]["key"] == "monthly/2024-05.pdf"
        listed, _ = await send(broker, {"method": "list_buckets"})
        names = [b["Name"] for b in data_json(listed)["Buckets"]]
        assert reports in names and bucket not in names and all(name.startswith("reports-") for name in names)
        shared, _ = await send(broker, {"method": "presign_url", "bucket_name": reports, "item_name": "monthly/2024-05.pdf"})
        assert await http("GET", data_json(shared)["url"]) == (200, b"%PDF may")

        refused = {
            "AccessDenied: method upload_item writes, and binding 's3' is read-only (read_only)": ({"method": "upload_item", "bucket_name": reports, "item_name": "monthly/fake.pdf"}),
            "AccessDenied: method presign_url with operation=put writes, and binding 's3' is read-only (read_only)": (
                {"method": "presign_url", "bucket_name": reports, "item_name": "monthly/2024-05.pdf", "operation": "put"}
            ),
            "AccessDenied: method delete_bucket writes, and binding 's3' is read-only (read_only)": {"method": "delete_bucket", "bucket_name": reports},
            f"AccessDenied: bucket '{bucket}' is not allowed on binding 's3' (allowed_buckets)": ({"method": "get_item", "bucket_name": bucket, "item_name": "monthly/2024-05.pdf"}),
        }
        for error, metadata in refused.items():
            reply, took = await send(broker, metadata, b"forged")
            assert reply == {"metadata": {}, "data": None, "is_error": True, "error": error}
            assert took < 3, f"{metadata['method']} took {took:.1f} s: was it retried?"
            assert seaweed.secret_key not in reply["error"]
        assert await keys_in(s3_client, reports) == ["monthly/2024-05.pdf"]

        async with aiohttp.ClientSession() as session, session.get(f"{running.api_url}/metrics") as response:
            metrics = await response.text()
        labels = 'binding="s3",code="PolicyDenied",method="{}",source_kind="kubemq.query",target_kind="aws.s3"'
        assert f"kubemq_s3_errors_total{{{labels.format('presign_url')}}} 1.0" in metrics
        assert f"kubemq_s3_errors_total{{{labels.format('get_item')}}} 1.0" in metrics
        assert f"kubemq_s3_errors_total{{{labels.format('upload_item')}}} 1.0" in metrics
    finally:
        await empty_bucket(s3_client, reports)
        await s3_client.delete_bucket(Bucket=reports)
