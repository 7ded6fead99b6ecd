"""A generic JSON status endpoint, the kind the ``http`` provider checks (``/healthz``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from pingmon.sandbox.scenarios import COMMON_SCENARIOS, FakeProvider, Scenario

HTTP_SCENARIOS: Final = COMMON_SCENARIOS


@dataclass(frozen=True)
class HttpCredentials:
    """The bearer token the status fake checks once ``require_token`` is set, and a path."""

    token: str = "pingmon_sandbox_status_token"
    path: str = "/healthz"


def status_body(status: int, value: str) -> web.Response:
    """``{"status": value}``, the body shape every answer of this fake has."""
    return web.json_response({"status": value}, status=status)


def unauthorized() -> web.Response:
    """401 with the challenge a bearer-protected status page sends."""
    response = status_body(401, "unauthorized")
    response.headers["WWW-Authenticate"] = 'Bearer realm="pingmon-sandbox"'
    return response


_ANSWERS: Final[dict[str, Callable[[], web.Response]]] = {
    "ok": lambda: status_body(200, "ok"),
    "bad_body": lambda: status_body(200, "degraded"),
    "auth": unauthorized,
    "forbidden": lambda: status_body(403, "forbidden"),
    "not_found": lambda: status_body(404, "not found"),
    "rate_limited": lambda: status_body(429, "rate limited"),
    "server_error": lambda: status_body(500, "error"),
}


class HttpFake(FakeProvider):
    """Every method on every path answers ``{"status": "ok"}``; scenario keys are paths."""

    kind = "http"
    scenario_names = HTTP_SCENARIOS

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: HttpCredentials | None = None,
    ) -> None:
        super().__init__(host, port)
        self.credentials = credentials or HttpCredentials()
        self.require_token = False  # when set, only "Authorization: Bearer <token>" gets in

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._status)

    async def _status(self, request: web.Request) -> web.StreamResponse:
        self.record(request, request.path)
        expected = f"Bearer {self.credentials.token}"
        if self.require_token and request.headers.get("Authorization") != expected:
            return unauthorized()
        return await self.play(request, request.path, _reply)


def _reply(scenario: Scenario) -> web.Response:
    return _ANSWERS[scenario.name]()
