"""Logging: structlog, JSON lines for machines, readable lines on a terminal.

Every event passes a redaction step that masks values under secret-like keys,
so even a careless ``log.info(..., properties=...)`` cannot leak a key.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from bindings.redaction import MASK, is_secret_name


def _mask_secrets(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if is_secret_name(key) and value not in ("", None):
            event[key] = MASK
        elif isinstance(value, dict):
            event[key] = {k: (MASK if is_secret_name(k) and v not in ("", None) else v) for k, v in value.items()}
    return event


def configure(level: str = "info", fmt: str = "auto", stream: Any = None) -> None:
    """Set up structlog and route the stdlib loggers (SDKs) through the same output."""
    stream = stream or sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    numeric = logging.getLevelName(level.upper())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _mask_secrets,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer] if as_json else [*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(processor=renderer, foreign_pre_chain=shared))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # The SDK warns on every insecure channel; keep its noise to real errors.
    logging.getLogger("kubemq").setLevel(logging.ERROR)
