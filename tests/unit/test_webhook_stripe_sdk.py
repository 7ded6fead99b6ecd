"""pingmon's Stripe-Signature verification decides as Stripe's official SDK does.

stripe-python's ``WebhookSignature.verify_header`` is the reference. For bodies, secrets,
timestamps and headers drawn by Hypothesis (valid, tampered, re-signed, truncated, garbage),
pingmon accepts exactly what the SDK accepts, and refuses what it refuses with the reason the
SDK's message names; an empty header, which the SDK cannot parse, pingmon calls unsigned.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from pingmon.webhooks.reasons import Reason
from pingmon.webhooks.stripe import verify_stripe
from pingmon.webhooks.verify import Authentic, Refused

stripe = pytest.importorskip("stripe")
WebhookSignature = stripe.WebhookSignature
SignatureVerificationError = stripe.SignatureVerificationError

TOLERANCE = 300
SDK_REASONS = {
    "Unable to extract timestamp and signatures from header": Reason.BAD_SIGNATURE,
    "No signatures found with expected scheme v1": Reason.BAD_SIGNATURE,
    "No signatures found matching the expected signature for payload": Reason.BAD_SIGNATURE,
    "Timestamp outside the tolerance zone": Reason.STALE,
}


def signature_header(body: str, secret: str, timestamp: int) -> str:
    """``t=...,v1=...`` as Stripe sends it (stripe-python 15 has no signer of its own)."""
    signed = f"{timestamp}.{body}".encode()
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def thin_event(event_id: str) -> str:
    return json.dumps({"id": event_id, "object": "v2.core.event", "type": "v2.core.x"})


def sdk_verdict(body: str, header: str, secret: str, now: float) -> Reason | None:
    """None when the SDK accepts; else the reason its message corresponds to."""
    original = time.time
    time.time = lambda: now  # the SDK reads time.time() for the tolerance
    try:
        WebhookSignature.verify_header(body, header, secret, TOLERANCE)
    except SignatureVerificationError as error:
        message = str(error.user_message or error)
        return next(r for text, r in SDK_REASONS.items() if message.startswith(text))
    except (TypeError, UnicodeEncodeError):
        return Reason.BAD_SIGNATURE  # the SDK's compare_digest refuses non-ASCII text
    finally:
        time.time = original
    return None


def pingmon_verdict(body: str, header: str, secret: str, now: float) -> Reason | None:
    outcome = verify_stripe(body.encode(), header, secret, TOLERANCE, now)
    if isinstance(outcome, Authentic):
        return None
    assert isinstance(outcome, Refused)
    return outcome.reason


secrets = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=40)
event_ids = st.text("abcdefghijklmnopqrstuvwxyzABCDEF0123456789", min_size=1, max_size=30)
ages = st.integers(min_value=-600, max_value=900)
header_noise = st.text(st.sampled_from("tv01=, x9é"), max_size=30)


def mutate(header: str, how: int, noise: str, other: str) -> str:
    """One of the ways a header reaches a receiver: intact, tampered, extended, or junk."""
    variants = [
        header,
        header + "," + other,  # a second v1 (a secret being rolled) after the real one
        other + "," + header,
        header.replace("v1=", "v0="),  # only the legacy scheme
        header[: len(header) // 2],  # truncated
        header + "," + noise,
        noise,
        header.replace("t=", "t= ", 1),  # int() reads " 12" as 12, in the SDK too
        header[:-1] + ("0" if header[-1] != "0" else "1"),  # one hex digit changed
        "t=" + noise + "," + header,  # a first t that is not a number
        header + "=" + noise,  # the SDK reads a value only up to a second "="
    ]
    return variants[how % len(variants)]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    secret=secrets,
    other_secret=secrets,
    event_id=event_ids,
    age=ages,
    how=st.integers(min_value=0, max_value=10),
    noise=header_noise,
)
# The edges, always tried: the tolerance's bound on both sides, a value with a second "=",
# an item named t or v1 with no value, a second t that is not a number.
@example(secret="s", other_secret="o", event_id="e", age=300, how=0, noise="")
@example(secret="s", other_secret="o", event_id="e", age=301, how=0, noise="")
@example(secret="s", other_secret="o", event_id="e", age=0, how=10, noise="x")
@example(secret="s", other_secret="o", event_id="e", age=0, how=5, noise="v1")
@example(secret="s", other_secret="o", event_id="e", age=0, how=5, noise="t")
@example(secret="s", other_secret="o", event_id="e", age=0, how=5, noise="t=x")
@example(secret="s", other_secret="o", event_id="e", age=0, how=5, noise="v1=é")
def test_pingmon_judges_every_header_as_stripe_python_does(
    secret: str, other_secret: str, event_id: str, age: int, how: int, noise: str
) -> None:
    now = 1_800_000_000.0
    body = thin_event(event_id)
    signed = signature_header(body, secret, int(now) - age)
    other = signature_header(body, other_secret, int(now))
    header = mutate(signed, how, noise, other.split(",", 1)[1])
    expected = sdk_verdict(body, header, secret, now)
    if not header.strip():
        expected = Reason.UNSIGNED
    assert pingmon_verdict(body, header, secret, now) == expected


@given(event_id=event_ids, tampered=event_ids)
def test_a_body_signed_for_another_event_is_refused_by_both(event_id: str, tampered: str) -> None:
    now = 1_800_000_000.0
    header = signature_header(thin_event(event_id), "whsec_x", int(now))
    body = thin_event(tampered)
    expected = None if tampered == event_id else Reason.BAD_SIGNATURE
    assert pingmon_verdict(body, header, "whsec_x", now) == expected
    assert sdk_verdict(body, header, "whsec_x", now) == expected
