"""JSON from servers judged totally: deep nesting, duplicate keys, and values quoted only as
short scalars (issue 10 section 3)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, strategies as st

from pingmon.errors import ErrorClass
from pingmon.jsonvalue import parse_json, shown
from pingmon.providers.base import HttpResponse, Verdict, parse_body_json
from pingmon.providers.http import HttpParams, HttpProvider, HttpSettings, subset_mismatch
from pingmon.providers.ninepic import NinepicParams, NinepicProvider, NinepicSettings
from pingmon.providers.simotel import SimotelParams, SimotelProvider, SimotelSettings
from tests.unit import response
from tests.unit.test_provider_stripe import SEED_PONG, judge as judge_stripe, pong_with

DEEP = b"[" * 100_000 + b"]" * 100_000  # 200 kB, under max_body_bytes
PASSWORD = "pg-Pa55w0rd-in-a-dsn"
DSN_OBJECT = {"db": f"postgres://app:{PASSWORD}@db:5432/app", "ok": False}


def judge_ninepic(resp: HttpResponse) -> Verdict:
    provider = NinepicProvider(NinepicSettings(api_key="k"))
    params = NinepicParams(org_id=903, event_id=456)
    return provider.judge(params, provider.request(params, "c"), resp)


def judge_simotel(resp: HttpResponse) -> Verdict:
    settings = SimotelSettings(base_url="http://pbx", auth="token", api_key="k")
    provider = SimotelProvider(settings)
    params = SimotelParams()
    return provider.judge(params, provider.request(params, "c"), resp)


def judge_http(resp: HttpResponse, expect: dict[str, Any] | None = None) -> Verdict:
    provider = HttpProvider(HttpSettings(base_url="https://status.example.com"))
    params = HttpParams.model_validate({"expect": expect or {"json": {"status": "ok"}}})
    return provider.judge(params, provider.request(params, "c"), resp)


JUDGES: list[Any] = [
    pytest.param(judge_stripe, id="stripe"),
    pytest.param(judge_ninepic, id="ninepic"),
    pytest.param(judge_simotel, id="simotel"),
    pytest.param(judge_http, id="http"),
]

# --- deep nesting ----------------------------------------------------------------------------


def test_json_of_100000_nested_arrays_is_refused_not_raised() -> None:
    parsed = parse_body_json(response(200, DEEP))

    assert parsed.problem == "body is JSON nested too deeply"
    assert parsed.value is None


@pytest.mark.parametrize("judge", JUDGES)
def test_deeply_nested_json_on_a_200_is_bad_response(judge: Callable[..., Verdict]) -> None:
    verdict = judge(response(200, DEEP))

    assert verdict.error_class is ErrorClass.BAD_RESPONSE
    assert "nested too deeply" in verdict.detail


@pytest.mark.parametrize("judge", JUDGES)
def test_deeply_nested_json_on_a_500_keeps_the_status_class(judge: Callable[..., Verdict]) -> None:
    # Judges parse a non-2xx body only to enrich the detail: that path is total too.
    verdict = judge(response(500, DEEP))

    assert verdict.error_class is ErrorClass.SERVER_ERROR
    assert verdict.detail.startswith("HTTP 500")


@pytest.mark.parametrize("depth", [10, 500, 5_000, 50_000])
def test_parsing_json_of_any_depth_returns(depth: int) -> None:
    parsed = parse_json("[" * depth + "]" * depth)

    assert (parsed.problem is None) == (parsed.value is not None)


def test_a_deep_server_value_never_makes_the_subset_matcher_recurse() -> None:
    deep: list[Any] = []
    for _ in range(20_000):  # far deeper than the recursion limit; built without json
        deep = [deep]

    mismatch = subset_mismatch({"checks": [[[1]]]}, {"checks": deep})

    assert mismatch == "checks: expected an array of 1, got an array of 1"


@given(st.text(max_size=200))
def test_parsing_any_text_never_raises(text: str) -> None:
    parse_json(text)


@given(st.lists(st.sampled_from('[]{}":,0 a\\'), max_size=300).map("".join))
def test_parsing_bracket_soup_never_raises(text: str) -> None:
    parse_json(text)


JSON_SPACE = st.text(alphabet=" \t\n\r\u00a0\u2028", max_size=3)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=8,
)


def as_json_loads_says(text: str) -> tuple[str, Any]:
    """What ``json.loads`` makes of ``text``: ("value", it) or ("refused", None); a
    duplicate key counts as refused, as pingmon refuses it."""

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        if len({key for key, _ in pairs}) != len(pairs):
            raise ValueError("duplicate key")
        return dict(pairs)

    try:
        return "value", json.loads(text, object_pairs_hook=unique)
    except ValueError:
        return "refused", None


@given(
    before=JSON_SPACE,
    value=JSON_VALUES,
    after=JSON_SPACE,
    tail=st.sampled_from(["", "x", "1", "{}", ",", "]"]),
)
def test_a_value_between_white_space_parses_exactly_as_json_loads_says(
    before: str, value: object, after: str, tail: str
) -> None:
    """Only JSON's own white space (space, tab, LF, CR) may surround the value, and nothing
    else may follow it: as ``json.loads`` reads it, value for value."""
    text = before + json.dumps(value) + after + tail
    parsed = parse_json(text)
    kind, expected = as_json_loads_says(text)
    assert (parsed.problem is None) == (kind == "value")
    if kind == "value":
        assert json.dumps(parsed.value, sort_keys=True) == json.dumps(expected, sort_keys=True)


@given(st.lists(st.sampled_from('[]{}":,0 a\\\t\n'), max_size=60).map("".join))
def test_soup_is_refused_exactly_when_json_loads_refuses_it(text: str) -> None:
    assert (parse_json(text).problem is None) == (as_json_loads_says(text)[0] == "value")


# --- duplicate keys --------------------------------------------------------------------------


def test_duplicate_keys_are_ambiguous_json_naming_the_key() -> None:
    parsed = parse_json('{"status": "down", "status": "ok"}')

    assert parsed.problem == 'ambiguous JSON: duplicate key "status"'


def test_http_success_body_with_duplicate_keys_is_bad_response() -> None:
    verdict = judge_http(response(200, b'{"status":"down","status":"ok"}'))

    assert verdict.error_class is ErrorClass.BAD_RESPONSE
    assert verdict.detail == 'body is ambiguous JSON: duplicate key "status"'


def test_a_duplicate_key_deep_inside_the_body_is_refused_too() -> None:
    body = b'{"status": "ok", "checks": {"db": "down", "db": "ok"}}'

    assert judge_http(response(200, body)).error_class is ErrorClass.BAD_RESPONSE


def _with_duplicate(body: dict[str, Any], key: str, first: object) -> bytes:
    """``body`` as JSON with ``key`` written twice: ``first``, then the body's own value."""
    rest = json.dumps(body)[1:]
    return ("{" + json.dumps(key) + ": " + json.dumps(first) + ", " + rest).encode()


@pytest.mark.parametrize(
    ("judge", "body", "key", "first"),
    [
        pytest.param(judge_stripe, SEED_PONG, "type", "v2.core.account", id="stripe"),
        pytest.param(
            judge_ninepic,
            {"responseType": "success", "data": {"status": "ok", "org_id": 903, "event_id": 456}},
            "responseType",
            "error",
            id="ninepic",
        ),
        pytest.param(
            judge_simotel, {"success": 1, "message": "pong", "data": None}, "success", 0,
            id="simotel",
        ),
    ],
)  # fmt: skip
def test_every_providers_pong_with_a_duplicate_key_is_bad_response(
    judge: Callable[..., Verdict], body: dict[str, Any], key: str, first: object
) -> None:
    assert judge(response(200, body)).success  # the same pong without the duplicate passes

    verdict = judge(response(200, _with_duplicate(body, key, first)))

    assert verdict.error_class is ErrorClass.BAD_RESPONSE
    assert "duplicate key" in verdict.detail


# --- server values in details ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("down", '"down"'),
        ("", '""'),
        (503, "503"),
        (1.5, "1.5"),
        (True, "true"),
        (None, "null"),
        ("x" * 62, '"' + "x" * 62 + '"'),
        ("x" * 63, "a string of 63 characters"),  # 65 characters once quoted
        ("x" * 512, "a string of 512 characters"),
        (10**70, "a long number"),
        ({"a": 1}, "an object"),
        ({}, "an object"),
        ([1, 2, 3], "an array of 3"),
        ([], "an array of 0"),
    ],
)
def test_shown_quotes_short_scalars_and_names_everything_else(value: object, text: str) -> None:
    assert shown(value) == text


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), st.lists, max_leaves=5))
def test_shown_is_always_short(value: object) -> None:
    assert len(shown(value)) <= 64


def test_json_mismatch_on_an_object_holding_a_password_names_its_type_only() -> None:
    verdict = judge_http(response(200, {"status": DSN_OBJECT}))

    assert verdict.error_class is ErrorClass.BAD_RESPONSE
    assert verdict.detail == 'json mismatch at status: expected "ok", got an object'
    assert PASSWORD not in verdict.detail


@pytest.mark.parametrize(
    ("actual", "said"),
    [
        ([PASSWORD, 2, 3], "got an array of 3"),
        (PASSWORD * 20, f"got a string of {len(PASSWORD) * 20} characters"),
        ("down", 'got "down"'),
    ],
)
def test_json_mismatch_quotes_only_short_scalars(actual: object, said: str) -> None:
    verdict = judge_http(response(200, {"status": actual}))

    assert verdict.detail == f'json mismatch at status: expected "ok", {said}'


def test_json_mismatch_on_a_body_that_is_not_an_object_names_its_type() -> None:
    verdict = judge_http(response(200, [DSN_OBJECT]))

    assert verdict.detail == "json mismatch at (body): expected an object, got an array of 1"


@pytest.mark.parametrize("key", ["object", "type", "livemode", "created"])
def test_stripe_pong_field_holding_an_object_is_named_not_quoted(key: str) -> None:
    verdict = judge_stripe(response(200, pong_with(key, DSN_OBJECT)))

    assert verdict.error_class is ErrorClass.BAD_RESPONSE
    assert f"{key} is an object" in verdict.detail
    assert PASSWORD not in verdict.detail


def test_stripe_long_event_id_is_not_quoted_in_the_success_detail() -> None:
    verdict = judge_stripe(response(200, pong_with("id", "evt_" + "x" * 5000)))

    assert verdict.success
    assert verdict.detail == "pong (an identifier of 5004 characters)"


def test_ninepic_and_simotel_fields_holding_objects_are_named_not_quoted() -> None:
    ninepic = judge_ninepic(response(200, {"responseType": "success", "data": DSN_OBJECT}))
    legacy = judge_ninepic(response(200, {"status": "ok", "org_id": DSN_OBJECT, "event_id": 1}))
    simotel = judge_simotel(response(200, {"success": DSN_OBJECT, "message": "", "data": 1}))

    assert ninepic.detail == "data.status is null"
    assert legacy.detail == "org_id echoed as an object, expected 903"
    assert simotel.detail == "success is an object, expected 1"
    for verdict in (ninepic, legacy, simotel):
        assert PASSWORD not in verdict.detail


@pytest.mark.parametrize("judge", [judge_ninepic, judge_simotel])
def test_a_provider_message_is_quoted_whole_up_to_a_detail_length(
    judge: Callable[..., Verdict],
) -> None:
    short_message, long_message = "IP is not permitted", "m" * 201

    assert judge(response(403, {"message": short_message})).detail.endswith(short_message)
    assert judge(response(403, {"message": long_message})).detail == (
        "HTTP 403: (a message of 201 characters)"
    )


def test_stripe_error_message_is_quoted_whole_up_to_a_detail_length() -> None:
    error = {"error": {"code": "x" * 65, "message": "m" * 300}}
    verdict = judge_stripe(response(400, error, {"Request-Id": "req_" + "r" * 100}))

    assert verdict.detail == (
        "HTTP 400 (an identifier of 65 characters): (a message of 300 characters)"
        " (request (an identifier of 104 characters))"
    )


# --- every judge is total ----------------------------------------------------------------------

BODIES = st.one_of(
    st.binary(max_size=200),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=70),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=12,
    ).map(lambda value: json.dumps(value).encode()),
    st.integers(min_value=1, max_value=5000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=1, max_value=5000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
)
CONTENT_TYPES = st.sampled_from(
    ["", "application/json", "application/json; charset=utf-16", "text/html; charset=x-nope"]
)


@pytest.mark.parametrize("judge", JUDGES)
@given(status=st.integers(min_value=100, max_value=599), body=BODIES, content_type=CONTENT_TYPES)
def test_every_judge_is_total_over_any_status_and_body(
    judge: Callable[..., Verdict], status: int, body: bytes, content_type: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}

    verdict = judge(response(status, body, headers))

    assert isinstance(verdict.error_class, ErrorClass)
    # Bounded whatever the body: the runner cuts at 200 after masking; a judge never quotes
    # more than a short scalar or a provider message of at most 200 characters.
    assert len(verdict.detail) <= 300
