"""Any HTTP endpoint: method, path and headers per target, success as the target expects it."""

from __future__ import annotations

import functools
import re
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, PlainValidator, field_validator
from pydantic.json_schema import WithJsonSchema

from pingmon.errors import ErrorClass, status_error_class
from pingmon.fields import MAX_NESTING, NumbersNotBooleans, Secret
from pingmon.jsonvalue import JsonRefused
from pingmon.outbound import HeaderName, HeaderValue
from pingmon.providers.base import (
    HttpResponse,
    PreparedRequest,
    Provider,
    ProviderSettings,
    TargetParams,
    Verdict,
    body_json,
    body_text,
    body_verdict,
    short,
    shown,
    undecodable,
    url_join,
)

Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_STATUS_CLASS = re.compile(r"[1-5]xx", re.IGNORECASE)


def _status_entry(value: object) -> int | str:
    """A status code 100-599, or a class ``1xx``..``5xx`` (any case), kept as ``"2xx"``."""
    if isinstance(value, str) and _STATUS_CLASS.fullmatch(value.strip()):
        return value.strip().lower()
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
        return value
    raise ValueError("must be a status code from 100 to 599 or a class from 1xx to 5xx")


# One validator, so a bad entry is reported once at its own index (expect.status[1]).
StatusEntry = Annotated[
    int | str,
    PlainValidator(_status_entry),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 100, "maximum": 599},
                {"type": "string", "pattern": "^[1-5][xX][xX]$"},
            ]
        }
    ),
]


class HttpSettings(ProviderSettings):
    """A server and the headers every request to it carries; header values are secrets."""

    type: Literal["http"] = "http"
    base_url: str = Field(description="The server, e.g. https://status.example.com.")
    headers: dict[HeaderName, Secret] = Field(
        default_factory=dict, description="e.g. {Authorization: {env: STATUS_TOKEN}}."
    )


def _only_200() -> list[int | str]:
    return [200]


class Expect(NumbersNotBooleans):
    """What counts as success; every listed status or class passes, a non-2xx one included."""

    # The attribute is json_subset: a field named json would shadow BaseModel.json.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    status: list[StatusEntry] = Field(
        default_factory=_only_200,
        min_length=1,
        description="Codes (200) and classes (2xx) that pass, e.g. [200, 3xx].",
    )
    json_subset: dict[str, Any] | None = Field(
        default=None,
        alias="json",
        description="A subset the JSON body must contain (objects recursively, others equal).",
    )
    body_regex: str | None = Field(
        default=None, description="A regular expression searched for in the decoded body."
    )

    def __hash__(self) -> int:
        # Equal models have equal status and body_regex (json_subset, a dict, is left out).
        # Hashable, the default ``Expect()`` is shared by every target that sets none, as
        # pydantic shares hashable defaults; unhashable (a frozen model's own hash covers
        # the status list), it was deep-copied for each one: 3/4 of validating a target.
        return hash((tuple(self.status), self.body_regex))

    def passes(self, status: int) -> bool:
        """Whether ``status`` is listed, itself or by its class."""
        return status in self.status or f"{status // 100}xx" in self.status

    @field_validator("json_subset")
    @classmethod
    def _not_too_deep(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # The file's nesting is bounded when it is parsed; this bounds the model whatever
        # built it (an environment variable, a test), so subset_mismatch never recurses past it.
        if value is not None and json_depth(value, MAX_NESTING) > MAX_NESTING:
            raise ValueError(f"nested more than {MAX_NESTING} levels deep")
        return value

    @field_validator("body_regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"is not a valid regular expression: {error}") from None
        return value


class HttpParams(TargetParams):
    """The request a target sends and what it expects back."""

    method: Method = "GET"
    path: str = Field(default="/", description="Appended to base_url; may carry a query.")
    headers: dict[HeaderName, HeaderValue] = Field(
        default_factory=dict, description="Not secret; per target."
    )
    body: str | None = None
    expect: Expect = Expect()

    @field_validator("path")
    @classmethod
    def _is_absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with /")
        return value


class HttpProvider(Provider[HttpSettings, HttpParams]):
    """Success is an expected status and, when asked for, a JSON subset and a regex match."""

    type_name = "http"
    settings_model = HttpSettings
    params_model = HttpParams
    check_ids = False  # its requests carry no check id

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass that builds its requests itself reads its check ids as any type does
        (``Provider.check_ids``), unless it says otherwise: ``False`` is this class's
        ``request``'s, not an inheritance."""
        super().__init_subclass__(**kwargs)
        if "request" in vars(cls) and "check_ids" not in vars(cls):
            cls.check_ids = True

    def __init__(self, settings: HttpSettings) -> None:
        super().__init__(settings)
        # Each target's request, by its params' id (the params kept, so an id is never
        # reused while its entry lives): this provider sends no check id, so a target's
        # request is the same at every check. Settings and params are frozen.
        self._requests: dict[int, tuple[HttpParams, PreparedRequest]] = {}

    def request(self, params: HttpParams, check_id: str) -> PreparedRequest:
        kept = self._requests.get(id(params))
        if kept is not None and kept[0] is params:
            return kept[1]
        request = self._build(params)
        self._requests[id(params)] = (params, request)
        return request

    def _build(self, params: HttpParams) -> PreparedRequest:
        headers = {name: secret.reveal() for name, secret in self.settings.headers.items()}
        for name, value in params.headers.items():
            # The target's header wins over the provider's, whatever the spelling's case.
            for existing in [key for key in headers if key.lower() == name.lower()]:
                del headers[existing]
            headers[name] = value
        return PreparedRequest(
            method=params.method,
            url=url_join(self.settings.base_url, params.path),
            headers=headers,
            body=params.body.encode("utf-8") if params.body is not None else None,
        )

    def judge(
        self, params: HttpParams, request: PreparedRequest, response: HttpResponse
    ) -> Verdict:
        return _judge(params.expect, response)

    def assess(
        self, params: HttpParams, request: PreparedRequest, response: HttpResponse
    ) -> Verdict:
        """``Provider.assess``, without checking the verdicts of this class's own ``judge``
        (every one a ``Verdict`` of an ``ErrorClass`` and a str, made here). A judge put in
        its place (a subclass's, or one set on the class later or on this provider) is
        called and checked."""
        if type(self).judge is _HTTP_JUDGE and "judge" not in self.__dict__:
            return _judge(params.expect, response)
        return super().assess(params, request, response)


_HTTP_JUDGE = HttpProvider.judge  # the class's own, as defined here


def _judge(expect: Expect, response: HttpResponse) -> Verdict:
    status = response.status
    if not expect.passes(status):
        # A 2xx the target did not ask for is a wrong answer, not a transport fault.
        error_class = status_error_class(status) or ErrorClass.BAD_RESPONSE
        wanted = ", ".join(str(entry) for entry in expect.status)
        return Verdict(error_class, short(f"HTTP {status}, expected {wanted}"))
    if (unreadable := body_verdict(response)) is not None:
        return unreadable
    if expect.json_subset is not None:
        failure = _json_failure(expect.json_subset, response)
        if failure is not None:
            return Verdict(ErrorClass.BAD_RESPONSE, short(failure))
    if expect.body_regex is not None:
        failure = _regex_failure(expect.body_regex, response)
        if failure is not None:
            return Verdict(ErrorClass.BAD_RESPONSE, short(failure))
    return _success(status)


@functools.lru_cache(maxsize=64)
def _success(status: int) -> Verdict:
    """A success's verdict (frozen, so one per status is shared by every check)."""
    return Verdict(ErrorClass.NONE, f"HTTP {status}")


def _json_failure(expected: dict[str, Any], response: HttpResponse) -> str | None:
    """Why the body is not JSON holding ``expected`` (``parse_body_json``'s problem, or
    ``subset_mismatch``'s place and reason); None when it is."""
    try:
        value = body_json(response)
    except JsonRefused as refused:
        return refused.problem
    mismatch = subset_mismatch(expected, value)
    return None if mismatch is None else f"json mismatch at {mismatch}"


def _regex_failure(pattern: str, response: HttpResponse) -> str | None:
    """Why the body, decoded with its declared charset, does not match; None if it does."""
    text = body_text(response)
    if text is None:
        return undecodable(response)
    return None if re.search(pattern, text) else f"body does not match {pattern!r}"


def subset_mismatch(expected: object, actual: object, path: str = "") -> str | None:
    """Where ``actual`` fails to contain ``expected``, as ``a.b: reason``; None if it does.

    Objects match when every expected key is present and matches; lists and scalars must
    be equal as JSON values. The walk follows ``expected`` (the configuration's, bounded
    at load), so a server's deep value never makes it recurse deeper; the reason quotes
    only short scalars of the server's value (``shown``), never an object. A match (every
    healthy check) is found by ``json_contains``, without making a path.
    """
    if json_contains(expected, actual):
        return None
    return _mismatch(expected, actual, path)


def json_contains(expected: object, actual: object) -> bool:
    """Whether ``actual`` contains ``expected`` (``subset_mismatch`` is None), as a bool."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return False
        for key, wanted in expected.items():
            if key not in actual:
                return False
            if type(wanted) is str:  # ``json_equal`` of a str, without its call
                if wanted != actual[key]:  # JSON values: ``not ==`` exactly
                    return False
            elif not json_contains(wanted, actual[key]):
                return False
        return True
    return json_equal(expected, actual)


def _mismatch(expected: object, actual: object, path: str) -> str | None:
    """``subset_mismatch``'s walk, its reasons made."""
    where = path or "(body)"
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{where}: expected an object, got {shown(actual)}"
        for key, wanted in expected.items():
            key_path = f"{path}.{key}" if path else str(key)
            if key not in actual:
                return f"{key_path}: missing"
            mismatch = _mismatch(wanted, actual[key], key_path)
            if mismatch is not None:
                return mismatch
        return None
    if json_equal(expected, actual):
        return None
    return f"{where}: expected {shown(expected)}, got {shown(actual)}"


def json_equal(left: object, right: object) -> bool:
    """Equality of JSON values: unlike Python, ``true`` is not ``1``.

    The recursion descends only where both sides are containers, so its depth is at most
    that of ``left`` (the expected value)."""
    if type(left) is str:  # the usual expectation: equal only to the same str
        return left == right
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(json_equal, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    return left == right


def json_depth(value: object, limit: int) -> int:
    """How deeply objects and arrays nest in ``value`` (a scalar is 0), counted no further
    than ``limit + 1``. Level by level over distinct objects, so a value that shares its
    parts (a YAML alias graph of 10^9 paths) costs its distinct objects, not its paths."""
    depth, level = 0, [value]
    while depth <= limit:
        distinct = {id(item): item for item in level if isinstance(item, dict | list)}
        if not distinct:
            break
        depth += 1
        level = [
            child
            for item in distinct.values()
            for child in (item.values() if isinstance(item, dict) else item)
        ]
    return depth


PROVIDER = HttpProvider
