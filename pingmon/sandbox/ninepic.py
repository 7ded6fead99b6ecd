"""An imitation of 9pic's ``GET /api/v1/ext/{org_id}/event/{event_id}/ping`` (PROVIDERS.md 2)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

from aiohttp import web

from pingmon.sandbox.scenarios import COMMON_SCENARIOS, FakeProvider, Scenario

NINEPIC_SCENARIOS: Final = COMMON_SCENARIOS | {
    "legacy",
    "mismatched_ids",
    "error_envelope_200",
    "rate_limited_gateway",
    "html_502",
}
PING_ROUTE: Final = "/api/v1/ext/{org_id}/event/{event_id}/ping"

_INTEGER: Final = re.compile(r"[+-]?\d+")
_INT_PARSING: Final = "Input should be a valid integer, unable to parse string as an integer"
_BAD_GATEWAY_HTML: Final = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)


@dataclass(frozen=True)
class NinepicKey:
    """An API key is scoped to one organisation and can be deactivated."""

    org_id: int
    active: bool = True


@dataclass(frozen=True)
class NinepicCredentials:
    """The sandbox's 9pic keys; every integer event id exists unless the fake is told otherwise."""

    api_key: str = "9pic_sandbox_key"
    org_id: int = 903
    event_id: int = 456
    other_org_key: str = "9pic_sandbox_key_org904"
    other_org_id: int = 904
    other_event_id: int = 789
    deactivated_key: str = "9pic_sandbox_key_deactivated"  # belongs to org_id; 403

    def keys(self) -> dict[str, NinepicKey]:
        """The key table a fresh NinepicFake starts with."""
        return {
            self.api_key: NinepicKey(self.org_id),
            self.other_org_key: NinepicKey(self.other_org_id),
            self.deactivated_key: NinepicKey(self.org_id, active=False),
        }


def envelope_error(status: int, message: str) -> web.Response:
    """Every 9pic error: the three-key envelope with ``data: null``."""
    body = {"responseType": "error", "message": message, "data": None}
    return web.json_response(body, status=status)


def envelope_success(org_id: int, event_id: int, status: str = "ok") -> web.Response:
    """The documented pong, echoing the URL's ids."""
    data = {"status": status, "org_id": org_id, "event_id": event_id}
    return web.json_response({"responseType": "success", "message": "pong", "data": data})


def validation_errors(org_raw: str, event_raw: str) -> str | None:
    """A FastAPI/pydantic-style flattened message for non-integer path ids, or None."""
    problems = [
        f"path.{name}: {_INT_PARSING}"
        for name, raw in (("org_id", org_raw), ("event_id", event_raw))
        if _INTEGER.fullmatch(raw) is None
    ]
    return "; ".join(problems) or None


@dataclass(frozen=True)
class _Ping:
    org_id: int
    event_id: int


def _legacy(ping: _Ping) -> web.Response:
    # The flat body of an older doc revision, still quoted by the API index page.
    body = {"status": "ok", "org_id": ping.org_id, "event_id": ping.event_id}
    return web.json_response(body)


def _error_envelope_200(ping: _Ping) -> web.Response:
    body: dict[str, Any] = {"responseType": "error", "message": "Internal failure", "data": None}
    return web.json_response(body, status=200)


def _rate_limited_gateway(ping: _Ping) -> web.Response:
    # The throttle lives at an API gateway, whose 429 body is not 9pic's envelope.
    return web.json_response({"message": "Too Many Requests"}, status=429)


def _html_502(ping: _Ping) -> web.Response:
    return web.Response(status=502, text=_BAD_GATEWAY_HTML, content_type="text/html")


_ANSWERS: Final[dict[str, Callable[[_Ping], web.Response]]] = {
    "ok": lambda ping: envelope_success(ping.org_id, ping.event_id),
    "bad_body": lambda ping: envelope_success(ping.org_id, ping.event_id, status="degraded"),
    "mismatched_ids": lambda ping: envelope_success(ping.org_id + 1, ping.event_id + 1),
    "legacy": _legacy,
    "error_envelope_200": _error_envelope_200,
    "auth": lambda ping: envelope_error(401, "API key missing"),
    "forbidden": lambda ping: envelope_error(403, "API key is invalid or inactive"),
    "not_found": lambda ping: envelope_error(404, "Event configuration not found"),
    "rate_limited": lambda ping: envelope_error(429, "Rate limit exceeded"),
    "rate_limited_gateway": _rate_limited_gateway,
    "server_error": lambda ping: envelope_error(500, "Internal failure"),
    "html_502": _html_502,
}


class NinepicFake(FakeProvider):
    """9pic's ping; scenario keys are event ids as strings (``"456"``)."""

    kind = "ninepic"
    scenario_names = NINEPIC_SCENARIOS

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: NinepicCredentials | None = None,
    ) -> None:
        super().__init__(host, port)
        self.keys: dict[str, NinepicKey] = (credentials or NinepicCredentials()).keys()
        self.foreign_events: set[int] = set()  # owned by another org: 403
        self.unconfigured_events: set[int] = set()  # owned but not configured: 404
        self.allowed_hosts: set[str] | None = None  # None allows every Host

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", PING_ROUTE, self._ping)
        app.router.add_route("*", "/{tail:.*}", self._unknown_route)

    async def _ping(self, request: web.Request) -> web.StreamResponse:
        org_raw, event_raw = request.match_info["org_id"], request.match_info["event_id"]
        invalid = validation_errors(org_raw, event_raw)
        key = event_raw if invalid else str(int(event_raw))
        self.record(request, key)
        if request.method not in ("GET", "HEAD"):
            return envelope_error(405, "Method Not Allowed")
        if invalid is not None:
            return envelope_error(422, invalid)
        ping = _Ping(int(org_raw), int(event_raw))
        refusal = self._refusal(request, ping)
        if refusal is not None:
            return refusal
        return await self.play(request, key, partial(self._reply, ping))

    def _refusal(self, request: web.Request, ping: _Ping) -> web.Response | None:
        """The documented checks, in the documented order: key, org, event, host, config."""
        api_key = request.headers.get("X-API-Key", "")
        if not api_key:
            return envelope_error(401, "API key missing")
        owner = self.keys.get(api_key)
        if owner is None or not owner.active:
            return envelope_error(403, "API key is invalid or inactive")
        if owner.org_id != ping.org_id:
            return envelope_error(403, "API key does not belong to this organisation")
        if ping.event_id in self.foreign_events:
            return envelope_error(403, "Event does not belong to this organisation")
        if not self._host_allowed(request):
            return envelope_error(403, "Host not approved")
        if ping.event_id in self.unconfigured_events:
            return envelope_error(404, "Event configuration not found")
        return None

    def _host_allowed(self, request: web.Request) -> bool:
        if self.allowed_hosts is None:
            return True
        return request.host in self.allowed_hosts or request.url.host in self.allowed_hosts

    def _reply(self, ping: _Ping, scenario: Scenario) -> web.Response:
        return _ANSWERS[scenario.name](ping)

    async def _unknown_route(self, request: web.Request) -> web.Response:
        self.record(request, "")
        return envelope_error(404, "Not Found")
