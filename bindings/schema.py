"""The JSON Schema of ``config.yaml``, derived from the same declarations that validate it.

Editors (VS Code's YAML extension, for one) use it to complete and check
binding files as they are typed. Each source/target block is an ``if kind ==
X then properties follow X's model`` rule, so properties are checked per kind.
Property values may be strings (as kubemq-targets writes them) or plain
scalars, so every typed property also accepts a string.
"""

from __future__ import annotations

import json
from typing import Any

from bindings.config import config_model
from bindings.middleware import MiddlewareProperties
from bindings.properties import Properties
from bindings.registry import Registry


def config_schema(registry: Registry) -> dict[str, Any]:
    schema = config_model(registry).model_json_schema()
    schema.pop("title", None)
    defs = schema.setdefault("$defs", {})
    defs["ComponentConfig"] = _component(defs["ComponentConfig"])
    binding = defs["BindingConfig"]
    binding["properties"]["source"] = _kinds(registry.sources, "source")
    binding["properties"]["target"] = _kinds(registry.targets, "target")
    binding["properties"]["properties"] = _properties(MiddlewareProperties)
    identity = {"$id": registry.identity.schema_id} if registry.identity.schema_id else {}
    return {"$schema": "http://json-schema.org/draft-07/schema#", **identity, "title": f"{registry.identity.name} config", **schema}


def render_schema(registry: Registry) -> str:
    """The schema as the ``schema`` command prints it and ``config.schema.json`` ships it (byte for byte)."""
    return json.dumps(config_schema(registry), indent=2) + "\n"


def _component(component: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in component.items() if key != "title"}


def _kinds(kinds: dict[str, Any], role: str) -> dict[str, Any]:
    names = list(kinds)
    rules = []
    for name, cls in kinds.items():
        rules.append({"if": {"properties": {"kind": {"const": name}}}, "then": {"properties": {"properties": _properties(cls.properties_model)}}})
    return {
        "type": "object",
        "description": f"The binding's {role}.",
        "required": ["kind"],
        "additionalProperties": False,
        "properties": {
            "kind": {"enum": names, "description": f"{role.capitalize()} kind."},
            "name": {"type": "string", "description": "Free-form name shown in logs and `/bindings`."},
            "properties": {"type": "object"},
        },
        "allOf": rules,
    }


def _properties(model: type[Properties]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=False)
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
        _also_string(prop)
        for option in prop.get("anyOf", []):
            _also_string(option)
        _also_reference(prop)
    for name, info in model.model_fields.items():
        for alias in getattr(info.validation_alias, "choices", None) or []:
            if alias != name:
                schema["properties"][alias] = {**schema["properties"][name], "description": f"Spelling accepted for `{name}`."}
    return schema


def _also_string(prop: dict[str, Any]) -> None:
    """kubemq-targets quotes every value ("3", "true"): allow a string wherever a number or bool is declared."""
    if prop.get("type") in ("integer", "number", "boolean"):
        prop["anyOf"] = [{"type": prop.pop("type")}, {"type": "string"}]
        for bound in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if bound in prop:
                prop["anyOf"][0][bound] = prop.pop(bound)


# ``${VAR}`` / ``${VAR:-default}`` anywhere in a value, as the config loader expands it.
ENV_REFERENCE = r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"
CONSTRAINTS = frozenset({"pattern", "enum", "const", "minLength", "maxLength"})
ANNOTATIONS = frozenset({"description", "default", "examples"})


def _also_reference(prop: dict[str, Any]) -> None:
    """Values are expanded from the environment before they are checked: accept a reference where a pattern or choice would refuse it."""
    if not any(CONSTRAINTS & option.keys() for option in [prop, *prop.get("anyOf", [])]):
        return
    constrained = {key: prop.pop(key) for key in list(prop) if key not in ANNOTATIONS}
    prop["anyOf"] = [constrained, {"type": "string", "pattern": ENV_REFERENCE}]
