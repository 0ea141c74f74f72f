"""Exception hierarchy of the binding engine.

Two families, because they end in different places:

* ``ConfigError``: something is wrong with ``config.yaml``. It is raised at start
  or on reload and refuses the config; it never reaches a sender.
* ``RequestError``: one request failed. The engine turns it into an error reply
  (``is_error: true``) and never lets it end a subscription. ``retryable`` tells
  the retry middleware whether trying again can possibly succeed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


class BindingsError(Exception):
    """Base of every error the engine raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a config file: where (dotted path, line, binding) and what."""

    location: str
    message: str
    line: int | None = None
    binding: str | None = None

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}" if self.location else self.message
        if self.line:
            text = f"line {self.line}: {text}"
        if self.binding:
            text += f" (binding {self.binding!r})"
        return text

    def at(self, line: int | None, binding: str | None) -> ConfigProblem:
        return replace(self, line=self.line or line, binding=self.binding or binding)


class ConfigError(BindingsError):
    """A config was refused; ``problems`` lists every reason, not only the first."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class RequestError(BindingsError):
    """A single request failed; the sender gets ``str(error)`` in the reply.

    ``earlier_attempts`` holds the texts of the attempts that failed before
    this one, when the retry middleware tried more than once: kubemq-targets
    lists every attempt in its reply, and the ``kubemq-targets`` reply style does too.
    """

    retryable: bool = False
    earlier_attempts: tuple[str, ...] = ()


class InvalidRequestError(RequestError):
    """The request itself is wrong (body, metadata, method): retrying cannot help."""


class TargetError(RequestError):
    """The target's backend refused or failed the operation.

    ``code`` is the backend's own error code (``NoSuchKey``, ``SlowDown`` ...) and
    ``status`` its HTTP status when there is one; both stay in the message so a
    sender can branch on them without a second field in the wire format.
    """

    def __init__(self, message: str, *, code: str = "", status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.retryable = retryable


class RequestTimeoutError(RequestError):
    """The request ran past its deadline; a later attempt may succeed."""

    retryable = True


def describe(error: BaseException) -> str:
    """``Type: message`` of an unexpected exception, for a reply or a log line; never empty."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
