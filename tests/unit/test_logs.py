"""Log lines: every JSON line is strict JSON (RFC 8259), whatever numbers a field holds."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import pytest
from hypothesis import given, strategies as st

from pingmon.logs import JsonFormatter


def record(**fields: Any) -> logging.LogRecord:
    made = logging.makeLogRecord({"name": "pingmon.test", "levelname": "WARNING", "msg": "m"})
    for key, value in fields.items():
        setattr(made, key, value)
    return made


def strict_loads(line: str) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(line, parse_constant=refuse)


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_a_non_finite_field_is_logged_as_null(value: float) -> None:
    line = JsonFormatter().format(record(retry_after_seconds=value, backoff_seconds=900.0))

    entry = strict_loads(line)

    assert entry["retry_after_seconds"] is None
    assert entry["backoff_seconds"] == 900.0


def test_non_finite_numbers_inside_containers_are_null_too() -> None:
    line = JsonFormatter().format(
        record(delays={"a": math.inf, "b": 1.5}, samples=[math.nan, 2.0], pair=(math.inf, 1))
    )

    entry = strict_loads(line)

    assert entry["delays"] == {"a": None, "b": 1.5}
    assert entry["samples"] == [None, 2.0]
    assert entry["pair"] == [None, 1]


FIELD_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)


@given(st.dictionaries(st.from_regex(r"\Ax_[a-z]{1,6}\Z"), FIELD_VALUES, max_size=4))
def test_every_json_log_line_is_strict_json(fields: dict[str, Any]) -> None:
    strict_loads(JsonFormatter().format(record(**fields)))
