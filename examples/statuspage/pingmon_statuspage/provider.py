"""``statuspage``: ``GET {base_url}/api/v2/status.json``, healthy while ``status.indicator``
is ``none``.

The Statuspage public API (https://developer.statuspage.io/#tag/status, and any
``https://<page>/api/v2`` page): ``{"page": {...}, "status": {"indicator": "none" | "minor" |
"major" | "critical" | "maintenance", "description": "All Systems Operational"}}``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pingmon.errors import ErrorClass
from pingmon.providers.base import (
    HttpResponse,
    PreparedRequest,
    Provider,
    ProviderSettings,
    TargetParams,
    Verdict,
    judge_status,
    parse_body_json,
    short,
    shown,
    shown_message,
    url_join,
)

STATUS_PATH = "/api/v2/status.json"
HEALTHY = "none"
# The indicators Statuspage documents; anything else is not a Statuspage answer.
DEGRADED = frozenset({"minor", "major", "critical", "maintenance"})


class StatuspageSettings(ProviderSettings):
    """A public status page in the Statuspage format; no credentials."""

    type: Literal["statuspage"] = "statuspage"
    base_url: str = Field(
        description="The status page, e.g. https://www.githubstatus.com",
        examples=["https://www.githubstatus.com"],
    )


class StatuspageParams(TargetParams):
    """A status page takes no per-target parameters: the page is the provider's."""


class StatuspageProvider(Provider[StatuspageSettings, StatuspageParams]):
    """Success is HTTP 200 whose ``status.indicator`` is ``none``; the detail shows the
    indicator and the page's description either way."""

    type_name = "statuspage"
    settings_model = StatuspageSettings
    params_model = StatuspageParams

    def request(self, params: StatuspageParams, check_id: str) -> PreparedRequest:
        return PreparedRequest(
            method="GET",
            url=url_join(self.settings.base_url, STATUS_PATH),
            headers={"Accept": "application/json"},
        )

    def judge(
        self, params: StatuspageParams, request: PreparedRequest, response: HttpResponse
    ) -> Verdict:
        verdict = judge_status(response)
        if verdict is not None:
            return verdict
        if response.status != 200:
            return Verdict(ErrorClass.BAD_RESPONSE, f"HTTP {response.status}, expected 200")
        parsed = parse_body_json(response)
        body = parsed.value
        if not isinstance(body, dict):
            return Verdict(ErrorClass.BAD_RESPONSE, parsed.problem or "body is not a JSON object")
        status = body.get("status")
        if not isinstance(status, dict):
            return Verdict(ErrorClass.BAD_RESPONSE, "no status object in the body")
        return _judge_indicator(status.get("indicator"), status.get("description"))


def _judge_indicator(indicator: object, description: object) -> Verdict:
    said = f": {shown_message(description)}" if isinstance(description, str) else ""
    if indicator == HEALTHY:
        return Verdict(ErrorClass.NONE, short(f"{HEALTHY}{said}"))
    if isinstance(indicator, str) and indicator in DEGRADED:
        # The page answered and says the service is degraded: asking again will not help.
        return Verdict(ErrorClass.SERVER_ERROR, short(f"{indicator}{said}"), retry=False)
    return Verdict(ErrorClass.BAD_RESPONSE, f"status.indicator is {shown(indicator)}")


PROVIDER = StatuspageProvider
