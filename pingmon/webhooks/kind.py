"""A provider type's webhook kind: what its ping makes the provider send, and how to take it.

A provider type whose ping sends a webhook declares one ``WebhookKind`` (``Provider.webhook``);
the configuration, the receiver and the tracker ask it and never the type's name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pingmon.webhooks.settings import WebhookSettings
from pingmon.webhooks.verify import Authentic, Refused

SettingsW = TypeVar("SettingsW", bound=WebhookSettings)

# (raw body, request headers (case-insensitive lookups), the path's segment after the target
# name or None, the target's webhook settings, the wall clock in epoch seconds) -> verdict.
# Pure: no I/O, never raises; a Refused detail never holds a secret or the body.
Verify = Callable[[bytes, Mapping[str, str], str | None, SettingsW, float], Authentic | Refused]


class Match(StrEnum):
    """How an authentic ping event finds the ping that caused it."""

    # The ping's answer names the event (Verdict.event_id) and the delivery carries the
    # same id (Authentic.event_id) with its signature's timestamp (Authentic.signed_at).
    BY_EVENT_ID = "by_event_id"
    # The delivery carries nothing to match: it closes the latest ping still waiting.
    LATEST = "latest"


@dataclass(frozen=True, slots=True)
class WebhookKind(Generic[SettingsW]):
    """A provider type's webhook, typed.

    ``settings_model`` is the ``webhook:`` block of a target (a ``WebhookSettings``);
    ``ping_event`` is the event type a ping causes (``Authentic.event_type``), compared
    case-insensitively when ``ping_event_folds_case``; ``verify`` proves a delivery authentic
    (``Verify``); ``match`` says how it finds its ping.
    """

    settings_model: type[SettingsW]
    ping_event: str
    verify: Verify[SettingsW]
    match: Match
    ping_event_folds_case: bool = False

    def is_ping(self, event: Authentic) -> bool:
        """Whether an authentic event is the one a ping causes."""
        if self.ping_event_folds_case:
            return event.event_type.casefold() == self.ping_event.casefold()
        return event.event_type == self.ping_event


AnyWebhookKind = WebhookKind[Any]
