"""Spans for the S3 calls, when tracing is on: children of the request's span.

The official ``opentelemetry-instrumentation-botocore`` instruments
aiobotocore too (its ``AiobotocoreInstrumentor``, checked with aiobotocore
2.25.1): one CLIENT span per API call (``S3.GetObject`` ...), with the
region, endpoint, HTTP status and AWS request id, retries included. This
module turns it on with the connector's tracer provider and adds what it does
not record for S3: the bucket and key, on the call's span and on the request's.

It patches aiobotocore's client class, so it is done once per tracing
session and undone when tracing stops. Off, nothing is imported or patched.
"""

from __future__ import annotations

from typing import Any

import structlog

from bindings import tracing

log = structlog.get_logger("connector.s3")

# OpenTelemetry's AWS S3 attributes, from the API call's parameters.
_PARAMETERS = {"Bucket": "aws.s3.bucket", "Key": "aws.s3.key", "CopySource": "aws.s3.copy_source", "UploadId": "aws.s3.upload_id", "PartNumber": "aws.s3.part_number"}
# Only these describe the request as a whole (the last call that names them wins: a copy's destination).
_REQUEST_ATTRIBUTES = ("aws.s3.bucket", "aws.s3.key")


def trace_s3_calls() -> None:
    """Instrument aiobotocore for the running tracing, if tracing is on and it is not done yet."""
    running = tracing.active()
    if running is None:
        return
    try:
        from opentelemetry.instrumentation.botocore import AiobotocoreInstrumentor
    except ImportError as exc:
        log.warning("tracing is on but the botocore instrumentation is missing; no S3 spans", error=str(exc), hint=f"pip install '{running.identity.name}[tracing]'")
        return
    instrumentor = AiobotocoreInstrumentor()  # type: ignore[no-untyped-call]  # a singleton: the same one everywhere
    if instrumentor.is_instrumented_by_opentelemetry:
        return
    instrumentor.instrument(tracer_provider=running.provider, request_hook=_describe_call)
    running.on_close(instrumentor.uninstrument)


def _describe_call(span: Any, service_name: str, operation_name: str, api_params: dict[str, Any] | None) -> None:
    """The instrumentation's request hook: name the bucket and key the call works on."""
    if service_name != "s3" or not api_params:
        return
    attributes = {name: _text(api_params[key]) for key, name in _PARAMETERS.items() if api_params.get(key) not in (None, "")}
    if span.is_recording():
        span.set_attributes(attributes)
    tracing.annotate({name: attributes[name] for name in _REQUEST_ATTRIBUTES if name in attributes})


def _text(value: Any) -> str | int:
    """A parameter as an attribute value; a copy source given as a dict reads as ``bucket/key``."""
    if isinstance(value, dict):
        return f"{value.get('Bucket', '')}/{value.get('Key', '')}"
    return value if isinstance(value, int) else str(value)
