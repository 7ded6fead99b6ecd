"""The generic http provider: request building, expectations and their validation."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings, strategies as st
from multidict import CIMultiDict
from pydantic import ValidationError

from pingmon.errors import ErrorClass
from pingmon.jsonvalue import shown
from pingmon.providers import PROVIDER_TYPES
from pingmon.providers.base import HttpResponse, PreparedRequest, Verdict
from pingmon.providers.http import (
    Expect,
    HttpParams,
    HttpProvider,
    HttpSettings,
    json_contains,
    json_equal,
    subset_mismatch,
)
from pingmon.redaction import Redactor
from pingmon.runner import final_detail
from tests.unit import response

BASE_URL = "https://status.example.com"
TOKEN = "Bearer st_SeCrEt_0123456789"


def make_provider(**fields: Any) -> HttpProvider:
    settings = {"type": "http", "base_url": BASE_URL, **fields}
    return HttpProvider(HttpSettings.model_validate(settings))


def make_params(**fields: Any) -> HttpParams:
    return HttpParams.model_validate(fields)


def judge(resp: HttpResponse, **params: Any) -> Verdict:
    provider, target = make_provider(), make_params(**params)
    return provider.judge(target, provider.request(target, "check-1"), resp)


# --- the request -------------------------------------------------------------------------


def test_http_default_request_is_a_bare_get_of_the_root() -> None:
    request = make_provider().request(make_params(), "check-1")

    assert request == PreparedRequest(method="GET", url=f"{BASE_URL}/", headers={}, body=None)
    assert PROVIDER_TYPES["http"] is HttpProvider


def test_http_request_carries_method_path_query_headers_and_body() -> None:
    provider = make_provider(base_url=f"{BASE_URL}/", headers={"Authorization": TOKEN})
    target = make_params(
        method="POST",
        path="/api/health?deep=1",
        headers={"Content-Type": "application/json"},
        body='{"probe": "ü"}',
    )

    request = provider.request(target, "check-1")

    assert request == PreparedRequest(
        method="POST",
        url=f"{BASE_URL}/api/health?deep=1",
        headers={"Authorization": TOKEN, "Content-Type": "application/json"},
        body='{"probe": "ü"}'.encode(),
    )


def test_http_target_header_overrides_the_providers_whatever_its_case() -> None:
    provider = make_provider(headers={"Authorization": TOKEN})

    request = provider.request(make_params(headers={"authorization": "none"}), "check-1")

    assert request.headers == {"authorization": "none"}


def test_http_provider_header_secret_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STATUS_TOKEN", TOKEN)
    provider = make_provider(headers={"Authorization": {"env": "STATUS_TOKEN"}})

    request = provider.request(make_params(), "check-1")

    assert request.headers == {"Authorization": TOKEN}
    assert TOKEN not in repr(provider.settings)
    assert "env:STATUS_TOKEN" in repr(provider.settings)


# --- configuration errors ----------------------------------------------------------------


def test_http_base_url_is_required() -> None:
    with pytest.raises(ValidationError) as caught:
        HttpSettings.model_validate({"type": "http"})

    assert caught.value.errors()[0]["loc"] == ("base_url",)


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"path": "healthz"}, ("path",)),
        ({"method": "FETCH"}, ("method",)),
        ({"expect": {"status": []}}, ("expect", "status")),
        ({"expect": {"status": [600]}}, ("expect", "status", 0)),
        ({"expect": {"status": [200, 99]}}, ("expect", "status", 1)),
        ({"expect": {"status": [200, "6xx"]}}, ("expect", "status", 1)),
        ({"expect": {"status": ["2x"]}}, ("expect", "status", 0)),
        ({"expect": {"status": ["2xx", "0xx"]}}, ("expect", "status", 1)),
        ({"expect": {"status": ["20x"]}}, ("expect", "status", 0)),
        ({"expect": {"status": [True]}}, ("expect", "status", 0)),
        ({"expect": {"status": [200.5]}}, ("expect", "status", 0)),
        ({"expect": {"body_regex": "([unclosed"}}, ("expect", "body_regex")),
        ({"expect": {"jsn": {"status": "ok"}}}, ("expect", "jsn")),
        ({"expect": {"json": ["ok"]}}, ("expect", "json")),
        ({"verb": "GET"}, ("verb",)),
    ],
)
def test_http_bad_target_is_refused_naming_the_field(
    fields: dict[str, Any], loc: tuple[str | int, ...]
) -> None:
    with pytest.raises(ValidationError) as caught:
        make_params(**fields)

    assert caught.value.errors()[0]["loc"] == loc


def test_http_status_classes_and_codes_mix_in_one_list() -> None:
    expect = Expect.model_validate({"status": [200, "3XX", " 4xx ", "204"]})

    assert expect.status == [200, "3xx", "4xx", 204]


def test_http_unexpected_status_detail_lists_codes_and_classes() -> None:
    verdict = judge(response(503), expect={"status": [200, "3xx"]})

    assert verdict.detail == "HTTP 503, expected 200, 3xx"


def test_http_status_schema_offers_codes_and_classes() -> None:
    schema = Expect.model_json_schema()["properties"]["status"]

    assert schema["items"] == {
        "anyOf": [
            {"type": "integer", "minimum": 100, "maximum": 599},
            {"type": "string", "pattern": "^[1-5][xX][xX]$"},
        ]
    }


def test_http_bad_regex_message_says_it_is_not_a_regular_expression() -> None:
    with pytest.raises(ValidationError) as caught:
        make_params(expect={"body_regex": "([unclosed"})

    assert "not a valid regular expression" in caught.value.errors()[0]["msg"]


def test_http_expect_json_key_is_spelled_json_in_the_file() -> None:
    expect = Expect.model_validate({"json": {"status": "ok"}})

    assert expect.json_subset == {"status": "ok"}
    assert expect.model_dump(by_alias=True)["json"] == {"status": "ok"}
    assert "json" in Expect.model_json_schema()["properties"]


# --- judging -----------------------------------------------------------------------------

STATUS_CASES = [
    pytest.param(200, {}, ErrorClass.NONE, id="200-default"),
    pytest.param(204, {}, ErrorClass.BAD_RESPONSE, id="204-not-listed"),
    pytest.param(204, {"status": [200, 204]}, ErrorClass.NONE, id="204-listed"),
    pytest.param(301, {}, ErrorClass.CLIENT_ERROR, id="301"),
    pytest.param(301, {"status": [301]}, ErrorClass.NONE, id="301-listed"),
    pytest.param(401, {}, ErrorClass.AUTH, id="401"),
    pytest.param(401, {"status": [200, 401]}, ErrorClass.NONE, id="401-listed"),
    pytest.param(403, {}, ErrorClass.FORBIDDEN, id="403"),
    pytest.param(404, {}, ErrorClass.NOT_FOUND, id="404"),
    pytest.param(418, {}, ErrorClass.CLIENT_ERROR, id="418"),
    pytest.param(429, {}, ErrorClass.RATE_LIMITED, id="429"),
    pytest.param(500, {}, ErrorClass.SERVER_ERROR, id="500"),
    pytest.param(503, {"status": [200, 401]}, ErrorClass.SERVER_ERROR, id="503"),
    pytest.param(204, {"status": ["2xx"]}, ErrorClass.NONE, id="204-in-2xx"),
    pytest.param(299, {"status": ["2xx"]}, ErrorClass.NONE, id="299-in-2xx"),
    pytest.param(200, {"status": ["2XX"]}, ErrorClass.NONE, id="upper-case-class"),
    pytest.param(302, {"status": [200, "3xx"]}, ErrorClass.NONE, id="302-in-mixed-list"),
    pytest.param(200, {"status": [200, "3xx"]}, ErrorClass.NONE, id="200-in-mixed-list"),
    pytest.param(304, {"status": ["2xx"]}, ErrorClass.CLIENT_ERROR, id="304-not-in-2xx"),
    pytest.param(404, {"status": ["2xx", "3xx"]}, ErrorClass.NOT_FOUND, id="404-not-listed"),
    pytest.param(401, {"status": ["4xx"]}, ErrorClass.NONE, id="401-in-4xx"),
    pytest.param(503, {"status": ["5xx"]}, ErrorClass.NONE, id="503-in-5xx"),
    pytest.param(101, {"status": ["1xx"]}, ErrorClass.NONE, id="101-in-1xx"),
    pytest.param(201, {"status": ["5xx", 200]}, ErrorClass.BAD_RESPONSE, id="201-not-listed"),
]


@pytest.mark.parametrize(("status", "expect", "expected"), STATUS_CASES)
def test_http_status_is_judged_against_the_expected_list(
    status: int, expect: dict[str, Any], expected: ErrorClass
) -> None:
    assert judge(response(status, b"ok"), expect=expect).error_class is expected


def test_http_unexpected_status_detail_names_what_was_expected() -> None:
    verdict = judge(response(503), expect={"status": [200, 204]})

    assert verdict.detail == "HTTP 503, expected 200, 204"


def test_http_truncated_body_with_an_expected_status_is_bad_response() -> None:
    resp = HttpResponse(200, CIMultiDict(), b"x" * 10, truncated=True)

    assert judge(resp).error_class is ErrorClass.BAD_RESPONSE


def test_http_truncated_body_with_an_unexpected_status_keeps_the_status_class() -> None:
    resp = HttpResponse(503, CIMultiDict(), b"x" * 10, truncated=True)

    assert judge(resp).error_class is ErrorClass.SERVER_ERROR


BROKEN_BODY_CASES = [
    pytest.param(200, {}, ErrorClass.BAD_RESPONSE, id="200-no-body-rules"),
    pytest.param(200, {"json": {"status": "ok"}}, ErrorClass.BAD_RESPONSE, id="200-json-whole"),
    pytest.param(204, {"status": [204]}, ErrorClass.BAD_RESPONSE, id="listed-2xx"),
    pytest.param(503, {"status": [503]}, ErrorClass.BAD_RESPONSE, id="listed-503"),
    pytest.param(503, {}, ErrorClass.SERVER_ERROR, id="503"),
    pytest.param(429, {}, ErrorClass.RATE_LIMITED, id="429"),
    pytest.param(401, {}, ErrorClass.AUTH, id="401"),
    pytest.param(404, {}, ErrorClass.NOT_FOUND, id="404"),
]


@pytest.mark.parametrize(("status", "expect", "expected"), BROKEN_BODY_CASES)
def test_http_broken_body_is_bad_response_when_its_status_is_expected_else_the_status_class(
    status: int, expect: dict[str, Any], expected: ErrorClass
) -> None:
    resp = HttpResponse(
        status, CIMultiDict(), b'{"status": "ok"}', body_error="its chunked framing is broken"
    )

    verdict = judge(resp, expect=expect)

    assert verdict.error_class is expected
    if expected is ErrorClass.BAD_RESPONSE:
        assert verdict.detail == (
            f"HTTP {status} with a broken body: its chunked framing is broken"
        )


HEALTHY = {"status": "ok", "version": "1.2", "checks": {"db": "ok", "queue": ["a", "b"]}}

JSON_CASES = [
    pytest.param({"status": "ok"}, HEALTHY, None, id="flat-subset"),
    pytest.param({"checks": {"db": "ok"}}, HEALTHY, None, id="nested-subset"),
    pytest.param({"checks": {"queue": ["a", "b"]}}, HEALTHY, None, id="equal-list"),
    pytest.param({}, HEALTHY, None, id="empty-subset"),
    pytest.param({"status": "ok"}, {**HEALTHY, "status": "down"}, "status", id="wrong-value"),
    pytest.param({"checks": {"db": "ok"}}, {"checks": {"db": "down"}}, "checks.db", id="nested"),
    pytest.param({"uptime": 1}, HEALTHY, "uptime: missing", id="missing-key"),
    pytest.param({"checks": {"db": "ok"}}, {"checks": "ok"}, "checks:", id="object-expected"),
    pytest.param({"checks": {"queue": ["a"]}}, HEALTHY, "checks.queue", id="list-not-subset"),
    pytest.param({"ok": True}, {"ok": 1}, "ok", id="true-is-not-1"),
    pytest.param({"n": 1}, {"n": "1"}, "n", id="number-is-not-string"),
    pytest.param({"status": "ok"}, ["ok"], "(body)", id="array-body"),
]


@pytest.mark.parametrize(("subset", "body", "failing_path"), JSON_CASES)
def test_http_json_subset_names_the_first_mismatching_key(
    subset: dict[str, Any], body: object, failing_path: str | None
) -> None:
    verdict = judge(response(200, body), expect={"json": subset})

    if failing_path is None:
        assert verdict.success
    else:
        assert verdict.error_class is ErrorClass.BAD_RESPONSE
        assert verdict.detail.startswith(f"json mismatch at {failing_path}")


def test_http_json_expectation_on_a_non_json_body_is_bad_response() -> None:
    verdict = judge(response(200, b"<html>ok</html>"), expect={"json": {"status": "ok"}})

    assert verdict.error_class is ErrorClass.BAD_RESPONSE
    assert verdict.detail == "body is not JSON"


def test_http_json_mismatch_detail_shows_expected_and_actual_values() -> None:
    verdict = judge(response(200, {"status": "down"}), expect={"json": {"status": "ok"}})

    assert verdict.detail == 'json mismatch at status: expected "ok", got "down"'


@pytest.mark.parametrize(
    ("pattern", "body", "expected"),
    [
        (r"\bUP\b", b"service: UP", ErrorClass.NONE),
        (r"^ok$", b"ok", ErrorClass.NONE),
        (r"\bUP\b", b"service: DOWN", ErrorClass.BAD_RESPONSE),
        ("caf\u00e9", "menu: café".encode(), ErrorClass.NONE),
        # A UTF-16 byte order mark before bytes that are not UTF-16: undecodable.
        ("ok", b"\xff\xfe ok", ErrorClass.BAD_RESPONSE),
    ],
)
def test_http_body_regex_is_searched_in_the_decoded_body(
    pattern: str, body: bytes, expected: ErrorClass
) -> None:
    assert judge(response(200, body), expect={"body_regex": pattern}).error_class is expected


def test_http_json_and_regex_must_both_hold() -> None:
    expect = {"json": {"status": "ok"}, "body_regex": "version"}

    assert judge(response(200, {"status": "ok"}), expect=expect).detail.startswith("body does")
    assert judge(response(200, HEALTHY), expect=expect).success


def test_http_success_detail_is_the_status() -> None:
    assert judge(response(200, b"")).detail == "HTTP 200"


# --- JSON matching properties ------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=3), JSON_VALUES, max_size=4))
def test_http_every_json_object_contains_itself(value: dict[str, Any]) -> None:
    assert subset_mismatch(value, value) is None
    assert subset_mismatch({}, value) is None


@given(JSON_VALUES, JSON_VALUES)
def test_http_json_equality_is_symmetric(left: object, right: object) -> None:
    assert json_equal(left, right) == json_equal(right, left)


# --- secrets -----------------------------------------------------------------------------


def test_http_header_token_echoed_by_the_server_is_masked_in_the_detail() -> None:
    provider = make_provider(headers={"Authorization": TOKEN})
    target = make_params(expect={"json": {"status": "ok"}})
    request = provider.request(target, "check-1")
    token = TOKEN.removeprefix("Bearer ")

    verdict = provider.assess(target, request, response(200, {"status": f"{token} expired"}))
    detail = final_detail(Redactor(provider.wire_secrets()), verdict.detail)

    assert verdict.error_class is ErrorClass.BAD_RESPONSE
    assert token not in detail
    assert "expired" in detail
    assert TOKEN not in repr(provider.settings)


def straightforward_mismatch(expected: object, actual: object, path: str = "") -> str | None:
    """``subset_mismatch`` as it was written before its match was found by
    ``json_contains``: the reference for the reasons, path by path."""
    where = path or "(body)"
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{where}: expected an object, got {shown(actual)}"
        for key, wanted in expected.items():
            key_path = f"{path}.{key}" if path else str(key)
            if key not in actual:
                return f"{key_path}: missing"
            mismatch = straightforward_mismatch(wanted, actual[key], key_path)
            if mismatch is not None:
                return mismatch
        return None
    if straightforward_equal(expected, actual):
        return None
    return f"{where}: expected {shown(expected)}, got {shown(actual)}"


def straightforward_equal(left: object, right: object) -> bool:
    """``json_equal`` without its fast path for a str."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(straightforward_equal, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(
            straightforward_equal(left[k], right[k]) for k in left
        )
    return left == right


SMALL_JSON = st.recursive(
    st.sampled_from([None, True, False, 0, 1, 1.0, "ok", "", "1", "true"]),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.sampled_from("ab"), inner),
    max_leaves=6,
)


@settings(deadline=None)  # a busy machine: no wall-clock bound
@given(SMALL_JSON, SMALL_JSON, st.data())
def test_http_json_matching_says_what_the_straightforward_walk_says(
    expected: object, actual: object, data: st.DataObject
) -> None:
    """Random pairs from a few values (so that they often match, wholly or in part, and
    ``true`` meets ``1``): the same reason, or None, and the same equality."""
    if data.draw(st.booleans()):  # the expectation is the server's value with parts left out
        expected = actual if not isinstance(actual, dict) else {
            k: v for k, v in actual.items() if data.draw(st.booleans())
        }  # fmt: skip
    assert subset_mismatch(expected, actual) == straightforward_mismatch(expected, actual)
    assert json_contains(expected, actual) == (straightforward_mismatch(expected, actual) is None)
    assert json_equal(expected, actual) == straightforward_equal(expected, actual)
