"""Value types shared by the configuration models: durations, rates and secret references."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    SecretStr,
)
from pydantic.json_schema import JsonSchemaValue, WithJsonSchema
from pydantic_core import CoreSchema, core_schema

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PATTERN = r"^((\d+(\.\d+)?)(ms|s|m|h|d))+$"


def parse_duration(value: object) -> float:
    """Seconds from a Prometheus-style duration (``500ms``, ``30s``, ``1h30m``) or a number."""
    if isinstance(value, bool):
        raise ValueError("must be a duration such as 500ms, 30s, 5m or 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value.strip()):
        seconds = float(value)  # a bare number is seconds, as in PINGMON_DEFAULTS__INTERVAL=30
    elif isinstance(value, str) and value.strip().startswith("-"):
        seconds = -1.0  # refused below with the message about sign, not about syntax
    elif isinstance(value, str) and re.fullmatch(_DURATION_PATTERN, value.strip()):
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
    return seconds


def format_duration(seconds: float) -> str:
    """A short duration string for a number of seconds, for messages (90m, 5s, 500ms)."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    for unit, size in (("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": _DURATION_PATTERN},
                {"type": "number", "exclusiveMinimum": 0},
            ],
            "description": "A duration: 500ms, 30s, 5m, 1h (or a number of seconds).",
        }
    ),
]

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(ms|s|m|h)\s*$")


def parse_rate(value: object) -> float:
    """Requests per second from ``5/s``, ``100/m`` or ``1000/h``."""
    match = _RATE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{value!r} is not a rate; use a form such as 5/s, 100/m or 1000/h")
    per_second = float(match.group(1)) / _DURATION_UNITS[match.group(2)]
    if per_second <= 0:
        raise ValueError("must be a positive rate")
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
            if not reference:
                raise ValueError("is empty")
            return cls(reference, "literal")
        if not isinstance(reference, dict) or len(reference) != 1:
            raise ValueError("must be {env: NAME} or {file: PATH} (or a literal string)")
        ((kind, location),) = reference.items()
        if kind not in ("env", "file") or not isinstance(location, str) or not location:
            raise ValueError("must be {env: NAME} or {file: PATH} (or a literal string)")
        if kind == "env":
            value = os.environ.get(location)
            if value is None:
                raise ValueError(f"environment variable {location} is not set")
        else:
            try:
                value = Path(location).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as error:
                raise ValueError(f"cannot read secret file {location}: {error.strerror}") from None
        if not value:
            what = "environment variable" if kind == "env" else "secret file"
            raise ValueError(f"{what} {location} is empty")
        return cls(value, f"{kind}:{location}")

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


def secrets_in(value: object) -> tuple[Secret, ...]:
    """Every Secret held by a model, its nested models, mappings and sequences."""
    if isinstance(value, Secret):
        return (value,)
    if isinstance(value, BaseModel):
        items: Iterable[object] = (getattr(value, name) for name in type(value).model_fields)
    elif isinstance(value, Mapping):
        items = value.values()
    elif isinstance(value, list | tuple):
        items = value
    else:
        return ()
    return tuple(secret for item in items for secret in secrets_in(item))
