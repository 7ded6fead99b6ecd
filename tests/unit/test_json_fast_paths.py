"""The judging fast paths against the straightforward versions they replaced, on random
inputs: ``json_contains`` / ``json_equal`` (record5's str fast path) against the walk that
makes the reason, and ``parse_json`` against ``json.loads`` with the duplicate-key hook."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings, strategies as st

from pingmon.jsonvalue import parse_json
from pingmon.providers.http import json_contains, json_equal, subset_mismatch
from tests.unit.test_provider_http import straightforward_equal

KEYS = st.sampled_from(["a", "b", "é", "\u2603", "", "1", "true"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-2, max_value=2),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([0.0, -0.0, 1.0, 2.0, 1.5, math.nan, math.inf, -math.inf]),
    st.sampled_from(["", "a", "1", "true", "é", "\u2603", "\x00"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=12,
)


def old_contains(expected: object, actual: object) -> bool:
    """Subset match as the walk that makes the reason decided it before (e44ee88)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and old_contains(wanted, actual[key]) for key, wanted in expected.items()
        )
    return straightforward_equal(expected, actual)


@settings(max_examples=1500, deadline=None)
@given(VALUES, VALUES)
def test_json_equal_and_contains_agree_with_the_straightforward_walk(
    left: Any, right: Any
) -> None:
    assert json_equal(left, right) is straightforward_equal(left, right)
    assert json_contains(left, right) is old_contains(left, right)
    assert (subset_mismatch(left, right) is None) is old_contains(left, right)
    # a value contains a copy of itself only when it holds no NaN (NaN != NaN, as before)
    assert json_contains(right, right) is old_contains(right, right)


@settings(max_examples=300, deadline=None)
@given(VALUES.filter(lambda v: isinstance(v, dict)), VALUES)
def test_a_subset_of_an_object_is_judged_as_before(expected: Any, extra: Any) -> None:
    actual = {**expected, "zzz-extra": extra}
    assert json_contains(expected, actual) is old_contains(expected, actual)


def strict_loads(text: str) -> Any:
    def refuse(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        if len({key for key, _ in pairs}) != len(pairs):
            raise ValueError("duplicate key")
        return dict(pairs)

    return json.loads(text, object_pairs_hook=refuse)


SPACE = st.text(alphabet=" \t\n\r\x0b\x0c\u00a0\u2028\ufeff\x00", max_size=3)
PIECES = st.sampled_from(
    [
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        '"a"',
        '"\\u00e9"',
        '"\x01"',
        "1",
        "-0",
        "1e5",
        "1.0",
        "true",
        "null",
        "NaN",
        "Infinity",
        "-Infinity",
        '"a":1',
        "\ufeff",
        "x",
        "",
    ]
)


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.one_of(PIECES, SPACE), max_size=8).map("".join))
def test_parse_json_agrees_with_json_loads(text: str) -> None:
    parsed = parse_json(text)
    try:
        expected = strict_loads(text)
    except (ValueError, RecursionError):
        assert parsed.problem is not None, text
    else:
        assert parsed.problem is None, text
        assert json.dumps(parsed.value) == json.dumps(expected), text


@settings(max_examples=500, deadline=None)
@given(VALUES, SPACE, SPACE)
def test_parse_json_of_a_dumped_value_between_white_space(
    value: Any, before: str, after: str
) -> None:
    text = before + json.dumps(value) + after
    test_parse_json_agrees_with_json_loads.hypothesis.inner_test(text)  # type: ignore[attr-defined]
