"""Is a webhook request authentic? Pure functions of the request, the secret and the clock."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from dataclasses import dataclass
from typing import Any

from pingmon.jsonvalue import parse_json
from pingmon.webhooks.reasons import Reason


@dataclass(frozen=True, slots=True)
class Authentic:
    """A request that proved where it came from.

    ``event_type`` is the provider's name for the event; ``event_id`` the event's id when the
    delivery carries one; ``signed_at`` its signature's timestamp (epoch seconds), if signed.
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


def json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object (UTF-8, -16 or -32 as RFC 8259 and json detect them), or
    None; never raises, however deep or ambiguous the body (``parse_json``)."""
    try:
        text = body.decode(json.detect_encoding(body))
    except UnicodeDecodeError:
        return None
    value = parse_json(text).value
    return value if isinstance(value, dict) else None
