"""Stripe's webhook kind: a thin ``v2.core.event`` signed with ``Stripe-Signature``.

Verified as stripe-python's ``WebhookSignature.verify_header`` does
(https://docs.stripe.com/webhooks#verify-manually); matched to its ping by event id.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from pydantic import Field

from pingmon.fields import Duration, Secret
from pingmon.webhooks.kind import Match, WebhookKind
from pingmon.webhooks.reasons import Reason
from pingmon.webhooks.settings import WebhookSettings
from pingmon.webhooks.verify import Authentic, Refused, json_object

# stripe-python's Webhook.DEFAULT_TOLERANCE, and what every official Stripe SDK uses.
STRIPE_DEFAULT_TOLERANCE_SECONDS = 300.0
STRIPE_SIGNATURE_SCHEME = "v1"
STRIPE_EVENT_OBJECT = "v2.core.event"
STRIPE_PING_EVENT = "v2.core.event_destination.ping"


class StripeWebhookSettings(WebhookSettings):
    """A Stripe event destination's endpoint: deliveries carry a ``Stripe-Signature``."""

    signing_secret: Secret = Field(description="The destination's signing secret, whsec_...")
    tolerance: Duration = Field(
        default=STRIPE_DEFAULT_TOLERANCE_SECONDS,
        description="How old a signature's timestamp may be (Stripe's SDKs: 5 minutes).",
    )

    def replay_window(self) -> float:
        """An accepted signature older than the tolerance is refused as stale anyway."""
        return self.tolerance


def stripe_signature(body: bytes, secret: str, timestamp: int) -> str:
    """The ``v1`` signature Stripe computes: HMAC-SHA256 of ``{timestamp}.{body}``, in hex."""
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def _signature_header(header: str) -> tuple[int, list[str]] | None:
    """``t`` and every ``v1`` of a ``Stripe-Signature`` header, parsed exactly as stripe-python
    does (items split at the first two ``=``, the first ``t`` wins, an item named ``t`` or
    ``v1`` without a value makes the header unparsable, other schemes such as ``v0`` are
    ignored); None when it is unparsable."""
    items = [item.split("=", 2) for item in header.split(",")]
    try:
        timestamps = [item[1] for item in items if item[0] == "t"]  # every one evaluated
        timestamp = int(timestamps[0])
        signatures = [item[1] for item in items if item[0] == STRIPE_SIGNATURE_SCHEME]
    except (IndexError, ValueError):
        return None
    return timestamp, signatures


def verify_stripe(
    body: bytes, header: str | None, secret: str, tolerance: float, now: float
) -> Authentic | Refused:
    """Verify a delivery the way stripe-python's ``WebhookSignature.verify_header`` does,
    in its order (header, scheme, signature, then the timestamp's age), then read the event.

    As in the SDK, only an old timestamp is refused, not one from the future: a valid
    signature proves the secret's holder made it.
    """
    if header is None or not header.strip():
        return Refused(Reason.UNSIGNED, "no Stripe-Signature header")
    parsed = _signature_header(header)
    if parsed is None:
        return Refused(Reason.BAD_SIGNATURE, "unable to extract timestamp and signatures")
    timestamp, signatures = parsed
    if not signatures:
        return Refused(Reason.BAD_SIGNATURE, "no signatures found with expected scheme v1")
    expected = stripe_signature(body, secret, timestamp).encode()
    # As bytes: a header may carry non-ASCII text, which compare_digest refuses as str.
    if not any(hmac.compare_digest(expected, c.encode("utf-8", "replace")) for c in signatures):
        return Refused(Reason.BAD_SIGNATURE, "no signature matches the payload")
    if tolerance and timestamp < now - tolerance:
        age = int(now - timestamp)
        return Refused(
            Reason.STALE, f"signature timestamp is {age}s old (tolerance {tolerance:g}s)"
        )
    event = json_object(body)
    if event is None or event.get("object") != STRIPE_EVENT_OBJECT:
        return Refused(Reason.BAD_PAYLOAD, "not a v2.core.event")
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
        return Refused(Reason.BAD_PAYLOAD, "the event has no id or type")
    return Authentic(event_type=event_type, event_id=event_id, signed_at=timestamp)


def _verify(
    body: bytes,
    headers: Mapping[str, str],
    path_event: str | None,
    settings: StripeWebhookSettings,
    now: float,
) -> Authentic | Refused:
    header = headers.get("Stripe-Signature")
    return verify_stripe(body, header, settings.signing_secret.reveal(), settings.tolerance, now)


STRIPE_WEBHOOK = WebhookKind(
    settings_model=StripeWebhookSettings,
    ping_event=STRIPE_PING_EVENT,
    verify=_verify,
    match=Match.BY_EVENT_ID,
)
