"""How a Stripe event destination delivers: the thin event, signed with ``Stripe-Signature``.

Signed here with hmac directly, never with pingmon's own verifier: the receiver and the
sandbox are two implementations of Stripe's scheme that must agree.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Final

from pingmon.sandbox.webhooks import (
    OLD_REPLAY,
    OLD_SIGNATURE_AGE_SECONDS,
    REPLAY,
    OutgoingWebhook,
)

WEBHOOK_CONTENT_TYPE: Final = "application/json; charset=utf-8"
WEBHOOK_USER_AGENT: Final = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


@dataclass(frozen=True)
class StripeWebhook:
    """Where an event destination delivers, and the secret (``whsec_…``) it signs with."""

    url: str
    signing_secret: str = field(repr=False)

    def requests(
        self, body: bytes, scenario: str, now: Callable[[], float] = time.time
    ) -> list[OutgoingWebhook]:
        """The requests one delivery of body makes under a webhook scenario, signed now."""
        timestamp = int(now())
        secret = self.signing_secret
        if scenario == "badly_signed":
            secret += "_not_the_signing_secret"
        if scenario == "stale":
            timestamp -= OLD_SIGNATURE_AGE_SECONDS
        first = self._request(body, stripe_signature(body, secret, timestamp))
        if scenario != "replayed":
            return [first]
        # A capture sent again at once (same bytes, same header), then one signed long ago.
        old = timestamp - OLD_SIGNATURE_AGE_SECONDS
        late = self._request(body, stripe_signature(body, secret, old))
        return [first, replace(first, copy=REPLAY), replace(late, copy=OLD_REPLAY)]

    def _request(self, body: bytes, signature: str) -> OutgoingWebhook:
        headers = {
            "Content-Type": WEBHOOK_CONTENT_TYPE,
            "User-Agent": WEBHOOK_USER_AGENT,
            "Stripe-Signature": signature,
        }
        return OutgoingWebhook(self.url, body, headers)


def stripe_signature(body: bytes, secret: str, timestamp: int) -> str:
    """``t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>">``, as Stripe signs."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def thin_event_body(event: dict[str, Any]) -> bytes:
    """The thin event a destination receives for a ping event, serialised once to be signed."""
    destination = event["related_object"]["id"]
    thin = {
        "id": event["id"],
        "object": "v2.core.event",
        "type": event["type"],
        "livemode": event["livemode"],
        "created": event["created"],
        "related_object": {
            "id": destination,
            "type": "event_destination",
            "url": f"/v2/core/event_destinations/{destination}",
        },
    }
    return json.dumps(thin).encode()
