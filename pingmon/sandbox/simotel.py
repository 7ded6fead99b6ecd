"""An imitation of Simotel's API v4 ``POST /api/v4/setting/ping/act`` (PROVIDERS.md 3)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Final, Literal, get_args

from aiohttp import web

from pingmon.sandbox.scenarios import COMMON_SCENARIOS, Scenario
from pingmon.sandbox.webhooks import REPLAY, OutgoingWebhook, WebhookSendingFake

SIMOTEL_SCENARIOS: Final = COMMON_SCENARIOS | {
    "success_string",
    "html_200",
    "redirect",
    "method_not_allowed",
}
PING_PATH: Final = "/api/v4/setting/ping/act"
PING_MESSAGE: Final = (
    "If the 'Ping' event is enabled in the settings menu, you'll receive it when it's sent"
)
MISSING: Final = "BasicAuth or ApiKey is missing"
INVALID: Final = "BasicAuth or ApiKey is invalid"
ACCESS_DENIED: Final = "setting/ping/act;Access denied"

PING_EVENT_BODY: Final = json.dumps({"event_name": "Ping"}).encode()

AuthMode = Literal["basic", "token", "both"]
WebhookVersion = Literal["G4", "Rest4"]
"""G4 posts every event to the URL itself; Rest4 appends the event name (``url/Ping``)."""


@dataclass(frozen=True)
class SimotelAccount:
    """A Simotel API account: its authentication method decides which headers it needs."""

    username: str
    password: str
    api_key: str  # sent as X-APIKEY
    auth: AuthMode
    can_ping: bool = True

    def accepts(self, basic: tuple[str, str] | None, api_key: str | None) -> bool:
        """Whether these credentials satisfy this account's method; extra headers are ignored."""
        basic_ok = basic == (self.username, self.password)
        token_ok = api_key == self.api_key
        if self.auth == "basic":
            return basic_ok
        if self.auth == "token":
            return token_ok
        return basic_ok and token_ok


@dataclass(frozen=True)
class SimotelCredentials:
    """One sandbox API account per authentication method, and one without ping permission."""

    basic: SimotelAccount = field(
        default_factory=lambda: SimotelAccount(
            "pingmon_basic", "sandbox-basic-pass", "simotel_basic_unused_token", "basic"
        )
    )
    token: SimotelAccount = field(
        default_factory=lambda: SimotelAccount(
            "pingmon_token", "sandbox-token-pass", "simotel_sandbox_token", "token"
        )
    )
    both: SimotelAccount = field(
        default_factory=lambda: SimotelAccount(
            "pingmon_both", "sandbox-both-pass", "simotel_sandbox_both_token", "both"
        )
    )
    no_ping: SimotelAccount = field(
        default_factory=lambda: SimotelAccount(
            "pingmon_noping", "sandbox-noping-pass", "simotel_sandbox_noping_token", "both", False
        )
    )

    # The Event Webhooks "API Username"/"API Password" ``python -m pingmon.sandbox`` sends.
    webhook_username: str = "pingmon_webhook"
    webhook_password: str = "sandbox-webhook-pass"

    def accounts(self) -> dict[str, SimotelAccount]:
        """The account table a fresh SimotelFake starts with, by username."""
        every = (self.basic, self.token, self.both, self.no_ping)
        return {account.username: account for account in every}


@dataclass(frozen=True)
class SimotelWebhook:
    """Simotel's Event Webhooks settings: the URL, its Basic credentials and the API flavour."""

    url: str
    username: str
    password: str = field(repr=False)
    version: WebhookVersion = "G4"

    def __post_init__(self) -> None:
        if self.version not in get_args(WebhookVersion):
            raise ValueError(f"version must be G4 or Rest4, got {self.version!r}")

    def requests(self, scenario: str) -> list[OutgoingWebhook]:
        """The requests the Ping event makes under a webhook scenario."""
        url = f"{self.url.rstrip('/')}/Ping" if self.version == "Rest4" else self.url
        password = self.password
        if scenario == "badly_signed":
            password += "-not-the-password"
        headers = {
            "Content-Type": "application/json",
            "Authorization": basic_authorization(self.username, password),
        }
        first = OutgoingWebhook(url, PING_EVENT_BODY, headers)
        return [first, replace(first, copy=REPLAY)] if scenario == "replayed" else [first]


def basic_authorization(username: str, password: str) -> str:
    """An HTTP Basic ``Authorization`` value."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return f"Basic {token}"


def envelope(status: int, success: int, message: str) -> web.Response:
    """Simotel's ``{success, message, data}`` envelope; ``data`` is null on errors."""
    body = {"success": success, "message": message, "data": None}
    return web.json_response(body, status=status)


def failure(status: int, message: str) -> web.Response:
    """A documented error: ``success: 0`` and the verbatim message."""
    return envelope(status, 0, message)


def apache_not_found(request: web.Request) -> web.Response:
    """What a wrong base URL meets: Apache's own HTML 404, not JSON."""
    port = request.url.port or 80
    page = (
        '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n'
        "<html><head>\n<title>404 Not Found</title>\n</head><body>\n<h1>Not Found</h1>\n"
        "<p>The requested URL was not found on this server.</p>\n<hr>\n"
        f"<address>Apache/2.4.62 (Debian) Server at {request.url.host} Port {port}</address>\n"
        "</body></html>\n"
    )
    return web.Response(status=404, text=page, content_type="text/html")


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """``(username, password)`` from a Basic Authorization header, or None."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, _, password = decoded.partition(":")
    return username, password


def _html_200(request: web.Request) -> web.Response:
    page = "<html><head><title>Simotel</title></head><body>Simotel login</body></html>"
    return web.Response(status=200, text=page, content_type="text/html")


def _redirect(request: web.Request) -> web.Response:
    # Same host, https: a client that follows it fails the TLS handshake instead of going anywhere.
    location = f"https://{request.host}{PING_PATH}"
    return web.Response(status=302, headers={"Location": location})


_ANSWERS: Final[dict[str, Callable[[web.Request], web.Response]]] = {
    "ok": lambda request: envelope(200, 1, PING_MESSAGE),
    "bad_body": lambda request: failure(200, "Requested operation failed"),
    "success_string": lambda request: web.json_response(
        {"success": "1", "message": PING_MESSAGE, "data": None}
    ),
    "html_200": _html_200,
    "redirect": _redirect,
    "method_not_allowed": lambda request: failure(405, "Method not allowed"),
    "auth": lambda request: failure(401, INVALID),
    "forbidden": lambda request: failure(403, ACCESS_DENIED),
    "not_found": apache_not_found,
    "rate_limited": lambda request: failure(429, "Too Many Requests"),
    "server_error": lambda request: failure(500, "Internal Server Error"),
}


@dataclass
class _Answered:
    """Whether a ping was answered with the documented success, which fires the Ping event."""

    ok: bool = False


class SimotelFake(WebhookSendingFake):
    """Simotel's ping; scenario keys are API account usernames.

    Once :meth:`set_webhook` is called (the Ping event enabled), every ``ok`` ping fires the
    Ping event webhook after its answer; webhook scenario keys are the pinging usernames too.
    """

    kind = "simotel"
    scenario_names = SIMOTEL_SCENARIOS

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: SimotelCredentials | None = None,
    ) -> None:
        super().__init__(host, port)
        self.accounts: dict[str, SimotelAccount] = (credentials or SimotelCredentials()).accounts()
        self.allowed_ips: set[str] | None = None  # None: "Allow All IPs"
        self.accept_put = False  # the docs' PUT tabs; off, as v4 is POST everywhere else
        self.empty_body_is_error = False  # an empty body is read as {} unless this is set
        self.webhook: SimotelWebhook | None = None  # None: the Ping event is not enabled

    def set_webhook(
        self, url: str, username: str, password: str, version: WebhookVersion = "G4"
    ) -> None:
        """Enable the Ping event webhook: POST it to url with these Basic credentials."""
        self.webhook = SimotelWebhook(url, username, password, version)

    def remove_webhook(self) -> None:
        """Disable the Ping event webhook."""
        self.webhook = None

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", PING_PATH, self._ping)
        app.router.add_route("*", "/api/v4/{a}/{b}/{c}", self._unknown_service)
        app.router.add_route("*", "/{tail:.*}", self._not_found)

    def claimed_account(self, request: web.Request) -> str:
        """The username the credentials point at, even before they are checked ("" if none)."""
        basic = basic_credentials(request)
        if basic is not None:
            return basic[0]
        api_key = request.headers.get("X-APIKEY")
        for account in self.accounts.values():
            if api_key and account.api_key == api_key:
                return account.username
        return ""

    def authenticate(self, request: web.Request) -> SimotelAccount | str:
        """The account these credentials satisfy, or the documented 401 message."""
        basic = basic_credentials(request)
        api_key = request.headers.get("X-APIKEY") or None
        if api_key is None and not request.headers.get("Authorization"):
            return MISSING
        for account in self.accounts.values():
            if account.accepts(basic, api_key):
                return account
        return INVALID

    async def _ping(self, request: web.Request) -> web.StreamResponse:
        self.record(request, self.claimed_account(request))
        allowed = ("POST", "PUT") if self.accept_put else ("POST",)
        if request.method not in allowed:
            return failure(405, "Method not allowed")
        refusal = self._refusal(request)
        if isinstance(refusal, web.Response):
            return refusal
        problem = await self._body_problem(request)
        if problem is not None:
            return problem
        username, answered = refusal.username, _Answered()
        response = await self.play(request, username, partial(self._reply, request, answered))
        webhook = self.webhook
        if webhook is None or not answered.ok:
            return response
        return await self.answer_then_deliver(request, response, username, webhook.requests)

    def _refusal(self, request: web.Request) -> SimotelAccount | web.Response:
        """IP allow-list, credentials and permission, before the body is looked at."""
        if self.allowed_ips is not None and request.remote not in self.allowed_ips:
            return failure(403, "IP is not permitted")
        account = self.authenticate(request)
        if isinstance(account, str):
            return failure(401, account)
        if not account.can_ping:
            return failure(403, ACCESS_DENIED)
        return account

    async def _body_problem(self, request: web.Request) -> web.Response | None:
        if request.content_type != "application/json":
            return failure(415, "Unsupported Media Type")
        raw = await request.read()
        if not raw.strip():
            return failure(400, "Unable to parse content") if self.empty_body_is_error else None
        try:
            json.loads(raw)
        except ValueError:
            return failure(400, "Unable to parse content")
        return None

    def _reply(
        self, request: web.Request, answered: _Answered, scenario: Scenario
    ) -> web.Response:
        # Only the documented success fires the event; success_string and bad_body are broken.
        answered.ok = scenario.name == "ok"
        return _ANSWERS[scenario.name](request)

    async def _unknown_service(self, request: web.Request) -> web.Response:
        self.record(request, self.claimed_account(request))
        return failure(501, "Requested service does not exist")

    async def _not_found(self, request: web.Request) -> web.Response:
        self.record(request, self.claimed_account(request))
        return apache_not_found(request)
