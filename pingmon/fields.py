"""Value types shared by the configuration models: durations, rates and secret references."""

from __future__ import annotations

import math
import os
import re
import types
from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainValidator,
    SecretStr,
    WrapValidator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue, WithJsonSchema
from pydantic_core import CoreSchema, core_schema

from pingmon.files import FileRefused, read_bounded

# re.ASCII: Python's \d also matches Arabic-Indic and other Unicode digits (float() reads
# them too), while the schema's patterns (ECMA-262) and every other tool take ASCII only.
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", re.ASCII)
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PATTERN = r"^((\d+(\.\d+)?)(ms|s|m|h|d))+$"
# The longest duration any setting takes: far above any sensible interval, timeout or back-off,
# and far below what the scheduler's datetime arithmetic can hold.
MAX_DURATION_SECONDS = 7 * 86400.0
MAX_DURATION_TEXT = "7d"
# The shortest: the unit the syntax names last. Below it a timer cannot tell runs apart
# (APScheduler's datetimes hold microseconds; 1e-9 s is no interval at all) and no request
# can answer within it.
MIN_DURATION_SECONDS = 0.001
MIN_DURATION_TEXT = "1ms"
# How deeply a configuration value may nest: the YAML file as a whole, and JSON given through
# an environment variable. A health check's JSON subset is rarely 10 levels deep.
MAX_NESTING = 64
# A secret file is read up to this many bytes: the longest credential (a PEM key) fits many times.
MAX_SECRET_FILE_BYTES = 65_536
# C0 controls and DEL: in a header value they are refused by aiohttp (RFC 9110 5.5); in a
# secret they are the rest of a file or a paste accident, so every secret is refused with one.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A lone surrogate: what Python makes of an environment variable's bytes that are not UTF-8
# (surrogateescape). No header, no log line and no percent-encoding can carry it.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_CONTROL_NAMES = {"\n": "line feed", "\r": "carriage return", "\t": "tab", "\x00": "NUL"}


def parse_duration(value: object) -> float:
    """Seconds from a Prometheus-style duration (``500ms``, ``30s``, ``1h30m``) or a number."""
    if isinstance(value, bool):
        raise ValueError("must be a duration such as 500ms, 30s, 5m or 1h")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an int past a float's range (YAML reads 400 digits as one)
            seconds = math.inf if value > 0 else -math.inf
    elif isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value.strip(), re.ASCII):
        seconds = float(value)  # a bare number is seconds, as in PINGMON_DEFAULTS__INTERVAL=30
    elif isinstance(value, str) and value.strip().startswith("-"):
        seconds = -1.0  # refused below with the message about sign, not about syntax
    elif isinstance(value, str) and re.fullmatch(_DURATION_PATTERN, value.strip(), re.ASCII):
        seconds = sum(
            float(number) * _DURATION_UNITS[unit]
            for number, unit in _DURATION_PART.findall(value.strip())
        )
    else:
        raise ValueError(f"{value!r} is not a duration; use a form such as 500ms, 30s, 5m or 1h")
    if not seconds > 0:  # also refuses NaN (YAML .nan)
        raise ValueError("must be a positive duration")
    if math.isinf(seconds):
        raise ValueError("must be a finite duration")
    given = value.strip() if isinstance(value, str) else f"{seconds:g}s"
    if seconds < MIN_DURATION_SECONDS:
        raise ValueError(
            f"{given} is shorter than {MIN_DURATION_TEXT}, the shortest duration pingmon accepts"
        )
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(
            f"{given} is longer than {MAX_DURATION_TEXT}, the longest duration pingmon accepts"
        )
    return seconds


def format_duration(seconds: float) -> str:
    """A short duration string for a number of seconds, for messages (90m, 5s, 500ms)."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    for unit, size in (("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _duration_schema(numbers: list[dict[str, object]], description: str) -> WithJsonSchema:
    """The JSON Schema of a duration field: the text form, or the ``numbers`` (seconds)."""
    string = {"type": "string", "pattern": _DURATION_PATTERN}
    return WithJsonSchema({"anyOf": [string, *numbers], "description": description})


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    _duration_schema(
        [{"type": "number", "minimum": MIN_DURATION_SECONDS, "maximum": MAX_DURATION_SECONDS}],
        "A duration: 500ms, 30s, 5m, 1h (or a number of seconds), from 1ms to 7d.",
    ),
]

# The longest timer slack: every run may start this much late (Settings.timer_slack).
MAX_TIMER_SLACK_SECONDS = 1.0
MAX_TIMER_SLACK_TEXT = "1s"


def parse_slack(value: object) -> float:
    """Seconds of timer slack: 0 (``0``, ``0s``, ``0ms``: none) or a duration up to
    ``MAX_TIMER_SLACK_TEXT``; ValueError says which bound or syntax it misses."""
    if _is_zero(value):
        return 0.0
    negative = isinstance(value, str) and value.strip().startswith("-")
    if negative or (isinstance(value, int | float) and not isinstance(value, bool) and value < 0):
        raise ValueError("must be 0 (no slack) or a positive duration")
    seconds = parse_duration(value)
    if seconds > MAX_TIMER_SLACK_SECONDS:
        given = value.strip() if isinstance(value, str) else f"{value!r}s"  # as written
        raise ValueError(
            f"{given} is longer than {MAX_TIMER_SLACK_TEXT}, the longest timer slack pingmon "
            "accepts (every run may start that much late)"
        )
    return seconds


def _is_zero(value: object) -> bool:
    """0, 0.0, ``"0"``, ``"0s"``, ``"0ms"`` (every part of the duration zero)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return value == 0
    if not isinstance(value, str):
        return False
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text, re.ASCII):
        return float(text) == 0
    return bool(re.fullmatch(_DURATION_PATTERN, text, re.ASCII)) and all(
        float(number) == 0 for number, _ in _DURATION_PART.findall(text)
    )


# A timer slack: 0 or a duration up to MAX_TIMER_SLACK_TEXT.
Slack = Annotated[
    float,
    BeforeValidator(parse_slack),
    _duration_schema(
        [
            {"type": "number", "const": 0},
            {
                "type": "number",
                "minimum": MIN_DURATION_SECONDS,
                "maximum": MAX_TIMER_SLACK_SECONDS,
            },
        ],
        "A duration: 0 (none), 5ms, 10ms, 1s (or a number of seconds), from "
        f"{MIN_DURATION_TEXT} to {MAX_TIMER_SLACK_TEXT}, or 0.",
    ),
]

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(ms|s|m|h)\s*$", re.ASCII)


def parse_rate(value: object) -> float:
    """Requests per second from ``5/s``, ``100/m`` or ``1000/h``."""
    match = _RATE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{value!r} is not a rate; use a form such as 5/s, 100/m or 1000/h")
    per_second = float(match.group(1)) / _DURATION_UNITS[match.group(2)]
    if per_second <= 0:
        raise ValueError("must be a positive rate")
    if per_second * MAX_DURATION_SECONDS < 1:
        # A check waits for its request's turn: slower than this, one would wait past 7d
        # (`pingmon check` of two targets sharing it would not end).
        raise ValueError(
            f"allows less than one request per {MAX_DURATION_TEXT}, the longest wait "
            "pingmon accepts"
        )
    return per_second


RatePerSecond = Annotated[
    float,
    BeforeValidator(parse_rate),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\d+(\.\d+)?/(ms|s|m|h)$",
            "description": "A request budget: 5/s, 100/m, 1000/h.",
        }
    ),
]


class Secret:
    """A credential resolved from ``{env: NAME}``, ``{file: PATH}`` or (discouraged) a literal.

    The value is held as a SecretStr; ``repr`` and ``str`` show only where it came from.
    """

    __slots__ = ("source", "value")

    def __init__(self, value: str, source: str) -> None:
        self.value = SecretStr(value)
        self.source = source

    @property
    def is_literal(self) -> bool:
        return self.source == "literal"

    @property
    def file(self) -> str | None:
        """The path a ``{file: PATH}`` secret was read from (watched for rotation), else None."""
        kind, _, location = self.source.partition(":")
        return location if kind == "file" else None

    def reveal(self) -> str:
        """The secret itself: only for building a request header."""
        return self.value.get_secret_value()

    def __repr__(self) -> str:
        return f"Secret({self.source})"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Secret)
            and other.source == self.source
            and other.reveal() == self.reveal()
        )

    def __hash__(self) -> int:
        return hash((self.source, self.reveal()))

    @classmethod
    def resolve(cls, reference: object) -> Secret:
        """Read the secret a reference points at; raise ValueError saying what to fix."""
        if isinstance(reference, Secret):
            return reference
        if isinstance(reference, str):
            return cls(_one_line(reference, ""), "literal")
        if not isinstance(reference, dict) or len(reference) != 1:
            raise ValueError("must be {env: NAME} or {file: PATH} (or a literal string)")
        ((kind, location),) = reference.items()
        if kind not in ("env", "file") or not isinstance(location, str) or not location:
            raise ValueError("must be {env: NAME} or {file: PATH} (or a literal string)")
        what = f"environment variable {location}" if kind == "env" else f"secret file {location}"
        if kind == "env":
            value = os.environ.get(location)
            if value is None:
                raise ValueError(f"{what} is not set")
        else:
            value = _read_secret_file(location)
        return cls(_one_line(value, what), f"{kind}:{location}")

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source_type: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls.resolve,
            serialization=core_schema.plain_serializer_function_ser_schema(repr),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {"env": {"type": "string"}},
                    "required": ["env"],
                    "additionalProperties": False,
                },
                {
                    "type": "object",
                    "properties": {"file": {"type": "string"}},
                    "required": ["file"],
                    "additionalProperties": False,
                },
                {"type": "string", "description": "a literal secret (accepted with a warning)"},
            ],
            "description": "A secret: {env: NAME} or {file: PATH}.",
        }


def _read_secret_file(location: str) -> str:
    try:
        content = read_bounded(location, MAX_SECRET_FILE_BYTES)
    except FileRefused as refused:
        raise ValueError(f"cannot read secret file {location}: {refused.reason}") from None
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"secret file {location} is not UTF-8 text") from None


def _one_line(value: str, what: str) -> str:
    """The secret without one trailing newline (LF or CRLF), as every source stores it
    (``echo``, ``kubectl create secret --from-file``); ValueError when what is left is empty
    or holds a control character. The message names the character, never the value;
    ``what`` names the source ("secret file PATH"), empty for a literal."""
    subject = f"{what} " if what else ""
    if _SURROGATE.search(value):  # bytes that are not UTF-8, as os.environ decodes them
        raise ValueError(f"{subject}is not UTF-8 text")
    value = value.removesuffix("\n").removesuffix("\r") if value.endswith("\n") else value
    if not value:
        raise ValueError(f"{subject}is empty")
    control = _CONTROL.search(value)
    if control is not None:
        raise ValueError(
            f"{subject}holds a control character ({control_name(control.group())}); "
            "a secret is one line of text (one trailing newline is dropped)"
        )
    return value


def control_name(char: str) -> str:
    """A control character as ``U+000A line feed``: named, since it cannot be shown."""
    name = _CONTROL_NAMES.get(char)
    return f"U+{ord(char):04X}" + (f" {name}" if name else "")


def secrets_in(model: BaseModel) -> tuple[Secret, ...]:
    """Every Secret a model holds, following only the fields whose type can hold one.

    Free-form values (an http target's ``expect.json``) are never walked: their size is the
    file's, not the model's, and a YAML alias can make them a graph of 10^9 paths.
    """
    found: list[Secret] = []
    for name in _secret_fields(type(model)):
        _collect(getattr(model, name), found)
    return tuple(found)


def _collect(value: object, found: list[Secret]) -> None:
    """Secrets in a value of a secret-holding field: typed containers of Secrets and models."""
    if isinstance(value, Secret):
        found.append(value)
    elif isinstance(value, BaseModel):
        found.extend(secrets_in(value))
    elif isinstance(value, Mapping):
        for item in value.values():
            _collect(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(item, found)


@cache
def _secret_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The names of the fields whose declared type can hold a Secret."""
    return tuple(
        name
        for name, field in model.model_fields.items()
        if _can_hold_secret(field.annotation, frozenset({model}))
    )


def _can_hold_secret(annotation: object, seen: frozenset[type[BaseModel]]) -> bool:
    if annotation is Secret:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return False
        inner = seen | {annotation}
        return any(_can_hold_secret(f.annotation, inner) for f in annotation.model_fields.values())
    return any(_can_hold_secret(argument, seen) for argument in get_args(annotation))


class NotANumber:
    """YAML's true or false where a number goes, as a number field's validator sees it: no
    int, float or str, so the field refuses it (``pingmon.problems`` words the refusal)."""

    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)


class NumbersNotBooleans(BaseModel):
    """A configuration model whose number fields refuse YAML's true and false.

    pydantic reads True as 1 and False as 0 for an int or a float field: ``retries: yes``
    would be one retry, ``max_body_bytes: true`` a 1-byte limit, ``jitter: off`` none, each
    silently. Every model of the file (and every provider type's, a plugin's included)
    subclasses this, so a boolean where a number goes is refused at its path."""

    @model_validator(mode="before")
    @classmethod
    def _booleans_are_not_numbers(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        numbers = _number_fields(cls)
        if not any(isinstance(value, bool) and key in numbers for key, value in data.items()):
            return data
        return {
            key: NotANumber(value) if isinstance(value, bool) and key in numbers else value
            for key, value in data.items()
        }


@cache
def _number_fields(model: type[BaseModel]) -> frozenset[str]:
    """The fields pydantic reads as an int or a float (optional or constrained) itself; a
    type with a validator of its own (Duration, RatePerSecond) judges booleans itself."""
    return frozenset(
        key
        for name, field in model.model_fields.items()
        if _is_number(field.annotation)
        for key in (name, field.alias)
        if key is not None
    )


def _is_number(annotation: object) -> bool:
    if annotation in (int, float):
        return True
    origin = get_origin(annotation)
    if origin is Annotated:
        own = (BeforeValidator, PlainValidator, WrapValidator)
        number, *metadata = get_args(annotation)
        return _is_number(number) and not any(isinstance(m, own) for m in metadata)
    if origin in (Union, types.UnionType):
        return any(_is_number(argument) for argument in get_args(annotation))
    return False
