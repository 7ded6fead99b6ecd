"""Pydantic's validation errors as configuration problems: one line each, naming its path."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from pingmon.errors import Problem
from pingmon.fields import NotANumber
from pingmon.providers import PROVIDER_TYPES

UNKNOWN_KEY = "unknown key (refused so that a typo never silently changes a check)"


def validation_problems(error: ValidationError, prefix: tuple[Any, ...] = ()) -> list[Problem]:
    """One Problem per error; ``prefix`` places errors of a nested model (``targets[2]``)."""
    return detail_problems(error.errors(include_url=False), prefix)


def detail_problems(
    details: Iterable[ErrorDetails], prefix: tuple[Any, ...] = ()
) -> list[Problem]:
    """``validation_problems`` of errors gathered from several models' ValidationErrors."""
    return [Problem(_path(prefix + tuple(detail["loc"])), _message(detail)) for detail in details]


def _path(loc: Sequence[Any]) -> str:
    parts: list[str] = []
    for position, item in enumerate(loc):
        if item == "[key]":
            continue  # a mapping's key was refused: the path ends at the key, the message says so
        if isinstance(item, int):
            parts.append(f"[{item}]")
            continue
        # A discriminated union puts the tag into the location: providers.NAME.<type>.field
        if position == 2 and loc[0] == "providers" and item in PROVIDER_TYPES:
            continue
        parts.append(f".{item}" if parts else str(item))
    return "".join(parts)


def _message(detail: Mapping[str, Any]) -> str:
    kind = detail["type"]
    if isinstance(detail.get("input"), NotANumber):
        return "must be a number, not true or false"
    if kind == "extra_forbidden":
        return UNKNOWN_KEY
    if kind == "missing":
        return "is required"
    if kind == "union_tag_invalid":
        known = ", ".join(PROVIDER_TYPES)
        return f"unknown provider type {detail['input'].get('type')!r}; known types: {known}"
    if kind == "union_tag_not_found":
        return f"type is required; one of: {', '.join(PROVIDER_TYPES)}"
    message = str(detail["msg"])
    return re.sub(r"^(Value error|Assertion failed), ", "", message)
