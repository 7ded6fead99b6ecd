"""Simotel's webhook kind: Event Webhooks with HTTP Basic, the Ping event matched to the
latest ping waiting (it carries nothing to match by)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from pydantic import Field

from pingmon.fields import Secret
from pingmon.webhooks.kind import Match, WebhookKind
from pingmon.webhooks.reasons import Reason
from pingmon.webhooks.settings import WebhookSettings
from pingmon.webhooks.verify import Authentic, Refused, json_object, verify_basic

SIMOTEL_PING_EVENT = "ping"


class SimotelWebhookSettings(WebhookSettings):
    """Simotel's Event Webhooks authenticate with HTTP Basic ("API Username"/"API Password")
    and nothing else: no signature, no timestamp."""

    username: Secret = Field(description="Simotel's Event Webhooks 'API Username'.")
    password: Secret = Field(description="Simotel's Event Webhooks 'API Password'.")


def verify_simotel(
    body: bytes,
    authorization: str | None,
    content_type: str,
    path_event: str | None,
    username: str,
    password: str,
) -> Authentic | Refused:
    """Simotel's Event Webhooks: HTTP Basic, then the event name from the JSON body (v4:
    G4 and Rest4), a form body (older versions) or, for Rest4, the path's last segment."""
    refused = verify_basic(authorization, username, password)
    if refused is not None:
        return refused
    fields = _simotel_fields(body, content_type)
    if fields is None:
        return Refused(Reason.BAD_PAYLOAD, "body is neither a JSON object nor a form")
    event_name = fields.get("event_name", path_event)
    if not isinstance(event_name, str) or not event_name:
        return Refused(Reason.BAD_PAYLOAD, "no event_name")
    return Authentic(event_type=event_name)


def is_simotel_ping(event: Authentic) -> bool:
    return SIMOTEL_WEBHOOK.is_ping(event)


def _simotel_fields(body: bytes, content_type: str) -> dict[str, Any] | None:
    if not body.strip():
        return {}
    if content_type.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(body.decode("utf-8"), strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            return None
        return {key: values[-1] for key, values in form.items()}
    return json_object(body)


def _verify(
    body: bytes,
    headers: Mapping[str, str],
    path_event: str | None,
    settings: SimotelWebhookSettings,
    now: float,
) -> Authentic | Refused:
    return verify_simotel(
        body,
        headers.get("Authorization"),
        headers.get("Content-Type", ""),
        path_event,
        settings.username.reveal(),
        settings.password.reveal(),
    )


SIMOTEL_WEBHOOK = WebhookKind(
    settings_model=SimotelWebhookSettings,
    ping_event=SIMOTEL_PING_EVENT,
    verify=_verify,
    match=Match.LATEST,
    ping_event_folds_case=True,
)
