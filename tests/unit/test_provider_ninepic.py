"""The 9pic provider against the seed's ping page and PROVIDERS.md 2.2/2.3."""

from __future__ import annotations

import json
from typing import Any

import pytest
from multidict import CIMultiDict
from pydantic import ValidationError

from pingmon.errors import ErrorClass
from pingmon.providers import PROVIDER_TYPES
from pingmon.providers.base import HttpResponse, PreparedRequest, Verdict
from pingmon.providers.ninepic import NinepicParams, NinepicProvider, NinepicSettings
from tests.unit import response

API_KEY = "9pic_live_SeCrEt0123456789abcdef"
PARAMS = NinepicParams(org_id=903, event_id=456)

SEED_PONG: dict[str, Any] = {
    "responseType": "success",
    "message": "pong",
    "data": {"status": "ok", "org_id": 903, "event_id": 456},
}
INDIC_456 = "\u0664\u0665\u0666"  # 456 in Arabic-Indic digits, which int() reads
LEGACY_PONG: dict[str, Any] = {"status": "ok", "org_id": 903, "event_id": 456}


def make_provider(**settings: Any) -> NinepicProvider:
    model = NinepicSettings.model_validate({"type": "ninepic", "api_key": API_KEY, **settings})
    return NinepicProvider(model)


def judge(resp: HttpResponse) -> Verdict:
    provider = make_provider()
    return provider.judge(PARAMS, provider.request(PARAMS, "check-1"), resp)


def envelope_error(message: str) -> dict[str, Any]:
    return {"responseType": "error", "message": message, "data": None}


def pong(**data: object) -> dict[str, Any]:
    return {**SEED_PONG, "data": {**SEED_PONG["data"], **data}}


def test_ninepic_request_is_a_get_of_the_ping_path_with_the_api_key() -> None:
    request = make_provider().request(PARAMS, "check-1")

    assert request == PreparedRequest(
        method="GET",
        url="https://api.9pic.ai/api/v1/ext/903/event/456/ping",
        headers={"X-API-Key": API_KEY, "Accept": "application/json"},
        body=None,
    )


def test_ninepic_base_url_can_point_at_a_local_imitation() -> None:
    request = make_provider(base_url="http://127.0.0.1:8112/").request(PARAMS, "check-1")

    assert request.url == "http://127.0.0.1:8112/api/v1/ext/903/event/456/ping"
    assert PROVIDER_TYPES["ninepic"] is NinepicProvider


@pytest.mark.parametrize("field", ["org_id", "event_id"])
@pytest.mark.parametrize("value", [0, -1, "abc"])
def test_ninepic_ids_must_be_positive_integers(field: str, value: object) -> None:
    ids: dict[str, object] = {"org_id": 903, "event_id": 456, field: value}

    with pytest.raises(ValidationError) as caught:
        NinepicParams.model_validate(ids)

    assert caught.value.errors()[0]["loc"] == (field,)


CASES = [
    pytest.param(200, SEED_PONG, ErrorClass.NONE, id="200-seed-envelope"),
    pytest.param(200, LEGACY_PONG, ErrorClass.NONE, id="200-legacy-flat"),
    pytest.param(200, {**SEED_PONG, "message": "PONG!"}, ErrorClass.NONE, id="200-any-message"),
    pytest.param(200, pong(org_id="903", event_id="456"), ErrorClass.NONE, id="200-string-ids"),
    pytest.param(200, envelope_error("pong"), ErrorClass.BAD_RESPONSE, id="200-error-type"),
    pytest.param(200, pong(status="degraded"), ErrorClass.BAD_RESPONSE, id="200-status-not-ok"),
    pytest.param(200, pong(org_id=904), ErrorClass.BAD_RESPONSE, id="200-other-org"),
    pytest.param(200, pong(event_id=457), ErrorClass.BAD_RESPONSE, id="200-other-event"),
    pytest.param(200, pong(event_id=True), ErrorClass.BAD_RESPONSE, id="200-bool-event-id"),
    # str.isdigit() takes "²", which int() then refuses: a bad response, not pingmon's fault.
    pytest.param(200, pong(event_id="\u00b2"), ErrorClass.BAD_RESPONSE, id="200-superscript-id"),
    pytest.param(200, pong(event_id=INDIC_456), ErrorClass.BAD_RESPONSE, id="200-indic-id"),
    pytest.param(200, {**SEED_PONG, "data": None}, ErrorClass.BAD_RESPONSE, id="200-no-data"),
    pytest.param(200, {"message": "pong"}, ErrorClass.BAD_RESPONSE, id="200-neither-shape"),
    pytest.param(200, {**LEGACY_PONG, "status": "down"}, ErrorClass.BAD_RESPONSE, id="legacy"),
    pytest.param(200, b"<html>ok</html>", ErrorClass.BAD_RESPONSE, id="200-html"),
    pytest.param(200, [SEED_PONG], ErrorClass.BAD_RESPONSE, id="200-json-array"),
    pytest.param(204, b"", ErrorClass.BAD_RESPONSE, id="204-empty"),
    pytest.param(400, envelope_error("Validation failure"), ErrorClass.CLIENT_ERROR, id="400"),
    pytest.param(401, envelope_error("API key missing"), ErrorClass.AUTH, id="401"),
    pytest.param(403, envelope_error("Host not approved"), ErrorClass.FORBIDDEN, id="403"),
    pytest.param(
        404, envelope_error("Event configuration not found"), ErrorClass.NOT_FOUND, id="404"
    ),
    pytest.param(
        422,
        envelope_error("path.org_id: Input should be a valid integer"),
        ErrorClass.CLIENT_ERROR,
        id="422",
    ),
    pytest.param(
        429, envelope_error("Rate limit exceeded"), ErrorClass.RATE_LIMITED, id="429-envelope"
    ),
    pytest.param(
        429, {"message": "Too Many Requests"}, ErrorClass.RATE_LIMITED, id="429-gateway-body"
    ),
    pytest.param(500, envelope_error("Internal failure"), ErrorClass.SERVER_ERROR, id="500"),
    pytest.param(502, b"<html>Bad Gateway</html>", ErrorClass.SERVER_ERROR, id="502-html"),
    pytest.param(503, b"", ErrorClass.SERVER_ERROR, id="503"),
    pytest.param(504, b"", ErrorClass.SERVER_ERROR, id="504"),
]


@pytest.mark.parametrize(("status", "body", "expected"), CASES)
def test_ninepic_response_maps_to_its_documented_class(
    status: int, body: object, expected: ErrorClass
) -> None:
    assert judge(response(status, body)).error_class is expected


def test_ninepic_error_detail_carries_the_envelope_message() -> None:
    verdict = judge(response(403, envelope_error("Host not approved")))

    assert verdict.detail == "HTTP 403: Host not approved"


def test_ninepic_pong_for_another_event_names_the_echoed_id() -> None:
    verdict = judge(response(200, pong(event_id=457)))

    assert verdict.detail == "event_id echoed as 457, expected 456"


def test_ninepic_truncated_200_is_bad_response() -> None:
    resp = HttpResponse(200, CIMultiDict(), json.dumps(SEED_PONG).encode()[:20], truncated=True)

    assert judge(resp).error_class is ErrorClass.BAD_RESPONSE


def test_ninepic_settings_repr_and_verdicts_never_show_the_key() -> None:
    settings = make_provider().settings
    verdict = judge(response(403, envelope_error("Host not approved")))

    assert API_KEY not in repr(settings)
    assert API_KEY not in str(settings)
    assert API_KEY not in repr(verdict)


def test_ninepic_whole_pong_whose_body_then_broke_off_is_bad_response() -> None:
    body = json.dumps(SEED_PONG).encode()
    resp = HttpResponse(200, CIMultiDict(), body, body_error="its content coding failed")

    assert judge(resp).error_class is ErrorClass.BAD_RESPONSE


def test_ninepic_404_whose_body_broke_off_keeps_its_status_class() -> None:
    resp = HttpResponse(404, CIMultiDict(), b"", body_error="connection closed")

    assert judge(resp).error_class is ErrorClass.NOT_FOUND
