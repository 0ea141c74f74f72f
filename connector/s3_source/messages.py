"""The message bodies the ``aws.s3`` source sends.

``content``: kubemq-sources' own body, a kubemq-targets request as JSON
(``{"metadata":{...},"data":"<base64>"}``, keys sorted, written by Go's
rules), its metadata chosen by ``target_type`` exactly as kubemq-sources
chooses it, with one fix: the key goes out intact. kubemq-sources passes it
through ``filepath.Join``, which rewrites ``a//b`` or ``a/./b``.

``reference``: a JSON document naming the object, with a presigned GET URL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import pybase64

from bindings import gojson


@dataclass(frozen=True, slots=True)
class Found:
    """An object as a listing shows it."""

    key: str
    etag: str
    size: int
    last_modified: datetime

    @property
    def folder(self) -> str:
        """kubemq-sources' ``FileDir``: the key's path without its last segment; empty at the top."""
        return self.key.rpartition("/")[0]

    @property
    def file_name(self) -> str:
        """kubemq-sources' ``FileName``: the key's last segment."""
        return self.key.rpartition("/")[2]


def request_metadata(target_type: str, found: Found, bucket: str, source_bucket: str) -> dict[str, str]:
    """The metadata kubemq-sources puts in the request for ``target_type`` (``bucket``: the bucket the request names)."""
    if target_type == "aws":
        return {"method": "upload_item", "bucket_name": bucket, "item_name": found.key}
    if target_type == "minio":
        return {"method": "put", "param1": bucket, "param2": found.key}
    if target_type == "gcp":
        return {"method": "upload", "bucket": bucket, "object": found.file_name, "path": found.folder}
    if target_type == "azure":
        return {"method": "upload", "service_url": found.key}
    if target_type == "filesystem":
        return {"method": "save", "path": found.folder, "filename": found.file_name}
    if target_type == "hdfs":
        return {"method": "file_path", "file_path": f"{source_bucket}/{found.key}"}
    if target_type == "pass-through":
        return {"path": found.folder, "filename": found.file_name}
    raise ValueError(f"unknown target_type {target_type!r}")


def targets_request(metadata: dict[str, str], data: bytes | memoryview) -> bytes:
    """kubemq-sources' ``TargetsRequest`` marshalled: metadata, then data as base64 (left out when empty, as ``omitempty`` does)."""
    parts = [b'{"metadata":', gojson.dumps(metadata).encode()]
    if len(data):
        parts += [b',"data":"', pybase64.b64encode(data), b'"']
    parts.append(b"}")
    return b"".join(parts)


def reference(found: Found, bucket: str, url: str, expires: datetime) -> bytes:
    """The ``payload: reference`` body: where the object is and a URL to fetch it."""
    document = {
        "bucket": bucket,
        "key": found.key,
        "size": found.size,
        "etag": found.etag,
        "last_modified": found.last_modified.isoformat(),
        "url": url,
        "url_expires": expires.isoformat(),
    }
    return json.dumps(document, ensure_ascii=False).encode()
