"""The Simotel provider against the v4 ping page and PROVIDERS.md 3.3/3.4."""

from __future__ import annotations

import json
from typing import Any

import pytest
from multidict import CIMultiDict
from pydantic import ValidationError

from pingmon.errors import ErrorClass
from pingmon.providers import PROVIDER_TYPES
from pingmon.providers.base import HttpResponse, Verdict
from pingmon.providers.simotel import SimotelParams, SimotelProvider, SimotelSettings
from pingmon.redaction import Redactor
from pingmon.runner import final_detail
from tests.unit import response

SERVER = "http://192.168.51.20"
PING_URL = "http://192.168.51.20/api/v4/setting/ping/act"
# The credentials of the docs' own example: test:Aa123456 is dGVzdDpBYTEyMzQ1Ng==.
API_KEY = "vZKtIKWsld0egNlkzHo8i5LVBqLNBSWARCQsPOSgDjFmAHM3tG"
USERNAME, PASSWORD = "test", "Aa123456"
BASIC = "Basic dGVzdDpBYTEyMzQ1Ng=="
CREDENTIALS = {"api_key": API_KEY, "username": USERNAME, "password": PASSWORD}
PARAMS = SimotelParams()

DOC_PONG: dict[str, Any] = {
    "success": 1,
    "message": (
        "If the 'Ping' event is enabled in the settings menu, you'll receive it when it's sent"
    ),
    "data": None,
}


def make_settings(**fields: Any) -> SimotelSettings:
    return SimotelSettings.model_validate({"type": "simotel", "base_url": SERVER, **fields})


def make_provider(**fields: Any) -> SimotelProvider:
    return SimotelProvider(make_settings(**{**CREDENTIALS, **fields}))


def judge(resp: HttpResponse) -> Verdict:
    provider = make_provider()
    return provider.assess(PARAMS, provider.request(PARAMS, "check-1"), resp)


def failure(message: str) -> dict[str, Any]:
    return {"success": 0, "message": message, "data": None}


# --- the request -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "expected_auth_headers"),
    [
        ("both", {"X-APIKEY": API_KEY, "Authorization": BASIC}),
        ("token", {"X-APIKEY": API_KEY}),
        ("basic", {"Authorization": BASIC}),
    ],
)
def test_simotel_request_sends_the_credentials_its_auth_mode_names(
    auth: str, expected_auth_headers: dict[str, str]
) -> None:
    request = make_provider(auth=auth).request(PARAMS, "check-1")

    assert request.method == "POST"
    assert request.url == PING_URL
    assert request.body == b"{}"
    assert request.headers == {
        "Content-Type": "application/json",
        "Accept": "application/json",
        **expected_auth_headers,
    }


def test_simotel_default_auth_is_both() -> None:
    assert make_settings(**CREDENTIALS).auth == "both"
    assert PROVIDER_TYPES["simotel"] is SimotelProvider


@pytest.mark.parametrize(
    "base_url",
    [SERVER, f"{SERVER}/", f"{SERVER}/api/v4", f"{SERVER}/api/v4/"],
)
def test_simotel_base_url_may_carry_the_sdk_api_v4_suffix(base_url: str) -> None:
    request = make_provider(base_url=base_url).request(PARAMS, "check-1")

    assert request.url == PING_URL


def test_simotel_base_url_keeps_scheme_port_and_prefix() -> None:
    request = make_provider(base_url="https://pbx.example:8443/simotel").request(PARAMS, "c")

    assert request.url == "https://pbx.example:8443/simotel/api/v4/setting/ping/act"


# --- configuration errors ----------------------------------------------------------------


def test_simotel_base_url_is_required() -> None:
    with pytest.raises(ValidationError) as caught:
        SimotelSettings.model_validate({"type": "simotel", **CREDENTIALS})

    assert caught.value.errors()[0]["loc"] == ("base_url",)


@pytest.mark.parametrize(
    ("auth", "given", "missing"),
    [
        ("basic", {"username": USERNAME}, ["password"]),
        ("basic", {"password": PASSWORD, "api_key": API_KEY}, ["username"]),
        ("token", {"username": USERNAME, "password": PASSWORD}, ["api_key"]),
        ("both", {"api_key": API_KEY}, ["username", "password"]),
        ("both", {"username": USERNAME, "password": PASSWORD}, ["api_key"]),
    ],
)
def test_simotel_auth_mode_without_its_credentials_names_the_missing_field(
    auth: str, given: dict[str, str], missing: list[str]
) -> None:
    with pytest.raises(ValidationError) as caught:
        make_settings(auth=auth, **given)

    message = str(caught.value)
    assert f"auth '{auth}'" in message
    for name in missing:
        assert name in message
    for value in given.values():
        assert value not in message


@pytest.mark.parametrize(
    ("auth", "given"),
    [
        ("basic", {"username": USERNAME, "password": PASSWORD}),
        ("token", {"api_key": API_KEY}),
        ("both", CREDENTIALS),
    ],
)
def test_simotel_auth_mode_with_exactly_its_credentials_is_accepted(
    auth: str, given: dict[str, str]
) -> None:
    assert make_settings(auth=auth, **given).auth == auth


def test_simotel_unknown_auth_mode_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        make_settings(auth="digest", **CREDENTIALS)

    assert caught.value.errors()[0]["loc"] == ("auth",)


def test_simotel_ping_takes_no_target_parameters() -> None:
    with pytest.raises(ValidationError):
        SimotelParams.model_validate({"event_id": 1})


# --- judging (PROVIDERS.md 3.4) ----------------------------------------------------------

CASES = [
    pytest.param(200, DOC_PONG, ErrorClass.NONE, id="200-documented-output"),
    pytest.param(200, {**DOC_PONG, "success": True}, ErrorClass.NONE, id="200-success-true"),
    pytest.param(200, {**DOC_PONG, "message": ""}, ErrorClass.NONE, id="200-any-message"),
    pytest.param(200, {**DOC_PONG, "data": {}}, ErrorClass.NONE, id="200-data-object"),
    pytest.param(200, {**DOC_PONG, "success": "1"}, ErrorClass.BAD_RESPONSE, id="200-string-1"),
    pytest.param(200, {**DOC_PONG, "success": 2}, ErrorClass.BAD_RESPONSE, id="200-success-2"),
    pytest.param(200, {**DOC_PONG, "success": None}, ErrorClass.BAD_RESPONSE, id="200-null"),
    pytest.param(
        200, {"message": "x", "data": None}, ErrorClass.BAD_RESPONSE, id="200-no-success"
    ),
    pytest.param(200, {"success": 1, "data": None}, ErrorClass.BAD_RESPONSE, id="200-no-message"),
    pytest.param(200, {**DOC_PONG, "message": 7}, ErrorClass.BAD_RESPONSE, id="200-number-msg"),
    pytest.param(200, {"success": 1, "message": "ok"}, ErrorClass.BAD_RESPONSE, id="200-no-data"),
    pytest.param(200, b"<html>It works!</html>", ErrorClass.BAD_RESPONSE, id="200-html"),
    pytest.param(200, [DOC_PONG], ErrorClass.BAD_RESPONSE, id="200-json-array"),
    pytest.param(204, b"", ErrorClass.BAD_RESPONSE, id="204-empty"),
    pytest.param(
        200, failure("Requested operation failed"), ErrorClass.SERVER_ERROR, id="200-success-0"
    ),
    pytest.param(200, {**DOC_PONG, "success": False}, ErrorClass.SERVER_ERROR, id="200-false"),
    pytest.param(400, failure("Unable to parse content"), ErrorClass.CLIENT_ERROR, id="400"),
    pytest.param(401, failure("BasicAuth or ApiKey is missing"), ErrorClass.AUTH, id="401-miss"),
    pytest.param(401, failure("BasicAuth or ApiKey is invalid"), ErrorClass.AUTH, id="401-bad"),
    pytest.param(
        403, failure("setting/ping/act;Access denied"), ErrorClass.FORBIDDEN, id="403-permission"
    ),
    pytest.param(403, failure("IP is not permitted"), ErrorClass.FORBIDDEN, id="403-ip"),
    pytest.param(404, b"<html><h1>Not Found</h1></html>", ErrorClass.NOT_FOUND, id="404-apache"),
    pytest.param(405, failure("Method not allowed"), ErrorClass.CLIENT_ERROR, id="405"),
    pytest.param(415, failure("Unsupported Media Type"), ErrorClass.CLIENT_ERROR, id="415"),
    pytest.param(501, failure("Requested service does not exist"), ErrorClass.NOT_FOUND, id="501"),
    pytest.param(429, b"Too Many Requests", ErrorClass.RATE_LIMITED, id="429-from-a-proxy"),
    pytest.param(500, b"", ErrorClass.SERVER_ERROR, id="500"),
    pytest.param(502, b"<html>Bad Gateway</html>", ErrorClass.SERVER_ERROR, id="502-html"),
    pytest.param(503, failure("busy"), ErrorClass.SERVER_ERROR, id="503"),
]


@pytest.mark.parametrize(("status", "body", "expected"), CASES)
def test_simotel_response_maps_to_its_documented_class(
    status: int, body: object, expected: ErrorClass
) -> None:
    assert judge(response(status, body)).error_class is expected


def test_simotel_documented_output_is_success() -> None:
    verdict = judge(response(200, DOC_PONG))

    assert verdict.success
    assert verdict.detail == "pong"


def test_simotel_success_0_with_200_is_an_app_failure_not_worth_retrying() -> None:
    verdict = judge(response(200, failure("Requested operation failed")))

    assert verdict.error_class is ErrorClass.SERVER_ERROR
    assert verdict.detail == "app_failure: Requested operation failed"
    assert verdict.retry is False


def test_simotel_error_detail_carries_the_documented_message() -> None:
    verdict = judge(response(403, failure("IP is not permitted")))

    assert verdict.detail == "HTTP 403: IP is not permitted"


def test_simotel_501_says_the_service_does_not_exist() -> None:
    verdict = judge(response(501, failure("Requested service does not exist")))

    assert "service does not exist: Simotel without API v4 ping?" in verdict.detail


def test_simotel_apache_404_suggests_a_wrong_base_url() -> None:
    verdict = judge(response(404, b"<html>Not Found</html>", {"Content-Type": "text/html"}))

    assert verdict.error_class is ErrorClass.NOT_FOUND
    assert "base_url" in verdict.detail


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_simotel_redirect_is_not_followed_and_names_the_location(status: int) -> None:
    location = "https://192.168.51.20/api/v4/setting/ping/act"

    verdict = judge(response(status, b"", {"location": location}))

    assert verdict.error_class is ErrorClass.CLIENT_ERROR
    assert "redirect not followed" in verdict.detail
    assert location in verdict.detail


def test_simotel_redirect_location_loses_its_userinfo() -> None:
    location = "https://test:Aa123456@pbx.example/api/v4/setting/ping/act"

    verdict = judge(response(302, b"", {"Location": location}))

    assert "https://pbx.example/api/v4/setting/ping/act" in verdict.detail
    assert PASSWORD not in verdict.detail


def test_simotel_unparsable_redirect_location_is_not_quoted() -> None:
    verdict = judge(response(302, b"", {"Location": "http://[not-an-address/"}))

    assert verdict.error_class is ErrorClass.CLIENT_ERROR
    assert "(unparsable Location)" in verdict.detail


def test_simotel_whole_pong_whose_body_then_broke_off_is_bad_response() -> None:
    body = json.dumps(DOC_PONG).encode()
    resp = HttpResponse(200, CIMultiDict(), body, body_error="its chunked framing is broken")

    assert judge(resp).error_class is ErrorClass.BAD_RESPONSE


def test_simotel_401_whose_body_broke_off_keeps_its_status_class() -> None:
    resp = HttpResponse(401, CIMultiDict(), b"{", body_error="connection closed")

    assert judge(resp).error_class is ErrorClass.AUTH


def test_simotel_truncated_200_is_bad_response() -> None:
    resp = HttpResponse(200, CIMultiDict(), json.dumps(DOC_PONG).encode()[:10], truncated=True)

    assert judge(resp).error_class is ErrorClass.BAD_RESPONSE


# --- secrets -----------------------------------------------------------------------------


def test_simotel_settings_repr_never_shows_a_credential() -> None:
    settings = make_settings(**CREDENTIALS)

    for secret in (API_KEY, PASSWORD, "Aa123456"):
        assert secret not in repr(settings)
        assert secret not in str(settings)


@pytest.mark.parametrize(
    "echoed", [API_KEY, BASIC, BASIC.removeprefix("Basic "), f"{USERNAME}:{PASSWORD}", PASSWORD]
)
def test_simotel_credential_echoed_by_the_server_is_masked_in_the_detail(echoed: str) -> None:
    provider = make_provider()
    verdict = judge(response(401, failure(f"BasicAuth or ApiKey is invalid: {echoed}")))

    detail = final_detail(Redactor(provider.wire_secrets()), verdict.detail)

    assert verdict.error_class is ErrorClass.AUTH
    assert echoed not in detail
    assert detail == "HTTP 401: BasicAuth or ApiKey is invalid: **********"
