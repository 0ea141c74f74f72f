"""Declaring a component's fields once.

Every source, target and middleware describes its ``properties`` (and every
method its request metadata) as a pydantic model whose fields carry type,
default, description and example. Validation, the JSON Schema, ``validate``
messages, docs and secret redaction are all derived from that one declaration.

kubemq-targets writes every value as a quoted string (``"3"``, ``"true"``), and
operators write plain YAML scalars; both are accepted: strings are coerced to
the declared type and numbers to strings where a string is declared.
"""

from __future__ import annotations

from typing import Annotated, Any, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema, model_validator

from bindings.errors import ConfigProblem
from bindings.hints import choices_message, value_message

SECRET_MARK = "secret"  # noqa: S105 - the marker of secret fields, not a secret


def field(default: Any = ..., *, description: str, example: Any = None, secret: bool = False, **kwargs: Any) -> Any:
    """A declared property: ``default`` of ``...`` means required.

    ``secret=True`` marks values that must never be logged, echoed or shown on
    ``/bindings``; redaction reads this mark instead of guessing from names.
    """
    extra: dict[str, Any] = {SECRET_MARK: True} if secret else {}
    examples = [example] if example is not None else None
    return Field(default, description=description, examples=examples, json_schema_extra=extra or None, **kwargs)


def _split_commas(value: Any) -> Any:
    """kubemq-targets writes every value as a string, so ``"a, b"`` stands for the list ``[a, b]`` (blanks dropped)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


# A list property: a YAML list, or one comma-separated string as kubemq-targets configs write it.
StringList = Annotated[
    list[str],
    BeforeValidator(_split_commas),
    WithJsonSchema({"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string", "description": "Comma-separated values."}]}),
]


# What Go's ``strconv.ParseBool`` reads as true; kubemq-targets reads anything else, unknown words included, as false.
GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})


def _go_bool(value: Any) -> Any:
    return value in GO_TRUE if isinstance(value, str) else value


# A request flag read as kubemq-targets reads it (``Metadata.ParseBool`` with default false): never refused.
GoFlag = Annotated[bool, BeforeValidator(_go_bool)]


class Properties(BaseModel):
    """Base of every ``properties`` block: unknown keys are refused, so typos show."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_means_default(cls, values: Any) -> Any:
        # kubemq-targets treats "" as "not set" (its parse helpers fall back to the default).
        if isinstance(values, dict):
            return {k: v for k, v in values.items() if v is not None and v != ""}
        return values

    @classmethod
    def secret_fields(cls) -> frozenset[str]:
        """Names (and aliases) of the fields declared ``secret``."""
        return secret_fields(cls)

    @classmethod
    def parse(cls, values: dict[str, Any], location: str) -> tuple[Any, list[ConfigProblem]]:
        """Validate ``values``; on failure return every problem, located under ``location``."""
        try:
            return cls.model_validate(values), []
        except ValidationError as exc:
            return None, problems_from(exc, location, cls)


def secret_fields(model: type[BaseModel]) -> frozenset[str]:
    """Names (and aliases) of a model's fields declared ``secret``."""
    names: set[str] = set()
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, dict) and extra.get(SECRET_MARK):
            names.update(n for n in (name, info.alias) if n)
    return frozenset(names)


def format_location(parts: tuple[str | int, ...] | list[str | int], prefix: str = "") -> str:
    """``("bindings", 0, "name")`` -> ``bindings[0].name``, as operators read paths."""
    text = prefix
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def problems_from(exc: ValidationError, location: str, model: type[BaseModel]) -> list[ConfigProblem]:
    """Turn pydantic's errors into located problems, never echoing a secret value."""
    secrets = secret_fields(model)
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        full = format_location(error["loc"], location)
        if error["type"] == "extra_forbidden":
            message = _unknown_key_message(model, error["loc"])
        elif error["type"] == "missing":
            message = "required property is missing"
        elif error["loc"] and str(error["loc"][0]) in secrets:
            message = "invalid value (hidden: secret)"
        else:
            message = value_message(error)
        problems.append(ConfigProblem(full, message))
    return problems


def _unknown_key_message(model: type[BaseModel], loc: tuple[str | int, ...]) -> str:
    """Name the keys valid where the unknown one stands (a binding's keys, not the file's), and the closest one."""
    owner = _model_at(model, loc[:-1]) or model
    noun = "property" if issubclass(owner, Properties) else "key"
    label = "valid properties" if noun == "property" else "valid keys"
    return f"unknown {noun}; " + choices_message(str(loc[-1]), owner.model_fields, label)


def _model_at(model: type[BaseModel], path: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model whose fields sit at ``path`` inside ``model``; list positions are stepped over."""
    current: type[BaseModel] | None = model
    for part in path:
        if isinstance(part, int):
            continue
        info = current.model_fields.get(part) if current is not None else None
        current = _model_in(info.annotation) if info is not None else None
    return current


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model an annotation holds: itself, or inside ``list[...]`` / ``... | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None
