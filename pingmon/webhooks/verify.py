"""Is a webhook request authentic? Pure functions of the request, the secret and the clock."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from pingmon.jsonvalue import parse_json
from pingmon.webhooks.reasons import Reason

STRIPE_SIGNATURE_SCHEME = "v1"
STRIPE_EVENT_OBJECT = "v2.core.event"
SIMOTEL_PING_EVENT = "ping"


@dataclass(frozen=True, slots=True)
class Authentic:
    """A request that proved where it came from.

    ``event_type`` is the provider's name for the event (Stripe's ``type``, Simotel's
    ``event_name``); ``event_id`` is Stripe's event id; ``signed_at`` the signature's timestamp.
    """

    event_type: str
    event_id: str | None = None
    signed_at: int | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """A request that is not counted, and why (``detail`` never holds a secret or the body)."""

    reason: Reason
    detail: str
    status: int | None = None  # None: the reason's usual status


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
    event = _json_object(body)
    if event is None or event.get("object") != STRIPE_EVENT_OBJECT:
        return Refused(Reason.BAD_PAYLOAD, "not a v2.core.event")
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
        return Refused(Reason.BAD_PAYLOAD, "the event has no id or type")
    return Authentic(event_type=event_type, event_id=event_id, signed_at=timestamp)


def verify_basic(authorization: str | None, username: str, password: str) -> Refused | None:
    """HTTP Basic credentials, compared in constant time; None when they match."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return Refused(Reason.UNSIGNED, "no Basic credentials", status=401)
    try:
        pair = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return Refused(Reason.BAD_SIGNATURE, "unreadable Basic credentials", status=401)
    given_user, _, given_password = pair.partition(":")
    user_ok = hmac.compare_digest(given_user.encode(), username.encode())
    password_ok = hmac.compare_digest(given_password.encode(), password.encode())
    if not (user_ok and password_ok):
        return Refused(Reason.BAD_SIGNATURE, "Basic credentials do not match", status=401)
    return None


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
    return event.event_type.lower() == SIMOTEL_PING_EVENT


def _simotel_fields(body: bytes, content_type: str) -> dict[str, Any] | None:
    if not body.strip():
        return {}
    if content_type.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(body.decode("utf-8"), strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            return None
        return {key: values[-1] for key, values in form.items()}
    return _json_object(body)


def _json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object (UTF-8, -16 or -32 as RFC 8259 and json detect them), or
    None; never raises, however deep or ambiguous the body (``parse_json``)."""
    try:
        text = body.decode(json.detect_encoding(body))
    except UnicodeDecodeError:
        return None
    value = parse_json(text).value
    return value if isinstance(value, dict) else None
