"""Logging: structlog, JSON lines for machines, readable lines on a terminal.

Secrets are kept out of every line twice over:

* by key: values under secret-like keys (``aws_secret_key``, ``auth_token`` ...)
  are masked, however deeply nested, so a careless
  ``log.info(..., properties=...)`` cannot leak one;
* by value: the runtime registers the secret values of every config it loads
  (``protect``), and each rendered line, structlog's or a library's through
  the stdlib, has them replaced by the mask, so one quoted inside an
  exception message or an SDK warning does not leak either.

The global level is ``logLevel``; a binding's ``log_level`` sets the level of
its own request lines (``request_logger``), above or below the global one.

Logging never harms the process: a sink that fails (a closed pipe, EIO, a
full disk) drops the line and counts it (``dropped_lines``, exported as
``kubemq_s3_log_lines_dropped_total``); serving, reloads and shutdown go on.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import os
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

from bindings.redaction import MASK, is_secret_name

REQUEST_LOGGER = "bindings.requests"
# Shorter values ("1", "true") would mask ordinary words; no real credential is this short.
MIN_PROTECTED_LENGTH = 6

_protected: set[str] = set()
# Lines that could not be written since the process started (read by the metrics).
dropped_lines = 0
_replacements: list[str] = []  # every protected value in each form it may be printed in, longest first


def protect(values: Iterable[str]) -> None:
    """Never print these strings again in this process (secrets of a loaded config)."""
    global _replacements
    _protected.update(value for value in values if len(value) >= MIN_PROTECTED_LENGTH)
    forms = {form for value in _protected for form in (value, json.dumps(value)[1:-1])}
    _replacements = sorted(forms, key=len, reverse=True)  # longest first: no partial leftovers


def scrub(text: str) -> str:
    """``text`` with every protected value (raw or JSON-escaped) masked."""
    for secret in _replacements:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


# Log lines use a handful of key names over and over: each is judged once.
_secret_key = functools.lru_cache(maxsize=4096)(is_secret_name)


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and _secret_key(key)


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (MASK if _is_secret_key(k) and v not in ("", None) else _mask(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(item) for item in value]
    return value


def _mask_secret_keys(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    # Most lines (every request line) hold no secret-like key and nothing nested: passed on as they are.
    if any(_is_secret_key(key) or isinstance(value, dict | list | tuple) for key, value in event.items()):
        masked: dict[str, Any] = _mask(event)
        return masked
    return event


class _Scrubbed:
    """Wraps the final renderer so the line that leaves the process is scrubbed, whatever produced it."""

    def __init__(self, renderer: Any) -> None:
        self.renderer = renderer

    def __call__(self, logger: Any, name: str, event: MutableMapping[str, Any]) -> str:
        return scrub(self.renderer(logger, name, event))


class LineSink:
    """Where rendered lines go: each is written whole and flushed; one that cannot be written is dropped and counted.

    A closed pipe stays closed, so after EPIPE the stream's descriptor is pointed
    at /dev/null (the interpreter's own flush at exit then succeeds) and later
    lines are counted without being tried. Other errors (EIO, ENOSPC) may pass,
    so each line is tried again.
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.closed_pipe = False

    def write_line(self, line: str) -> None:
        global dropped_lines
        if not self.closed_pipe:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
                return
            except (OSError, ValueError) as exc:  # ValueError: the stream was closed
                if isinstance(exc, BrokenPipeError) or getattr(exc, "errno", None) == errno.EPIPE:
                    self._silence()
        dropped_lines += 1

    def _silence(self) -> None:
        self.closed_pipe = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):  # no descriptor (an in-memory stream): lines are counted all the same
            pass


class _SinkLogger:
    """structlog's output end: hands each rendered line to the ``LineSink``."""

    def __init__(self, sink: LineSink) -> None:
        self._sink = sink

    def msg(self, message: str) -> None:
        self._sink.write_line(message)

    log = debug = info = warn = warning = error = critical = exception = fatal = failure = err = msg


class _SinkHandler(logging.Handler):
    """The stdlib loggers' (SDKs') output end: the same sink, the same rule for failures."""

    def __init__(self, sink: LineSink) -> None:
        super().__init__()
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 - a record that cannot be rendered is a dropped line, not a crash
            global dropped_lines
            dropped_lines += 1
            return
        self._sink.write_line(line)


_sinks: dict[int, LineSink] = {}  # one per stream, so a reconfigure keeps knowing a pipe is closed


def configure(level: str = "info", fmt: str = "auto", stream: Any = None) -> None:
    """Set up structlog and route the stdlib loggers (SDKs) through the same output."""
    stream = stream or sys.stderr
    sink = _sinks.setdefault(id(stream), LineSink(stream))
    as_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    numeric = logging.getLevelName(level.upper())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _mask_secret_keys,
    ]
    # Plain tracebacks: a "pretty" one may print local variables, secrets included.
    renderer = _Scrubbed(structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=stream.isatty(), exception_formatter=structlog.dev.plain_traceback))
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer] if as_json else [*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=lambda *_: _SinkLogger(sink),
        cache_logger_on_first_use=False,
    )
    handler = _SinkHandler(sink)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared, *([structlog.processors.format_exc_info] if as_json else [])],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # The SDK warns on every insecure channel; keep its noise to real errors.
    logging.getLogger("kubemq").setLevel(logging.ERROR)
    # The config watcher's library logs every event batch in the directory at info.
    logging.getLogger("watchfiles").setLevel(logging.WARNING)


def request_logger(level: str | None) -> Any:
    """The logger of one binding's request lines: its own ``log_level``, or the global level when unset."""
    if level is None:
        return structlog.get_logger(REQUEST_LOGGER)
    return structlog.wrap_logger(None, wrapper_class=structlog.make_filtering_bound_logger(level), logger_factory_args=(REQUEST_LOGGER,))
