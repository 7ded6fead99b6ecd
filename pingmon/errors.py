"""The closed set of error classes a check can end in, and pingmon's own exceptions.

Exception tree::

    PingmonError
    +-- ConfigError        a configuration file was refused; carries one Problem per fault
    +-- TransportError     an HTTP attempt failed before a complete response (has an ErrorClass)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class ErrorClass(StrEnum):
    """Why a check failed; exactly one per check. Alert rules match on these values."""

    NONE = "none"
    TIMEOUT = "timeout"
    DNS = "dns"
    CONNECT = "connect"
    TLS = "tls"
    AUTH = "auth"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    CLIENT_ERROR = "client_error"
    SERVER_ERROR = "server_error"
    BAD_RESPONSE = "bad_response"

    @property
    def retryable(self) -> bool:
        """Whether an in-check retry may help (DESIGN.md: timeout, connect, server_error only)."""
        return self in _RETRYABLE


_RETRYABLE = frozenset({ErrorClass.TIMEOUT, ErrorClass.CONNECT, ErrorClass.SERVER_ERROR})


def status_error_class(status: int) -> ErrorClass | None:
    """The class an HTTP status implies on its own, or None for 2xx (the body decides)."""
    if 200 <= status < 300:
        return None
    special = {
        401: ErrorClass.AUTH,
        403: ErrorClass.FORBIDDEN,
        404: ErrorClass.NOT_FOUND,
        429: ErrorClass.RATE_LIMITED,
    }
    if status in special:
        return special[status]
    if status >= 500:
        return ErrorClass.SERVER_ERROR
    # 1xx, 3xx (redirects are never followed) and every other 4xx.
    return ErrorClass.CLIENT_ERROR


class PingmonError(Exception):
    """Base of every exception pingmon raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One fault in a configuration file, at a path such as ``targets[2].interval``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(PingmonError):
    """A configuration file was refused as a whole."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s)")

    def lines(self) -> list[str]:
        """One human line per problem, each naming the file and the path inside it."""
        return [f"{self.source}: {problem}" for problem in self.problems]


class TransportError(PingmonError):
    """An HTTP attempt ended without a complete response."""

    def __init__(self, error_class: ErrorClass, detail: str) -> None:
        self.error_class = error_class
        self.detail = detail
        super().__init__(f"{error_class}: {detail}")


class ResourceExhausted(TransportError):
    """pingmon's own process or host ran out of a resource for an attempt: file descriptors
    (EMFILE, ENFILE) or kernel memory (ENOBUFS, ENOMEM). Not the target's failure; a daemon
    skips the check (``Runner(on_exhausted=...)``), ``pingmon check`` reports ``connect``."""

    def __init__(self, errno_name: str, detail: str) -> None:
        super().__init__(ErrorClass.CONNECT, detail)
        self.errno_name = errno_name


def describe_exception(error: BaseException, limit: int = 200) -> str:
    """``Type: message`` of an exception nobody planned for, on one line and at most ``limit``
    characters: for a problem line or a log field, never a traceback."""
    message = " ".join(str(error).split())
    text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
