"""9pic: ``GET /api/v1/ext/{org_id}/event/{event_id}/ping`` with ``X-API-Key``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PositiveInt

from pingmon.errors import ErrorClass
from pingmon.fields import Secret
from pingmon.providers.base import (
    HttpResponse,
    PreparedRequest,
    Provider,
    ProviderSettings,
    TargetParams,
    Verdict,
    judge_status,
    parse_body_json,
    shown,
    shown_message,
    url_join,
)

DEFAULT_BASE_URL = "https://api.9pic.ai"


class NinepicSettings(ProviderSettings):
    """A 9pic organisation's API key. Call the production host: 9pic allow-lists it."""

    type: Literal["ninepic"] = "ninepic"
    base_url: str = DEFAULT_BASE_URL
    api_key: Secret


class NinepicParams(TargetParams):
    """The organisation and event whose access the ping proves."""

    org_id: PositiveInt = Field(description="Your 9pic organisation ID.")
    event_id: PositiveInt = Field(description="The event whose access to verify.")


class NinepicProvider(Provider[NinepicSettings, NinepicParams]):
    """Success is the envelope with ``responseType: success``, ``data.status == "ok"``
    and the URL's ids echoed back; the documented legacy flat body is accepted too."""

    type_name = "ninepic"
    settings_model = NinepicSettings
    params_model = NinepicParams

    def request(self, params: NinepicParams, check_id: str) -> PreparedRequest:
        path = f"/api/v1/ext/{params.org_id}/event/{params.event_id}/ping"
        return PreparedRequest(
            method="GET",
            url=url_join(self.settings.base_url, path),
            headers={"X-API-Key": self.settings.api_key.reveal(), "Accept": "application/json"},
        )

    def judge(
        self, params: NinepicParams, request: PreparedRequest, response: HttpResponse
    ) -> Verdict:
        parsed = parse_body_json(response)
        body = parsed.value if isinstance(parsed.value, dict) else None
        message = body.get("message") if body else None
        said = f"HTTP {response.status}: {shown_message(message)}" if message else ""
        status_verdict = judge_status(response, said)
        if status_verdict is not None:
            return status_verdict
        if response.status != 200 or body is None:
            problem = parsed.problem or "body is not a JSON object"
            return Verdict(ErrorClass.BAD_RESPONSE, f"HTTP {response.status}, {problem}")
        return _judge_payload(params, body)


def _judge_payload(params: NinepicParams, body: dict[str, Any]) -> Verdict:
    if "responseType" in body:
        if body["responseType"] != "success":
            return Verdict(
                ErrorClass.BAD_RESPONSE, f"responseType is {shown(body['responseType'])}"
            )
        data = body.get("data")
        if not isinstance(data, dict):
            return Verdict(ErrorClass.BAD_RESPONSE, "envelope has no data object")
    elif "status" in body:
        data = body  # the legacy flat body that older 9pic documents show
    else:
        return Verdict(ErrorClass.BAD_RESPONSE, "neither the envelope nor the legacy body")
    if data.get("status") != "ok":
        return Verdict(ErrorClass.BAD_RESPONSE, f"data.status is {shown(data.get('status'))}")
    for key, expected in (("org_id", params.org_id), ("event_id", params.event_id)):
        if not _same_id(data.get(key), expected):
            return Verdict(
                ErrorClass.BAD_RESPONSE,
                f"{key} echoed as {shown(data.get(key))}, expected {expected}",
            )
    return Verdict(ErrorClass.NONE, "pong")


def _same_id(echoed: object, expected: int) -> bool:
    """JSON numbers compare as integers; numeric strings are tolerated."""
    if isinstance(echoed, bool):
        return False
    if isinstance(echoed, int):
        return echoed == expected
    if not isinstance(echoed, str):
        return False
    digits = echoed.strip()  # ASCII only: isdigit() alone takes "²", which int() refuses
    return digits.isascii() and digits.isdigit() and int(digits) == expected


PROVIDER = NinepicProvider
