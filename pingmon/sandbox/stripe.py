"""An imitation of Stripe's v2 "ping an event destination" endpoint (PROVIDERS.md 1.6, 1.7)."""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Final

from aiohttp import web

from pingmon.sandbox.scenarios import COMMON_SCENARIOS, Scenario
from pingmon.sandbox.stripe_webhooks import StripeWebhook, thin_event_body
from pingmon.sandbox.webhooks import (
    WEBHOOK_SCENARIOS,
    WebhookSendingFake,
)

STRIPE_SCENARIOS: Final = COMMON_SCENARIOS | {
    "lock_timeout",
    "server_error_no_retry",
    "conflict",
    "stale",
    "wrong_destination",
    "html",
}
DEFAULT_STRIPE_VERSION: Final = "2025-09-30.clover"
PING_EVENT_TYPE: Final = "v2.core.event_destination.ping"
PING_ROUTE: Final = "/v2/core/event_destinations/{id}/ping"
# "stale": one delivery signed OLD_SIGNATURE_AGE_SECONDS ago, outside the default tolerance.
STRIPE_WEBHOOK_SCENARIOS: Final = WEBHOOK_SCENARIOS | {"stale"}

_DESTINATION_ID: Final = re.compile(r"ed_(test|live)_[A-Za-z0-9_]+")
_KEY_PREFIX: Final = re.compile(r"(?:sk|rk|pk)_(?:test|live)_")
_ALPHABET: Final = string.ascii_letters + string.digits
_REMEMBERED_KEYS: Final = 10_000
# The variants of the success event; every other scenario name is an error answer.
_EVENT_VARIANTS: Final = frozenset({"ok", "stale", "wrong_destination", "bad_body"})


@dataclass(frozen=True)
class StripeKey:
    """What the fake knows about an API key: its mode and whether it may ping."""

    livemode: bool
    can_ping: bool = True


@dataclass(frozen=True)
class StripeCredentials:
    """The sandbox's Stripe keys and destinations (any ``ed_test_…`` id exists for test keys)."""

    test_key: str = "sk_test_pingmon_sandbox"
    live_key: str = "sk_live_pingmon_sandbox"
    restricted_key: str = "rk_test_pingmon_events"  # restricted, with Event Destinations write
    readonly_key: str = "rk_test_pingmon_readonly"  # restricted, without it: 403
    test_destination: str = "ed_test_pingmon_orders"
    live_destination: str = "ed_live_pingmon_orders"
    stripe_version: str = DEFAULT_STRIPE_VERSION
    webhook_secret: str = "whsec_pingmon_sandbox"  # what ``python -m pingmon.sandbox`` signs with

    def keys(self) -> dict[str, StripeKey]:
        """The key table a fresh StripeFake starts with."""
        return {
            self.test_key: StripeKey(livemode=False),
            self.live_key: StripeKey(livemode=True),
            self.restricted_key: StripeKey(livemode=False),
            self.readonly_key: StripeKey(livemode=False, can_ping=False),
        }


@dataclass(frozen=True)
class _Ping:
    """One authenticated ping request, as the answers need it."""

    destination: str
    api_key: str
    livemode: bool
    idempotency_key: str
    request_id: str


@dataclass
class _Answered:
    """The event a ping answered with, when it is one that gets delivered."""

    event: dict[str, Any] | None = None


@dataclass
class _Remembered:
    """What an Idempotency-Key was first used for, and the event it produced, if any."""

    path: str
    event: dict[str, Any] | None = None


def random_id(prefix: str, length: int) -> str:
    """A Stripe-looking identifier such as ``req_7xUZU3GTI1jWm6``."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def mask_key(key: str) -> str:
    """Name a bad key the way Stripe does: its prefix and last four characters, never all of it."""
    match = _KEY_PREFIX.match(key)
    prefix = match.group(0) if match else ""
    secret = key[len(prefix) :]
    tail = secret[-4:] if len(secret) > 8 else ""
    return f"{prefix}****{tail}"


def rfc3339_millis(moment: datetime) -> str:
    """``2024-10-22T16:26:54.063Z``: v2 timestamps are strings, not unix integers."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def api_key_of(request: web.Request) -> str | None:
    """The key from ``Bearer <key>`` or Basic ``<key>:``; None when no key was offered."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() != "basic":
        return None
    try:
        username = base64.b64decode(value, validate=True).decode().partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        return value or None  # offered but unreadable: an invalid key, not a missing one
    return username or None


def _error(
    status: int, error: dict[str, Any], headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": error}, status=status, headers=headers)


def unauthorized(key: str | None) -> web.Response:
    """401 in Stripe's v1 shape (the v2 one is undocumented), never echoing the key."""
    if key is None:
        message = (
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth "
            "(e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
        )
    else:
        message = f"Invalid API Key provided: {mask_key(key)}"
    error = {"type": "invalid_request_error", "message": message}
    return _error(401, error, {"Www-Authenticate": 'Basic realm="Stripe"'})


def forbidden(key: str) -> web.Response:
    """403 for a restricted key without Event Destinations write permission."""
    message = (
        f"The provided key '{mask_key(key)}' does not have the required permissions for this "
        "endpoint on account 'acct_pingmonsandbox'. Having the 'rak_event_destination_write' "
        "permission would allow this request to continue."
    )
    return _error(403, {"type": "invalid_request_error", "message": message})


def not_found() -> web.Response:
    """404 in the ``v2.error.not_found`` shape: code and message, no type."""
    return _error(404, {"code": "not_found", "message": "The resource wasn't found."})


def bad_request(code: str, message: str) -> web.Response:
    """400 for a body the endpoint cannot take (it has no parameters at all)."""
    return _error(400, {"type": "invalid_request_error", "code": code, "message": message})


def idempotency_error() -> web.Response:
    """400 ``v2.error.idempotency_error``: one key reused for a different request."""
    message = (
        "Keys for idempotent requests can only be used with the same parameters they were "
        "first used with. Try using a key other than the one used for the original request."
    )
    return _error(
        400, {"type": "idempotency_error", "code": "idempotency_error", "message": message}
    )


def _rate_limited(ping: _Ping) -> web.Response:
    error = {
        "type": "rate_limit",
        "code": "rate_limit",
        "message": "Too many requests hit the API too quickly.",
    }
    return _error(429, error, {"Stripe-Rate-Limited-Reason": "global-rate"})


def _lock_timeout(ping: _Ping) -> web.Response:
    message = (
        "This object cannot be accessed right now because another API request or Stripe "
        "process is currently accessing it. Please retry your request."
    )
    error = {"type": "invalid_request_error", "code": "lock_timeout", "message": message}
    return _error(429, error)  # deliberately without Stripe-Rate-Limited-Reason


def _server_error(ping: _Ping) -> web.Response:
    error = {"type": "api_error", "message": "An unknown error occurred."}
    return _error(500, error)


def _server_error_no_retry(ping: _Ping) -> web.Response:
    error = {"type": "api_error", "message": "The service is unavailable. Do not retry."}
    return _error(503, error, {"Stripe-Should-Retry": "false"})


def _conflict(ping: _Ping) -> web.Response:
    message = (
        "There is currently another in-progress request using this Idempotency-Key. "
        "Please try again later."
    )
    error = {"type": "invalid_request_error", "code": "idempotency_key_in_use", "message": message}
    return _error(409, error)


def _html(ping: _Ping) -> web.Response:
    page = "<!DOCTYPE html><html><head><title>Stripe</title></head><body>Hello</body></html>"
    return web.Response(status=200, text=page, content_type="text/html")


_ERROR_ANSWERS: Final[dict[str, Callable[[_Ping], web.Response]]] = {
    "auth": lambda ping: unauthorized(ping.api_key),
    "forbidden": lambda ping: forbidden(ping.api_key),
    "not_found": lambda ping: not_found(),
    "rate_limited": _rate_limited,
    "lock_timeout": _lock_timeout,
    "server_error": _server_error,
    "server_error_no_retry": _server_error_no_retry,
    "conflict": _conflict,
    "html": _html,
}


def ping_event(ping: _Ping, variant: str = "ok") -> dict[str, Any]:
    """A fresh ``v2.core.event``; the variants break exactly one success predicate each."""
    mode = "live" if ping.livemode else "test"
    destination = ping.destination
    if variant == "wrong_destination":
        destination = f"ed_{mode}_pingmon_someone_else"
    created = datetime.now(UTC) - (timedelta(hours=1) if variant == "stale" else timedelta())
    return {
        "id": random_id(f"evt_{mode}_", 46),
        "object": "v2.core.event",
        "changes": None,
        "context": None,
        "created": rfc3339_millis(created),
        "data": None,
        "livemode": ping.livemode,
        "reason": {
            "type": "request",
            "request": {"id": ping.request_id, "idempotency_key": ping.idempotency_key},
        },
        "related_object": {
            "id": destination,
            "type": "v2.core.event_destination",
            "url": f"/v2/core/event_destinations/{destination}",
        },
        "type": "v2.core.event_destination.updated" if variant == "bad_body" else PING_EVENT_TYPE,
    }


async def _stamp_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every Stripe answer names its request and the API version it was served with."""
    response.headers.setdefault("Request-Id", random_id("req_", 14))
    version = request.headers.get("Stripe-Version", DEFAULT_STRIPE_VERSION)
    response.headers.setdefault("Stripe-Version", version)


class StripeFake(WebhookSendingFake):
    """``POST /v2/core/event_destinations/{id}/ping``; scenario keys are destination ids.

    A destination given a webhook with :meth:`set_webhook` receives the thin event of every
    ``ok`` ping, signed, once the ping is answered; webhook scenario keys are destination ids too.
    """

    kind = "stripe"
    scenario_names = STRIPE_SCENARIOS
    webhook_scenario_names = STRIPE_WEBHOOK_SCENARIOS

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: StripeCredentials | None = None,
    ) -> None:
        super().__init__(host, port)
        self.keys: dict[str, StripeKey] = (credentials or StripeCredentials()).keys()
        self.deleted_destinations: set[str] = set()
        self._idempotency: dict[str, _Remembered] = {}
        self.webhooks: dict[str, StripeWebhook] = {}

    def set_webhook(self, destination_id: str, url: str, signing_secret: str) -> None:
        """Deliver destination_id's ping events to url, signed with signing_secret."""
        self.webhooks[destination_id] = StripeWebhook(url, signing_secret)

    def remove_webhook(self, destination_id: str) -> None:
        """Stop delivering destination_id's events (nothing happens if it had no webhook)."""
        self.webhooks.pop(destination_id, None)

    def add_routes(self, app: web.Application) -> None:
        app.on_response_prepare.append(_stamp_headers)
        app.router.add_post(PING_ROUTE, self._ping)
        app.router.add_route("*", "/{tail:.*}", self._unrecognized)

    def destination_exists(self, destination: str, livemode: bool) -> bool:
        """Known ids have the documented shape, are not deleted and match the key's mode."""
        match = _DESTINATION_ID.fullmatch(destination)
        if match is None or destination in self.deleted_destinations:
            return False
        return (match.group(1) == "live") == livemode

    async def _ping(self, request: web.Request) -> web.StreamResponse:
        destination = request.match_info["id"]
        self.record(request, destination)
        caller = self._authenticate(request)
        if isinstance(caller, web.Response):
            return caller
        api_key, known = caller
        problem = await _body_problem(request)
        if problem is None and not self.destination_exists(destination, known.livemode):
            problem = not_found()
        idempotency_key = request.headers.get("Idempotency-Key")
        if problem is None and idempotency_key is not None:
            problem = self._idempotent_answer(request, idempotency_key)
        if problem is not None:
            return problem
        ping = _Ping(
            destination=destination,
            api_key=api_key,
            livemode=known.livemode,
            idempotency_key=idempotency_key or _generated_idempotency_key(),
            request_id=random_id("req_", 14),
        )
        answered = _Answered()
        response = await self.play(request, destination, partial(self._reply, ping, answered))
        webhook = self.webhooks.get(destination)
        if answered.event is None or webhook is None:
            return response
        build = partial(webhook.requests, thin_event_body(answered.event))
        return await self.answer_then_deliver(request, response, destination, build)

    def _authenticate(self, request: web.Request) -> tuple[str, StripeKey] | web.Response:
        """The caller's key, or the 401/403 a real account would answer."""
        api_key = api_key_of(request)
        known = self.keys.get(api_key) if api_key is not None else None
        if api_key is None or known is None:
            return unauthorized(api_key)
        if not known.can_ping:
            return forbidden(api_key)
        return api_key, known

    def _idempotent_answer(self, request: web.Request, key: str) -> web.Response | None:
        """Same key, same path: the first event again; same key, other path: refused."""
        earlier = self._idempotency.get(key)
        if earlier is None:
            self._remember(key, _Remembered(request.path))
            return None
        if earlier.path != request.path:
            return idempotency_error()
        if earlier.event is None:
            return None  # the first attempt failed; v2 "retries failed work", so run afresh
        return web.json_response(earlier.event, headers={"Idempotent-Replayed": "true"})

    def _remember(self, idempotency_key: str, remembered: _Remembered) -> None:
        if len(self._idempotency) >= _REMEMBERED_KEYS:
            del self._idempotency[next(iter(self._idempotency))]
        self._idempotency[idempotency_key] = remembered

    def _reply(self, ping: _Ping, answered: _Answered, scenario: Scenario) -> web.Response:
        if scenario.name not in _EVENT_VARIANTS:
            return _ERROR_ANSWERS[scenario.name](ping)
        event = ping_event(ping, scenario.name)
        if scenario.name == "ok":  # the other variants are broken answers, not real events
            answered.event = event
        remembered = self._idempotency.get(ping.idempotency_key)
        if remembered is not None:
            remembered.event = event
        return web.json_response(event, headers={"Request-Id": ping.request_id})

    async def _unrecognized(self, request: web.Request) -> web.Response:
        self.record(request, "")
        message = f"Unrecognized request URL ({request.method}: {request.path})."
        return _error(404, {"type": "invalid_request_error", "message": message})


def _generated_idempotency_key() -> str:
    # Stripe v2 makes one up when the client sends none; the SDK always sends a UUID-shaped one.
    return secrets.token_hex(16)


async def _body_problem(request: web.Request) -> web.Response | None:
    """None for an empty body or ``{}`` (what the SDK sends); a 400 for anything else."""
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        return bad_request("invalid_json", "The request body could not be parsed as JSON.")
    if body == {}:
        return None
    if isinstance(body, dict):
        return bad_request("parameter_unknown", f"Received unknown parameter: {next(iter(body))}")
    return bad_request("invalid_json", "The request body must be a JSON object.")
