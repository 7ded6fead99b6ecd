"""A loopback imitation of a Statuspage page, built on pingmon's sandbox helpers.

``python -m pingmon_statuspage.imitation PORTFILE`` serves it on a free port and writes
its URL to PORTFILE; ``indicator`` (PUT /_statuspage/indicator/{value}) sets what it says.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from aiohttp import web

from pingmon.sandbox.scenarios import COMMON_SCENARIOS, FakeProvider, Scenario

DESCRIPTIONS = {
    "none": "All Systems Operational",
    "minor": "Partially Degraded Service",
    "major": "Partial System Outage",
    "critical": "Major System Outage",
    "maintenance": "Service Under Maintenance",
}


class StatuspageFake(FakeProvider):
    """``GET /api/v2/status.json`` as Statuspage answers it; scenario key: the path."""

    kind = "statuspage"
    scenario_names = COMMON_SCENARIOS

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.indicator = "none"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_put("/_statuspage/indicator/{value}", self._set_indicator)
        app.router.add_get("/api/v2/status.json", self._status)

    async def _set_indicator(self, request: web.Request) -> web.Response:
        self.indicator = request.match_info["value"]
        return web.json_response({"indicator": self.indicator})

    async def _status(self, request: web.Request) -> web.StreamResponse:
        self.record(request, request.path)
        return await self.play(request, request.path, self._reply)

    def _reply(self, scenario: Scenario) -> web.Response:
        answers = {
            "auth": 401,
            "forbidden": 403,
            "not_found": 404,
            "rate_limited": 429,
            "server_error": 500,
        }
        if scenario.name in answers:
            return web.json_response({"error": scenario.name}, status=answers[scenario.name])
        if scenario.name == "bad_body":
            return web.json_response({"page": {}, "status": "fine"})
        description = DESCRIPTIONS.get(self.indicator, "Unknown")
        page = {"id": "kctbh9vrtdwd", "name": "Imitation", "url": self.url}
        status = {"indicator": self.indicator, "description": description}
        return web.json_response({"page": page, "status": status})


async def _serve(port_file: Path) -> None:
    async with StatuspageFake() as fake:
        written = port_file.with_suffix(".tmp")
        written.write_text(fake.url)
        written.replace(port_file)  # whole or absent, never half-written
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_serve(Path(sys.argv[1])))
