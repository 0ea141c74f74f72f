"""The target interface and the method table targets dispatch with.

A target is small: ``init`` once with its validated properties, ``resolve``
each request into a ``Call`` (which operation, with its metadata parsed and
checked), ``handle`` the call, ``close`` at the end. The engine resolves a
request once, before its middleware chain: a bad request is refused before
any middleware runs, a retry does not validate again, and the middleware
reads the operation from the call instead of from shared state. Most targets
are a table of methods: each method is a handler plus the declaration of the
request metadata it reads, so the handler receives typed values instead of
parsing strings itself.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from bindings.context import RequestContext, TargetContext
from bindings.errors import InvalidRequestError
from bindings.hints import did_you_mean, value_message
from bindings.properties import Properties
from bindings.wire import KUBEMQ_TARGETS, ReplyStyle, Request, Response

METHOD_KEY = "method"
# kubemq-targets' unknown-method text (``types.Metadata.GetValidMethodTypes``): each name as `` :name,``.
INVALID_METHOD = "invalid method type, method type should be one of the following:"


class Target(abc.ABC):
    """A binding's destination. Subclasses set ``kind`` and ``properties_model``."""

    kind: ClassVar[str]
    properties_model: ClassVar[type[Properties]]
    summary: ClassVar[str] = ""
    # The target's operations, when it dispatches with a table (used for generated docs).
    methods: ClassVar[MethodTable | None] = None
    # Whether a response carries what the destination answered (a reply's metadata and data), not only that it took the message.
    answers: ClassVar[bool] = True

    @classmethod
    def properties_problems(cls, properties: Any) -> dict[str, str]:
        """Problems with valid-looking ``properties`` that only the kind's own declarations can tell, by property name; none by default.

        The config check reports each at its property's line, as it reports a field's own validation.
        """
        return {}

    @abc.abstractmethod
    async def init(self, properties: Any, context: TargetContext) -> None:
        """Connect and prepare; raise to fail the binding's start."""

    @abc.abstractmethod
    def resolve(self, request: Request) -> Call:
        """Which operation ``request`` asks for, its metadata checked; ``InvalidRequestError`` says what is wrong."""

    def authorize(self, call: Call) -> None:
        """Refuse (raise a ``RequestError``) a resolved call this binding may not run; by default every call may run."""

    @abc.abstractmethod
    async def handle(self, call: Call, context: RequestContext) -> Response:
        """Serve one resolved request; raise ``RequestError`` subclasses for failures."""

    async def close(self) -> None:
        """Release what ``init`` acquired. Called once; must not raise."""


class RequestMetadata(BaseModel):
    """Base of a method's metadata declaration.

    Metadata values are always strings on the wire; they are coerced to the
    declared types. Keys the method does not declare are ignored, as
    kubemq-targets ignores them.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_means_absent(cls, values: Any) -> Any:
        if isinstance(values, dict):
            return {k: v for k, v in values.items() if v != ""}
        return values

    @classmethod
    def missing_message(cls, key: str, method: str) -> str:
        """The error for a required key left out; kubemq-targets' wording, which senders may match."""
        return f"error parsing {key}, value of key {key} cannot be empty"

    @classmethod
    def missing_hint(cls, key: str) -> str:
        """A way out to add after ``missing_message`` in the ``extended`` reply style (none by default)."""
        return ""


MetadataT = TypeVar("MetadataT", bound=RequestMetadata)
# What a method's handler is: ``handler(owner, metadata, request, context)``, ``owner`` being what the target hands its handlers.
MethodHandler = Callable[[Any, MetadataT, Request, RequestContext], Awaitable[Response]]


@dataclass(frozen=True)
class KubemqTargetsReply:
    """What kubemq-targets sends on success for a method it has: ``result`` plus these metadata keys, and data or not.

    The ``kubemq-targets`` reply style trims a reply to this, so it is byte for
    byte what kubemq-targets sends; the ``extended`` style keeps everything.
    """

    metadata: tuple[str, ...] = ()
    data: bool = True

    def trim(self, response: Response) -> Response:
        kept = {"result", *self.metadata}
        return Response(metadata={key: value for key, value in response.metadata.items() if key in kept}, data=response.data if self.data else None)


@dataclass(frozen=True, kw_only=True)
class Method(Generic[MetadataT]):
    """One operation, declared once: its name, its metadata declaration and its handler, checked against each other by mypy.

    ``read_only`` operations change nothing, so they may be cancelled when
    the sender gives up; writes always run to the end. ``kubemq_targets`` is
    set for the operations kubemq-targets has too: how it answers them. A
    success of a method it lacks is the same in every style; errors follow the
    style for every method. A target kind may extend the declaration with
    what its own machinery needs (the S3 target: what a request reaches).
    """

    name: str
    metadata: type[MetadataT]
    handler: MethodHandler[MetadataT]
    summary: str
    read_only: bool = False
    kubemq_targets: KubemqTargetsReply | None = None

    def styled(self, response: Response, style: ReplyStyle) -> Response:
        """``response`` as this reply style sends it."""
        if style == KUBEMQ_TARGETS and self.kubemq_targets is not None:
            return self.kubemq_targets.trim(response)
        return response


@dataclass(frozen=True, slots=True)
class Call:
    """A request resolved by its target: the operation, its parsed metadata, the request itself.

    ``read_only`` operations change nothing, so they may be cancelled once the
    sender gives up; writes always run to the end.
    """

    request: Request
    method: Method[Any]
    metadata: Any

    @property
    def name(self) -> str:
        return self.method.name

    @property
    def read_only(self) -> bool:
        return self.method.read_only

    async def run(self, owner: Any, context: RequestContext) -> Response:
        """Run the method's handler on ``owner`` (what the target hands its handlers)."""
        return await self.method.handler(owner, self.metadata, self.request, context)


# What the middleware chain is made of: each layer handles a resolved call.
CallHandler = Callable[[Call, RequestContext], Awaitable[Response]]


class MethodTable:
    """The explicit list of a target's operations, in a stable order.

    Registration order is the order shown to users (in errors and docs), so
    list compatibility methods first and additions after them.
    """

    def __init__(self, methods: Iterable[Method[Any]] = ()) -> None:
        self._methods: dict[str, Method[Any]] = {}
        for method in methods:
            self.add(method)

    def add(self, method: Method[Any]) -> None:
        """Register a declared method, after those already there."""
        if method.name in self._methods:
            raise ValueError(f"method {method.name!r} registered twice")
        self._methods[method.name] = method

    def method(self, name: str, metadata: type[MetadataT], summary: str, *, read_only: bool = False) -> Callable[[MethodHandler[MetadataT]], MethodHandler[MetadataT]]:
        """Decorator declaring ``handler(owner, metadata, request, context)`` as the method ``name`` (for small targets)."""

        def register(handler: MethodHandler[MetadataT]) -> MethodHandler[MetadataT]:
            self.add(Method(name=name, metadata=metadata, handler=handler, summary=summary, read_only=read_only))
            return handler

        return register

    def __iter__(self) -> Iterator[Method[Any]]:
        return iter(self._methods.values())

    def __getitem__(self, name: str) -> Method[Any]:
        return self._methods[name]

    def resolve(self, request: Request, defaults: Mapping[str, str] | None = None, style: ReplyStyle = KUBEMQ_TARGETS) -> Call:
        """Find the request's method and parse its metadata, or say exactly what is wrong.

        ``defaults`` fill metadata keys the request leaves out (a target-level
        default bucket, for instance); the request always wins. In the
        ``kubemq-targets`` style a refusal is worded as kubemq-targets words it
        (its first problem only); ``extended`` names every problem and suggests a fix.
        """
        name = request.metadata.get(METHOD_KEY, "")
        method = self._methods.get(name)
        if method is None:
            raise InvalidRequestError(self._unknown_method(name, style))
        # A key sent empty counts as not sent, so it does not hide a default either.
        values: dict[str, str] = {**(defaults or {}), **{k: v for k, v in request.metadata.items() if v != ""}}
        try:
            return Call(request, method, method.metadata.model_validate(values))
        except ValidationError as exc:
            problems = _describe(exc, method, hints=style != KUBEMQ_TARGETS)
            raise InvalidRequestError(problems[0] if style == KUBEMQ_TARGETS else "; ".join(problems)) from None

    def _unknown_method(self, name: str, style: ReplyStyle) -> str:
        """kubemq-targets' list of its own methods (all of them for a target it lacks); ``extended``: every method and a suggestion."""
        if style == KUBEMQ_TARGETS:
            listed = [method.name for method in self._methods.values() if method.kubemq_targets is not None] or list(self._methods)
            return INVALID_METHOD + "".join(f" :{method}," for method in listed)
        message = f"{INVALID_METHOD} " + ", ".join(self._methods)
        hint = did_you_mean(name, self._methods)
        return f"{message}; {hint}" if hint else message


def _describe(exc: ValidationError, method: Method[Any], *, hints: bool) -> list[str]:
    """Each problem in declaration order: kubemq-targets' wording for a missing key, else the key and the reason."""
    parts = []
    for error in exc.errors(include_url=False):
        key = ".".join(str(p) for p in error["loc"])
        reason = value_message(error).removeprefix("Value error, ")
        if error["type"] == "missing":
            hint = method.metadata.missing_hint(key) if hints else ""
            message = method.metadata.missing_message(key, method.name)
            parts.append(f"{message} ({hint})" if hint else message)
        elif key:
            parts.append(f"error parsing {key}, {reason}")
        else:  # a check across several keys names them itself
            parts.append(reason)
    return parts
