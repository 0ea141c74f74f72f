"""Loading and validating ``config.yaml`` (the kubemq-targets schema).

Validation happens in two layers: the file's shape (``Config``), then each
binding's source, target and middleware properties against the model their
kind declares. Every problem is collected, located by dotted path and YAML
line, and reported together, so one ``validate`` run shows all of them.
``${VAR}`` and ``${VAR:-default}`` in property values are expanded from the
environment first, so secrets can come from Kubernetes Secrets.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from bindings.errors import ConfigError, ConfigProblem
from bindings.hints import choices_message
from bindings.middleware import MiddlewareProperties
from bindings.properties import Properties, problems_from
from bindings.registry import Registry
from bindings.tracing import TracingSettings

ENV_PATTERN = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
DEFAULT_API_PORT = 8080


class ComponentConfig(BaseModel):
    """A binding's ``source`` or ``target`` block."""

    model_config = ConfigDict(extra="forbid")
    kind: str = Field(description="Component kind, e.g. `kubemq.query` or `aws.s3`.", min_length=1)
    name: str = Field("", description="Free-form name shown in logs and `/bindings`.")
    properties: dict[str, Any] = Field(default_factory=dict, description="Kind-specific properties.")


class BindingConfig(BaseModel):
    """One binding: requests from ``source`` go to ``target`` through the middleware in ``properties``."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="Unique binding name.", min_length=1)
    source: ComponentConfig
    target: ComponentConfig
    properties: dict[str, Any] = Field(default_factory=dict, description="Middleware: logging, retry, rate limit.")


class Config(BaseModel):
    """The whole file. Top-level keys are camelCase, as kubemq-targets writes them."""

    model_config = ConfigDict(extra="forbid")
    apiPort: int = Field(DEFAULT_API_PORT, ge=0, le=65535, description="HTTP API port (health, readiness, metrics, bindings); 0 disables it.")
    apiHost: str = Field("0.0.0.0", description="Address the HTTP API binds to.")  # noqa: S104 - in a pod, probes and scrapes come from outside
    apiRequests: bool = Field(
        False,
        description="Serve `POST /bindings/request`, which runs a request through a binding with no KubeMQ auth in between: enable only where the API is not reachable by untrusted clients.",
    )
    logLevel: Literal["debug", "info", "warning", "error"] = Field("info", description="Global log level.")
    logFormat: Literal["auto", "json", "console"] = Field("auto", description="`auto`: console on a terminal, JSON lines otherwise.")
    drainTimeoutSeconds: float = Field(25.0, ge=0, le=3600, description="On shutdown or a binding restart, how long in-flight requests may finish.")
    tracing: TracingSettings = Field(
        default_factory=lambda: TracingSettings.model_validate({}), description="OpenTelemetry tracing (off by default; see its own table). Changes take effect on restart."
    )
    bindings: list[BindingConfig] | None = Field(default=None, description="The bindings; none is allowed (the process then only serves its API).")


@dataclass(frozen=True)
class ResolvedComponent:
    kind: str
    name: str
    properties: Any  # the kind's validated Properties model


@dataclass(frozen=True)
class ResolvedBinding:
    """A binding whose every property is validated and typed."""

    name: str
    source: ResolvedComponent
    target: ResolvedComponent
    middleware: MiddlewareProperties
    fingerprint: str  # equal fingerprints mean an unchanged binding (hot reload keeps it running)


@dataclass(frozen=True)
class ResolvedConfig:
    settings: Config
    bindings: list[ResolvedBinding]


@functools.cache
def _with_settings(declared: tuple[type[BaseModel], ...]) -> type[Config]:
    """``Config`` plus the top-level keys the product's development services declare (one model each)."""
    if not declared:
        return Config
    fields: dict[str, Any] = {name: (info.annotation, info) for model in declared for name, info in model.model_fields.items()}
    taken = set(Config.model_fields).intersection(fields)
    if taken or len(fields) != sum(len(model.model_fields) for model in declared):
        raise ValueError(f"development service settings declare a top-level key twice: {sorted(taken) or 'between services'}")
    return create_model("Config", __base__=Config, __doc__=Config.__doc__, **fields)


def config_model(registry: Registry) -> type[Config]:
    """The whole file's model for ``registry``: the engine's keys and the ones its development services read."""
    return _with_settings(registry.settings)


def load_config(path: str | Path, registry: Registry) -> ResolvedConfig:
    """Read, expand and validate a config file; raise ``ConfigError`` listing every problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem("", f"cannot read config file {str(path)!r}: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigProblem("", f"config file {str(path)!r} is not UTF-8 text (byte {exc.start})")]) from None
    return parse_config(text, registry)


def parse_config(text: str, registry: Registry) -> ResolvedConfig:
    """Validate config text (YAML or JSON)."""
    data, lines = _load_yaml(text)
    data = data if data is not None else {}
    config: Config | None = None
    try:
        config = config_model(registry).model_validate(data)
    except ValidationError as exc:
        # A wrong top-level key must not hide the bindings' problems: keep checking those that have their shape.
        problems = [_locate(p, lines) for p in problems_from(exc, "", config_model(registry))]
        bindings = _well_formed_bindings(data)
    else:
        problems = []
        bindings = list(enumerate(config.bindings or []))

    resolved: list[ResolvedBinding] = []
    seen: set[str] = set()
    for index, binding in bindings:
        location = f"bindings[{index}]"
        found: list[ConfigProblem] = []
        if binding.name in seen:
            found.append(ConfigProblem(f"{location}.name", f"duplicated binding name {binding.name!r}"))
        seen.add(binding.name)
        source = _resolve_component(binding.source, registry.sources, f"{location}.source", "source", found)
        target = _resolve_component(binding.target, registry.targets, f"{location}.target", "target", found)
        if source is not None and target is not None and (mismatch := registry.sources[source.kind].target_problem(registry.targets[target.kind])):
            found.append(ConfigProblem(f"{location}.target.kind", mismatch))
        middleware = _validate(MiddlewareProperties, binding.properties, f"{location}.properties", found)
        problems.extend(_locate(p, lines, binding.name) for p in found)
        if not found:
            fingerprint = binding.model_dump_json()
            resolved.append(ResolvedBinding(binding.name, source, target, middleware, _expanded_fingerprint(fingerprint)))
    if problems or config is None:
        # Stable sort: problems on one line keep their order; those about the whole file (no line) come first.
        raise ConfigError(sorted(problems, key=lambda problem: problem.line or 0))
    return ResolvedConfig(config, resolved)


def _well_formed_bindings(data: Any) -> list[tuple[int, BindingConfig]]:
    """The bindings, with their position, whose shape is valid in a file that is not (the others are reported already)."""
    items = data.get("bindings") if isinstance(data, dict) else None
    well_formed = []
    for index, item in enumerate(items if isinstance(items, list) else []):
        with contextlib.suppress(ValidationError):
            well_formed.append((index, BindingConfig.model_validate(item)))
    return well_formed


def _resolve_component(component: ComponentConfig, kinds: dict[str, Any], location: str, role: str, found: list[ConfigProblem]) -> Any:
    cls = kinds.get(component.kind)
    if cls is None:
        valid = choices_message(component.kind, dict.fromkeys(c.kind for c in kinds.values()), "valid kinds")
        found.append(ConfigProblem(f"{location}.kind", f"invalid kind {component.kind!r} for {role}; {valid}"))
        return None
    properties = _validate(cls.properties_model, component.properties, f"{location}.properties", found)
    if properties is not None and role == "target":
        found.extend(ConfigProblem(f"{location}.properties.{name}", message) for name, message in cls.properties_problems(properties).items())
    return ResolvedComponent(cls.kind, component.name, properties)


def _validate(model: type[Properties], values: dict[str, Any], location: str, found: list[ConfigProblem]) -> Any:
    parsed, problems = model.parse(_expand_env(values, location, found), location)
    found.extend(problems)
    return parsed


def _expand_env(values: dict[str, Any], location: str, found: list[ConfigProblem]) -> dict[str, Any]:
    expanded = {}
    for key, value in values.items():
        if isinstance(value, str):
            value = _expand_value(value, f"{location}.{key}", found)
        expanded[key] = value
    return expanded


def _expand_value(value: str, location: str, found: list[ConfigProblem]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        found.append(ConfigProblem(location, f"environment variable {name} is not set (use ${{{name}:-default}} for a fallback)"))
        return ""

    return ENV_PATTERN.sub(replace, value)


def _expanded_fingerprint(serialized: str) -> str:
    # Env values are part of the binding: a rotated secret restarts the binding.
    return ENV_PATTERN.sub(lambda m: f"{m.group(0)}={os.environ.get(m.group(1) or '', '')}", serialized)


# YAML with line numbers -------------------------------------------------------


def _load_yaml(text: str) -> tuple[Any, dict[tuple[str | int, ...], int]]:
    """Parse YAML and remember the line of every key and list item."""
    lines: dict[tuple[str | int, ...], int] = {}
    try:
        # One parse: the node tree gives the lines, and the same tree builds the data.
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
        if node is not None:
            _index_lines(node, (), lines)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError([ConfigProblem("", f"invalid YAML: {getattr(exc, 'problem', None) or exc}", line)]) from None
    except RecursionError:
        raise ConfigError([ConfigProblem("", "invalid YAML: nested too deeply (a recursive alias?)")]) from None
    return data, lines


def _index_lines(node: yaml.Node, path: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value))
            lines[child] = key.start_mark.line + 1
            _index_lines(value, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            _index_lines(item, (*path, position), lines)


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _locate(problem: ConfigProblem, lines: dict[tuple[str | int, ...], int], binding: str | None = None) -> ConfigProblem:
    """Attach the line of the deepest existing ancestor of the problem's path."""
    path: tuple[str | int, ...] = tuple(int(index) if index else name for name, index in _PATH_PART.findall(problem.location))
    while path and path not in lines:
        path = path[:-1]
    return problem.at(lines.get(path), binding)
