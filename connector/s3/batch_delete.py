"""``delete_items``: delete a list of keys, any number of them, 1000 per DeleteObjects call.

Unlike ``delete_all_items_from_bucket``, which fails when any key is refused,
this answers with what happened to each key: the keys deleted, and S3's
error for each key it refused. As in S3, a key that does not exist counts as
deleted (deleting it succeeds and leaves it absent). The keys come in the
request's data, so what the request reaches is read from there
(``deletes_keys``): the binding's ``allowed_keys`` is checked key by key,
with every other method's reach, before anything is deleted.
"""

from __future__ import annotations

import json
from typing import Any

from bindings.context import RequestContext
from bindings.errors import InvalidRequestError
from bindings.wire import Request, Response
from connector.s3.buckets import DELETE_BATCH
from connector.s3.client import S3Client
from connector.s3.declaration import S3Method
from connector.s3.metadata import BucketMetadata
from connector.s3.policy import Access
from connector.s3.results import DELETE_ERROR, to_json

KEYS_FORM = 'a JSON array of keys, e.g. ["logs/a.txt","logs/b.txt"]'


class DeleteItemsMetadata(BucketMetadata):
    """The bucket; the keys are the request's data."""


async def delete_items(s3: S3Client, metadata: DeleteItemsMetadata, request: Request, context: RequestContext) -> Response:
    """DeleteObjects over the given keys in batches of 1000; the reply lists the deleted keys and the refusals."""
    bucket = metadata.bucket_name
    keys = _keys(request.data)
    errors: list[dict[str, Any]] = []
    for start in range(0, len(keys), DELETE_BATCH):
        chunk = keys[start : start + DELETE_BATCH]
        output = await s3.api.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True})
        errors += output.get("Errors", [])
    refused = {error.get("Key") for error in errors}
    deleted = [key for key in keys if key not in refused]
    result = {"Deleted": deleted, "Errors": [DELETE_ERROR.apply(error) for error in errors]}
    return Response.ok(to_json(result), bucket=bucket, deleted=str(len(deleted)), errors=str(len(errors)))


def deletes_keys(metadata: DeleteItemsMetadata, request: Request) -> tuple[Access, ...]:
    """Every key in the data is written (deleted); a request without valid keys is refused here, before any S3 call."""
    return tuple(Access(writes=True, bucket=metadata.bucket_name, key=key) for key in _keys(request.data))


def _keys(data: bytes) -> list[str]:
    """The request's keys, each once, in the order given."""
    if not data:
        raise InvalidRequestError(f"delete_items needs the keys as data: {KEYS_FORM}")
    try:
        keys = json.loads(data)
    except ValueError as exc:
        raise InvalidRequestError(f"error parsing data, {KEYS_FORM} is expected: {exc}") from None
    if not isinstance(keys, list) or not all(isinstance(key, str) and key for key in keys):
        raise InvalidRequestError(f"error parsing data, {KEYS_FORM} is expected (every key a non-empty string)")
    return list(dict.fromkeys(keys))


# The methods of this module, declared once (see declaration.py); the target's table lists them in this order.
DELETE_ITEMS_METHOD = S3Method(
    name="delete_items",
    metadata=DeleteItemsMetadata,
    handler=delete_items,
    summary="Delete a list of keys, reporting each refusal.",
    reaches=deletes_keys,
    example={"bucket_name": "demo"},
    example_data=b'["tmp/a.txt", "tmp/b.txt", "never-existed.txt"]',
)
DECLARED = (DELETE_ITEMS_METHOD,)
