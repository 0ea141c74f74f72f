"""``delete_items``: delete a list of keys, any number of them, 1000 per DeleteObjects call.

Unlike ``delete_all_items_from_bucket``, which fails when any key is refused,
this answers with what happened to each key: the keys deleted, and S3's
error for each key it refused. As in S3, a key that does not exist counts as
deleted (deleting it succeeds and leaves it absent). The keys come in the
request's data, so the binding's ``allowed_keys`` is checked here, key by
key, before anything is deleted.
"""

from __future__ import annotations

import json
from typing import Any

from bindings.context import RequestContext
from bindings.errors import InvalidRequestError
from bindings.wire import Request, Response
from connector.s3.buckets import DELETE_BATCH
from connector.s3.client import S3Client
from connector.s3.metadata import BucketMetadata
from connector.s3.policy import Access
from connector.s3.results import DELETE_ERROR, to_json

METHOD = "delete_items"
KEYS_FORM = 'a JSON array of keys, e.g. ["logs/a.txt","logs/b.txt"]'


class DeleteItemsMetadata(BucketMetadata):
    """The bucket; the keys are the request's data."""


async def delete_items(s3: S3Client, metadata: DeleteItemsMetadata, request: Request, context: RequestContext) -> Response:
    """DeleteObjects over the given keys in batches of 1000; the reply lists the deleted keys and the refusals."""
    bucket = metadata.bucket_name
    keys = _keys(request.data)
    s3.policy.check(METHOD, [Access(writes=True, bucket=bucket, key=key) for key in keys], context.binding)
    errors: list[dict[str, Any]] = []
    for start in range(0, len(keys), DELETE_BATCH):
        chunk = keys[start : start + DELETE_BATCH]
        output = await s3.s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True})
        errors += output.get("Errors", [])
    refused = {error.get("Key") for error in errors}
    deleted = [key for key in keys if key not in refused]
    result = {"Deleted": deleted, "Errors": [DELETE_ERROR.apply(error) for error in errors]}
    return Response.ok(to_json(result), bucket=bucket, deleted=str(len(deleted)), errors=str(len(errors)))


def _keys(data: bytes) -> list[str]:
    """The request's keys, each once, in the order given."""
    if not data:
        raise InvalidRequestError(f"{METHOD} needs the keys as data: {KEYS_FORM}")
    try:
        keys = json.loads(data)
    except ValueError as exc:
        raise InvalidRequestError(f"error parsing data, {KEYS_FORM} is expected: {exc}") from None
    if not isinstance(keys, list) or not all(isinstance(key, str) and key for key in keys):
        raise InvalidRequestError(f"error parsing data, {KEYS_FORM} is expected (every key a non-empty string)")
    return list(dict.fromkeys(keys))
