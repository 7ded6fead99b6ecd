"""Simotel (on-prem PBX): ``POST {server}/api/v4/setting/ping/act`` with Basic and/or X-APIKEY."""

from __future__ import annotations

import base64
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator, model_validator

from pingmon.errors import ErrorClass
from pingmon.fields import Secret
from pingmon.providers.base import (
    HttpResponse,
    PreparedRequest,
    Provider,
    ProviderSettings,
    Verdict,
    WebhookParams,
    header,
    judge_status,
    parse_body_json,
    short,
    shown,
    shown_message,
    url_join,
)
from pingmon.webhooks.simotel import SIMOTEL_WEBHOOK, SimotelWebhookSettings

API_ROOT = "/api/v4"
PING_PATH = "/setting/ping/act"
AuthMode = Literal["basic", "token", "both"]


class SimotelSettings(ProviderSettings):
    """One Simotel API account; ``auth`` must match the account's authentication method."""

    type: Literal["simotel"] = "simotel"
    base_url: str = Field(
        description="The Simotel server, e.g. http://192.168.51.20 (a trailing /api/v4 is fine)."
    )
    auth: AuthMode = Field(
        default="both", description="Which credentials to send: basic, token or both."
    )
    api_key: Secret | None = Field(default=None, description="Sent as X-APIKEY.")
    username: Secret | None = None
    password: Secret | None = None

    @field_validator("username")
    @classmethod
    def _no_colon(cls, username: Secret | None) -> Secret | None:
        if username is not None and ":" in username.reveal():
            raise ValueError("holds a colon, which a Basic user-id cannot carry (RFC 7617 2)")
        return username

    @model_validator(mode="after")
    def _has_credentials_for_auth(self) -> SimotelSettings:
        required = _required_credentials(self.auth)
        missing = [name for name in required if getattr(self, name) is None]
        if missing:
            raise ValueError(f"auth '{self.auth}' requires {' and '.join(missing)}, missing here")
        return self


class SimotelParams(WebhookParams):
    """Ping takes no parameters: it proves the server, the account and the allow-list.

    With ``webhook``, the Ping event webhook it fires must reach pingmon too."""

    webhook: SimotelWebhookSettings | None = Field(
        default=None, description="Expect the Ping event webhook at pingmon's receiver."
    )


class SimotelProvider(Provider[SimotelSettings, SimotelParams]):
    """Success is HTTP 200 with ``{"success": 1, "message": "...", "data": ...}``."""

    type_name = "simotel"
    settings_model = SimotelSettings
    params_model = SimotelParams
    webhook = SIMOTEL_WEBHOOK

    def request(self, params: SimotelParams, check_id: str) -> PreparedRequest:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        settings = self.settings
        if settings.auth in ("token", "both") and settings.api_key is not None:
            headers["X-APIKEY"] = settings.api_key.reveal()
        authorization = basic_authorization(settings)
        if authorization is not None:
            headers["Authorization"] = authorization
        # An empty body might meet "400 Unable to parse content"; the docs' PHP sends {}.
        return PreparedRequest(
            method="POST", url=ping_url(settings.base_url), headers=headers, body=b"{}"
        )

    def wire_secrets(self) -> tuple[str, ...]:
        """Also the Basic Authorization value built from username and password."""
        authorization = basic_authorization(self.settings)
        return (*super().wire_secrets(), *([authorization] if authorization else []))

    def judge(
        self, params: SimotelParams, request: PreparedRequest, response: HttpResponse
    ) -> Verdict:
        parsed = parse_body_json(response)
        body = parsed.value if isinstance(parsed.value, dict) else None
        message = body.get("message") if body else None
        verdict = _judge_status(response, message if isinstance(message, str) else None)
        if verdict is None:
            verdict = _judge_envelope(response, body, parsed.problem)
        return verdict


def basic_authorization(settings: SimotelSettings) -> str | None:
    """The ``Basic`` Authorization value (RFC 7617) when ``auth`` sends one, else None."""
    username, password = settings.username, settings.password
    if settings.auth not in ("basic", "both") or username is None or password is None:
        return None
    pair = f"{username.reveal()}:{password.reveal()}"
    return "Basic " + base64.b64encode(pair.encode()).decode("ascii")


def ping_url(base_url: str) -> str:
    """The ping URL from a server URL given with or without the SDK's ``/api/v4`` suffix."""
    server = base_url.rstrip("/")
    server = server.removesuffix(API_ROOT)
    return url_join(server, API_ROOT + PING_PATH)


def _required_credentials(auth: AuthMode) -> tuple[str, ...]:
    token = ("api_key",) if auth in ("token", "both") else ()
    basic = ("username", "password") if auth in ("basic", "both") else ()
    return token + basic


def _judge_status(response: HttpResponse, message: str | None) -> Verdict | None:
    """Status first; Simotel's documented ``message`` only enriches the detail."""
    status = response.status
    said = f": {shown_message(message)}" if message else ""
    if 300 <= status < 400:
        location = shown_message(
            _without_userinfo(header(response.headers, "Location") or "(none)")
        )
        return Verdict(
            ErrorClass.CLIENT_ERROR,
            short(f"HTTP {status} redirect not followed (a POST must not turn GET): {location}"),
        )
    if status == 501:
        return Verdict(
            ErrorClass.NOT_FOUND,
            short(f"HTTP 501 service does not exist: Simotel without API v4 ping?{said}"),
        )
    if status == 404 and not said:
        # Apache's HTML page: the base URL or the API version is wrong.
        said = ": no API v4 at this base_url?"
    return judge_status(response, f"HTTP {status}{said}")


def _judge_envelope(
    response: HttpResponse, body: dict[str, Any] | None, problem: str | None
) -> Verdict:
    if response.status != 200:
        return Verdict(ErrorClass.BAD_RESPONSE, f"HTTP {response.status}, expected 200")
    if body is None:
        return Verdict(ErrorClass.BAD_RESPONSE, problem or "body is not a JSON object")
    if "success" not in body:
        return Verdict(ErrorClass.BAD_RESPONSE, "no success key in the body")
    success, message = body["success"], body.get("message")
    if _is_number(success, 0) or success is False:
        # The service ran and its operation failed: retrying the same call will not help.
        said = shown_message(message) if isinstance(message, str) else "(no message)"
        return Verdict(ErrorClass.SERVER_ERROR, short(f"app_failure: {said}"), retry=False)
    if not (_is_number(success, 1) or success is True):
        return Verdict(ErrorClass.BAD_RESPONSE, f"success is {shown(success)}, expected 1")
    if not isinstance(message, str):
        return Verdict(ErrorClass.BAD_RESPONSE, "message is missing or not a string")
    if "data" not in body:
        return Verdict(ErrorClass.BAD_RESPONSE, "no data key in the body")
    return Verdict(ErrorClass.NONE, "pong")


def _is_number(value: object, expected: int) -> bool:
    """A JSON number equal to ``expected``; booleans and numeric strings are not numbers."""
    return isinstance(value, int | float) and not isinstance(value, bool) and value == expected


def _without_userinfo(url: str) -> str:
    """A redirect target fit for a detail: any ``user:pass@`` is dropped."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparsable Location)"
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


PROVIDER = SimotelProvider
