"""The aws.s3 target's replies in each reply style, side by side, through the engine as a source hands them over.

``kubemq-targets`` keeps to what kubemq-targets sends (proven against it by
tests/differential); ``extended`` keeps everything this connector knows.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from bindings.config import parse_config
from bindings.context import RequestContext
from bindings.engine import Binding
from bindings.metrics import Metrics
from bindings.wire import Request, Response
from connector.app import registry
from tests.fixtures.s3 import seaweed_properties


async def styled_binding(seaweed: Any, style: str) -> Binding:
    """A binding of the real aws.s3 target (not subscribed: requests go straight to ``process``)."""
    properties = "\n".join(f'          {key}: "{value}"' for key, value in seaweed_properties(seaweed).items())
    text = f"""
bindings:
  - name: {style}
    source: {{kind: kubemq.query, properties: {{address: "127.0.0.1:1", channel: "styles"}}}}
    target:
      kind: aws.s3
      properties:
{properties}
    properties:
      reply_style: "{style}"
"""
    binding = Binding(parse_config(text, registry()).bindings[0], registry(), Metrics())
    await binding.prepare()
    assert binding.target_ready, binding.last_error
    return binding


@pytest_asyncio.fixture(scope="module")
async def bindings(seaweed: Any) -> AsyncIterator[dict[str, Binding]]:
    made = {style: await styled_binding(seaweed, style) for style in ("kubemq-targets", "extended")}
    yield made
    for binding in made.values():
        await binding.target.close()


async def one(binding: Binding, metadata: dict[str, str], data: bytes = b"") -> Response:
    outcome = await binding.process(Request(metadata=metadata, data=data).to_json(), RequestContext(binding=binding.name, request_id="r"))
    return Response.from_json(outcome.response.to_json())


async def both(bindings: dict[str, Binding], metadata: dict[str, str], data: bytes = b"") -> tuple[Response, Response]:
    """The same request through each style's binding, one after the other: (kubemq-targets', extended)."""
    return await one(bindings["kubemq-targets"], metadata, data), await one(bindings["extended"], metadata, data)


async def test_reads_and_writes_carry_kubemq_targets_metadata_or_all_of_it(bindings: dict[str, Binding], bucket: str) -> None:
    where = {"bucket_name": bucket, "item_name": "styled.txt"}
    plain, rich = await both(bindings, {"method": "upload_item", **where}, b"hello")
    assert plain.metadata == {"result": "ok"} and {"bucket", "key", "etag", "link", "checksum_crc32"} <= set(rich.metadata)
    etag = json.loads(plain.data or b"")["ETag"]
    assert json.loads(rich.data or b"")["ETag"] == etag == rich.metadata["etag"]
    plain, rich = await both(bindings, {"method": "get_item", **where})
    assert plain.metadata == {"result": "ok", "bucket": bucket, "key": "styled.txt"} and plain.data == rich.data == b"hello"
    assert (rich.metadata["content_length"], rich.metadata["etag"]) == ("5", etag)
    plain, rich = await both(bindings, {"method": "list_bucket_items", "bucket_name": bucket})
    assert plain.metadata == {"result": "ok"} and rich.metadata["count"] == "1"
    plain, rich = await both(bindings, {"method": "head_item", **where})  # not a kubemq-targets method: the same in both
    assert plain.metadata == rich.metadata and plain.data == rich.data


async def test_delete_all_items_counts_only_in_the_extended_style(bindings: dict[str, Binding], bucket: str) -> None:
    emptying = {"method": "delete_all_items_from_bucket", "bucket_name": bucket}
    for binding in (bindings["extended"], bindings["kubemq-targets"]):
        for key in ("a", "b"):
            assert not (await one(binding, {"method": "upload_item", "bucket_name": bucket, "item_name": key}, b"x")).is_error
        emptied = await one(binding, emptying)
        assert (emptied.metadata, emptied.data) == (({"result": "ok", "bucket": bucket, "deleted": "2"}, b'{"Deleted":2}') if binding.name == "extended" else ({"result": "ok"}, None))


async def test_errors_list_their_attempts_only_in_the_kubemq_targets_style(bindings: dict[str, Binding], bucket: str) -> None:
    plain, rich = await both(bindings, {"method": "get_item", "bucket_name": bucket, "item_name": "missing"})
    assert plain.error.startswith("All attempts fail:\n#1: NoSuchKey: The specified key does not exist.\n\tstatus code: 404, request id: ")
    assert rich.error.startswith("NoSuchKey: The specified key does not exist.\n\tstatus code: 404, request id: ")
    plain, rich = await both(bindings, {"method": "upload_item"})
    assert plain.error == "All attempts fail:\n#1: error parsing bucket_name, value of key bucket_name cannot be empty"
    assert rich.error == (
        "error parsing bucket_name, value of key bucket_name cannot be empty; item_name is required when using upload_item , "
        "error parsing item_name, value of key item_name cannot be empty (or give file_name, which then names the object)"
    )
