"""Hiding secrets from anything a person can read: ``/bindings``, logs, errors.

Fields declared ``secret=True`` are always hidden. Names that look like
secrets (``*key*``, ``*secret*``, ``*token*``, ``*password*``) are hidden too,
so a property added later without the mark still does not leak.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from bindings.properties import secret_fields

MASK = "*****"
# Anything naming a secret, token or password, and names ending in "key" after a qualifier
# (aws_key, accessKey, api-key); not the object "key" itself nor counts like "max_keys".
SECRET_NAME = re.compile(r"secret|token|password|passwd|credential|authorization|.[_-]?key$", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def redact(properties: BaseModel | dict[str, Any] | None) -> dict[str, Any]:
    """A JSON-ready copy of ``properties`` with every secret-like value masked (empty ones stay empty)."""
    if properties is None:
        return {}
    if isinstance(properties, BaseModel):
        declared = secret_fields(type(properties))
        values = properties.model_dump(mode="json")
    else:
        declared, values = frozenset(), dict(properties)
    return {name: (MASK if value not in ("", None) and (name in declared or is_secret_name(name)) else value) for name, value in values.items()}
