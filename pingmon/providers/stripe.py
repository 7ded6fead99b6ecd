"""Stripe: ``POST /v2/core/event_destinations/{id}/ping``, judged by the v2 event it returns."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

from pydantic import Field, field_validator

from pingmon.errors import ErrorClass
from pingmon.fields import Secret
from pingmon.outbound import HeaderValue
from pingmon.providers.base import (
    HttpResponse,
    ParsedJson,
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
    shown_token,
    url_join,
)
from pingmon.webhooks.stripe import STRIPE_WEBHOOK, StripeWebhookSettings

DEFAULT_BASE_URL = "https://api.stripe.com"
# Pinned: the ping event type is documented from 2025-04-30.basil on.
DEFAULT_STRIPE_VERSION = "2025-09-30.clover"
PING_EVENT_TYPE = "v2.core.event_destination.ping"
# The docs disagree on this value (PROVIDERS.md 1.2, P6), so both are accepted.
DESTINATION_OBJECT_TYPES = frozenset({"v2.core.event_destination", "event_destination"})
MAX_CLOCK_SKEW = timedelta(minutes=10)
_KEY_LIVEMODE = {"sk_test_": False, "rk_test_": False, "sk_live_": True, "rk_live_": True}


class StripeSettings(ProviderSettings):
    """A Stripe secret or restricted key (with Event Destinations write access)."""

    type: Literal["stripe"] = "stripe"
    base_url: str = DEFAULT_BASE_URL
    api_key: Secret
    stripe_version: HeaderValue = Field(
        default=DEFAULT_STRIPE_VERSION, min_length=1, description="Sent as Stripe-Version."
    )


class StripeParams(WebhookParams):
    """The event destination the ping goes to, and the webhook endpoint it delivers to."""

    destination_id: str = Field(min_length=1, description="An event destination id, ed_...")
    webhook: StripeWebhookSettings | None = Field(
        default=None, description="Expect the ping event at pingmon's webhook receiver."
    )

    @field_validator("destination_id")
    @classmethod
    def _is_destination_id(cls, value: str) -> str:
        if value.startswith("ed_") and len(value) > len("ed_"):
            return value
        hint = (
            " (that is an event id; the Stripe docs' curl example wrongly puts one in the path)"
            if value.startswith("evt_")
            else ""
        )
        raise ValueError(f"must be an event destination id starting with ed_{hint}")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class StripeProvider(Provider[StripeSettings, StripeParams]):
    """Success is a fresh ``v2.core.event_destination.ping`` event for the requested
    destination, in the key's mode, caused by this very request (PROVIDERS.md 1.2)."""

    type_name = "stripe"
    settings_model = StripeSettings
    params_model = StripeParams
    webhook = STRIPE_WEBHOOK

    # The clock the freshness check reads; tests replace it.
    now: Callable[[], datetime]

    def __init__(
        self, settings: StripeSettings, now: Callable[[], datetime] | None = None
    ) -> None:
        super().__init__(settings)
        self.now = now or _utc_now

    def request(self, params: StripeParams, check_id: str) -> PreparedRequest:
        path = f"/v2/core/event_destinations/{quote(params.destination_id, safe='')}/ping"
        return PreparedRequest(
            method="POST",
            url=url_join(self.settings.base_url, path),
            headers={
                "Authorization": f"Bearer {self.settings.api_key.reveal()}",
                "Stripe-Version": self.settings.stripe_version,
                "Content-Type": "application/json",
                # One key per check, reused by its retries: a replay can never pass for a pong.
                "Idempotency-Key": check_id,
                "Accept": "application/json",
            },
            body=b"{}",
        )

    def judge(
        self, params: StripeParams, request: PreparedRequest, response: HttpResponse
    ) -> Verdict:
        parsed = parse_body_json(response)
        body = parsed.value if isinstance(parsed.value, dict) else None
        verdict = self._judge_status(response, body)
        if verdict is None:
            verdict = self._judge_pong(params, request, response, parsed)
        if not verdict.success and _server_says_no_retry(response):
            verdict = dataclasses.replace(verdict, retry=False)
        return verdict

    def _judge_status(self, response: HttpResponse, body: dict[str, Any] | None) -> Verdict | None:
        error = body.get("error") if body else None
        error = error if isinstance(error, dict) else {}
        detail = _error_detail(response, error)
        rate_limit = "rate_limit" in (error.get("type"), error.get("code"))
        if response.status == 400 and rate_limit:
            return Verdict(ErrorClass.RATE_LIMITED, detail)
        if response.status == 424:  # External Dependency Failed: not our request's fault
            return Verdict(ErrorClass.SERVER_ERROR, detail)
        return judge_status(response, detail)

    def _judge_pong(
        self,
        params: StripeParams,
        request: PreparedRequest,
        response: HttpResponse,
        parsed: ParsedJson,
    ) -> Verdict:
        if response.status != 200:
            return Verdict(ErrorClass.BAD_RESPONSE, f"HTTP {response.status}, expected 200")
        body = parsed.value
        if not isinstance(body, dict):
            return Verdict(ErrorClass.BAD_RESPONSE, parsed.problem or "body is not a JSON object")
        pong = _Pong(
            body=body,
            destination_id=params.destination_id,
            livemode=_key_livemode(self.settings.api_key),
            idempotency_key=header(request.headers, "Idempotency-Key"),
            now=self.now(),
        )
        for predicate in PREDICATES:
            failure = predicate(pong)
            if failure is not None:
                return Verdict(ErrorClass.BAD_RESPONSE, short(failure))
        event_id: str = body["id"]
        return Verdict(ErrorClass.NONE, f"pong {shown_token(event_id)}", event_id=event_id)


@dataclasses.dataclass(frozen=True, slots=True)
class _Pong:
    """A 200 body and what it must agree with."""

    body: dict[str, Any]
    destination_id: str
    livemode: bool | None
    idempotency_key: str | None
    now: datetime

    def related(self) -> dict[str, Any]:
        related = self.body.get("related_object")
        return related if isinstance(related, dict) else {}


def _object_is_event(pong: _Pong) -> str | None:
    value = pong.body.get("object")
    return None if value == "v2.core.event" else f"object is {shown(value)}, not v2.core.event"


def _type_is_ping(pong: _Pong) -> str | None:
    value = pong.body.get("type")
    return None if value == PING_EVENT_TYPE else f"type is {shown(value)}, not {PING_EVENT_TYPE}"


def _has_event_id(pong: _Pong) -> str | None:
    value = pong.body.get("id")
    return None if isinstance(value, str) and value else "event id is missing or empty"


def _for_this_destination(pong: _Pong) -> str | None:
    related = pong.related()
    if related.get("id") != pong.destination_id:
        return f"pong for another destination: related_object.id is {shown(related.get('id'))}"
    url = related.get("url")
    suffix = f"/v2/core/event_destinations/{pong.destination_id}"
    if not isinstance(url, str) or not url.endswith(suffix):
        return f"pong for another destination: related_object.url is {shown(url, 200)}"
    return None


def _related_type(pong: _Pong) -> str | None:
    value = pong.related().get("type")
    if value in DESTINATION_OBJECT_TYPES:
        return None
    return f"related_object.type is {shown(value)}, not an event destination"


def _livemode_matches_key(pong: _Pong) -> str | None:
    value = pong.body.get("livemode")
    if not isinstance(value, bool):
        return f"livemode is {shown(value)}, not a boolean"
    if pong.livemode is not None and value != pong.livemode:
        mode = "live" if pong.livemode else "test"
        return f"livemode is {str(value).lower()} but the key is a {mode} key"
    return None


def _created_is_fresh(pong: _Pong) -> str | None:
    value = pong.body.get("created")
    created = _parse_rfc3339(value)
    if created is None:
        return f"created is {shown(value)}, not an RFC 3339 time"
    if abs(created - pong.now) > MAX_CLOCK_SKEW:
        return f"stale pong: created {shown(value)} is more than 10 minutes from now"
    return None


def _caused_by_this_request(pong: _Pong) -> str | None:
    reason = pong.body.get("reason")
    request = reason.get("request") if isinstance(reason, dict) else None
    if not isinstance(request, dict) or request.get("idempotency_key") is None:
        return None
    if request["idempotency_key"] == pong.idempotency_key:
        return None
    return "replayed pong: reason.request.idempotency_key is not this check's"


# A failed predicate's reason, or None when it holds.
Predicate = Callable[[_Pong], str | None]

PREDICATES: tuple[Predicate, ...] = (
    _object_is_event,
    _type_is_ping,
    _has_event_id,
    _for_this_destination,
    _related_type,
    _livemode_matches_key,
    _created_is_fresh,
    _caused_by_this_request,
)


def _parse_rfc3339(value: object) -> datetime | None:
    """An aware datetime, or None: RFC 3339 requires the offset, so a naive time is refused."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _key_livemode(api_key: Secret) -> bool | None:
    """The livemode a key's prefix implies, or None for a prefix we do not know."""
    key = api_key.reveal()
    return next((live for prefix, live in _KEY_LIVEMODE.items() if key.startswith(prefix)), None)


def _error_detail(response: HttpResponse, error: dict[str, Any]) -> str:
    """``HTTP 404 not_found: message (request req_...)`` from the v2 error envelope.

    The message, Stripe's own prose, is quoted whole up to a detail's length; the code and
    request id only while they are short, as Stripe's are."""
    detail = f"HTTP {response.status}"
    code, message = error.get("code"), error.get("message")
    if isinstance(code, str) and code:
        detail += f" {shown_token(code)}"
    if isinstance(message, str) and message:
        detail += f": {shown_message(message)}"
    request_id = header(response.headers, "Request-Id")
    if request_id:
        detail += f" (request {shown_token(request_id)})"
    return short(detail)


def _server_says_no_retry(response: HttpResponse) -> bool:
    """``Stripe-Should-Retry: false`` overrides every other retry rule (PROVIDERS.md 1.4)."""
    value = header(response.headers, "Stripe-Should-Retry")
    return value is not None and value.strip().lower() == "false"


PROVIDER = StripeProvider
