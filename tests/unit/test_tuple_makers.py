"""The named tuples made at every check through ``results.tuple_maker`` (a C call in place
of the class's Python ``__new__``) are the very ones the class makes: same type, fields,
equality, hash and ``repr``, on random fields; a record made with them is the one made
field by field."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings, strategies as st

from pingmon import client, exposition, results
from pingmon.errors import ErrorClass
from pingmon.families import TargetView
from pingmon.providers.base import HttpResponse
from pingmon.results import CheckResult, TargetInfo, TargetState, new_result

FLOATS = st.floats(allow_nan=False) | st.sampled_from([0.0, -0.0, math.inf, 1.5e9])
INFO = TargetInfo("t", "p", "http", 10.0, "c")
RESULTS = st.builds(
    CheckResult,
    st.sampled_from(["t", "orders", ""]),
    st.sampled_from(["p", "shop"]),
    st.sampled_from(list(ErrorClass)),
    st.none() | st.integers(100, 599),
    FLOATS,
    st.integers(0, 5),
    st.text(max_size=5),
    FLOATS,
    FLOATS,
    st.none() | st.text(max_size=5),
)


def same(made: tuple[Any, ...], expected: tuple[Any, ...]) -> None:
    assert type(made) is type(expected)
    assert made == expected
    assert tuple(made) == tuple(expected)
    assert repr(made) == repr(expected)
    assert made._asdict() == expected._asdict()  # type: ignore[attr-defined]


@settings(max_examples=300, deadline=None)
@given(RESULTS)
def test_a_result_made_by_its_maker_is_the_one_its_class_makes(result: CheckResult) -> None:
    same(new_result(tuple(result)), CheckResult(*result))
    assert new_result(tuple(result)).success is result.success


@settings(max_examples=300, deadline=None)
@given(st.lists(RESULTS.map(lambda r: r._replace(target="t")), max_size=6))
def test_a_state_recorded_is_the_one_made_field_by_field(recorded: list[CheckResult]) -> None:
    state = TargetState(INFO)
    for result in recorded:
        made = state.record(result)
        same(made, TargetState(*made))
        state = made
    assert state.checks_per_class[0] == sum(r.error_class is ErrorClass.NONE for r in recorded)
    assert state.attempts_total == sum(r.attempts for r in recorded)


@settings(max_examples=100, deadline=None)
@given(FLOATS, st.binary(max_size=4), st.booleans(), st.none() | st.text(max_size=4))
def test_a_view_and_an_answer_made_by_their_makers(
    backoff: float, body: bytes, truncated: bool, error: str | None
) -> None:
    state = TargetState(INFO)
    same(exposition._new_view((state, backoff)), TargetView(state, backoff))
    fields = (200, {"A": "b"}, body, truncated, error)
    same(client._new_response(fields), HttpResponse(*fields))
    assert results._new_state(tuple(state)) == state
