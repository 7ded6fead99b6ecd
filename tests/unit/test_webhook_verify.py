"""Is a webhook request authentic? Stripe-Signature as stripe-python checks it, Simotel's HTTP
Basic and event name, and the allow-list of peers.

Every expected signature is computed here with hmac/hashlib, independently of pingmon's own
signing code, so that a wrong signer cannot agree with a wrong verifier.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from pingmon.webhooks.reasons import Reason
from pingmon.webhooks.settings import WebhookSettings, source_allowed
from pingmon.webhooks.simotel import is_simotel_ping, verify_simotel
from pingmon.webhooks.stripe import verify_stripe
from pingmon.webhooks.verify import Authentic, Refused

SECRET = "whsec_test_signing-secret-value"
OLD_SECRET = "whsec_test_rotated-out-secret-value"
TOLERANCE = 300.0
NOW = 1_800_000_000.0
SIGNED_AT = int(NOW) - 2
PING = "v2.core.event_destination.ping"

USER = "simotel-hook-user"
PASSWORD = "simotel-hook-password-secret"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """Stripe's v1 scheme, written out from its documentation: HMAC-SHA256 of ``t.body``."""
    signed_payload = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed_payload, hashlib.sha256).hexdigest()


def thin_event(**changes: object) -> bytes:
    event: dict[str, object] = {
        "id": "evt_test_65R9Ijk8rjsYfwNa5sZiXmGy9Ctn2Y9W0pSlU40ZMK4c",
        "object": "v2.core.event",
        "type": PING,
        "livemode": False,
        "created": "2026-11-23T10:00:00.000Z",
        "related_object": {
            "id": "ed_test_1",
            "type": "event_destination",
            "url": "/v2/core/event_destinations/ed_test_1",
        },
    }
    event.update(changes)
    return json.dumps({k: v for k, v in event.items() if v is not None}).encode()


BODY = thin_event()
EVENT_ID = json.loads(BODY)["id"]


def signed_header(body: bytes = BODY, timestamp: int = SIGNED_AT, secret: str = SECRET) -> str:
    return f"t={timestamp},v1={sign(body, secret, timestamp)}"


def stripe(body: bytes, header: str | None, now: float = NOW) -> Authentic | Refused:
    return verify_stripe(body, header, SECRET, TOLERANCE, now)


def reason(outcome: Authentic | Refused) -> Reason | None:
    return outcome.reason if isinstance(outcome, Refused) else None


# Stripe: valid deliveries.


def test_a_correctly_signed_thin_event_is_authentic_with_its_id_type_and_timestamp() -> None:
    assert stripe(BODY, signed_header()) == Authentic(
        event_type=PING, event_id=EVENT_ID, signed_at=SIGNED_AT
    )


@pytest.mark.parametrize("valid_position", [0, 1, 2])
def test_one_matching_v1_among_several_is_enough_as_during_a_secret_rotation(
    valid_position: int,
) -> None:
    signatures = [sign(BODY, OLD_SECRET, SIGNED_AT), "0" * 64]
    signatures.insert(valid_position, sign(BODY, SECRET, SIGNED_AT))
    header = f"t={SIGNED_AT}," + ",".join(f"v1={s}" for s in signatures)
    assert isinstance(stripe(BODY, header), Authentic)


def test_a_v0_beside_a_matching_v1_is_ignored() -> None:
    header = f"{signed_header()},v0={'f' * 64}"
    assert isinstance(stripe(BODY, header), Authentic)


def test_a_timestamp_from_the_future_is_accepted_as_the_sdk_does() -> None:
    future = int(NOW) + 3600
    assert stripe(BODY, signed_header(timestamp=future)) == Authentic(PING, EVENT_ID, future)


def test_a_timestamp_just_inside_the_tolerance_is_accepted() -> None:
    inside = int(NOW - TOLERANCE) + 1
    assert isinstance(stripe(BODY, signed_header(timestamp=inside)), Authentic)


def test_an_event_of_another_type_is_authentic_and_keeps_its_type() -> None:
    body = thin_event(type="v2.core.account.updated")
    outcome = stripe(body, signed_header(body))
    assert isinstance(outcome, Authentic)
    assert outcome.event_type == "v2.core.account.updated"


# Stripe: refusals, in the SDK's order.


@pytest.mark.parametrize("header", [None, "", "   "], ids=["missing", "empty", "blank"])
def test_no_stripe_signature_header_is_unsigned(header: str | None) -> None:
    assert reason(stripe(BODY, header)) is Reason.UNSIGNED


def test_only_a_v0_signature_is_a_bad_signature_even_if_it_would_match() -> None:
    header = f"t={SIGNED_AT},v0={sign(BODY, SECRET, SIGNED_AT)}"
    assert reason(stripe(BODY, header)) is Reason.BAD_SIGNATURE


@pytest.mark.parametrize(
    "header",
    [
        f"v1={sign(BODY, SECRET, SIGNED_AT)}",
        f"t=yesterday,v1={sign(BODY, SECRET, SIGNED_AT)}",
        f"t=,v1={sign(BODY, SECRET, SIGNED_AT)}",
        "garbage",
    ],
    ids=["no-t", "non-integer-t", "empty-t", "garbage"],
)
def test_an_unparsable_header_is_a_bad_signature(header: str) -> None:
    assert reason(stripe(BODY, header)) is Reason.BAD_SIGNATURE


def test_a_tampered_body_is_a_bad_signature() -> None:
    tampered = BODY.replace(b'"livemode": false', b'"livemode": true')
    assert tampered != BODY
    assert reason(stripe(tampered, signed_header())) is Reason.BAD_SIGNATURE


def test_a_signature_made_with_another_secret_is_a_bad_signature() -> None:
    assert reason(stripe(BODY, signed_header(secret=OLD_SECRET))) is Reason.BAD_SIGNATURE


def test_a_signature_over_another_timestamp_is_a_bad_signature() -> None:
    header = f"t={SIGNED_AT + 1},v1={sign(BODY, SECRET, SIGNED_AT)}"
    assert reason(stripe(BODY, header)) is Reason.BAD_SIGNATURE


def test_a_timestamp_older_than_the_tolerance_is_stale() -> None:
    old = int(NOW - TOLERANCE) - 1
    assert reason(stripe(BODY, signed_header(timestamp=old))) is Reason.STALE


def test_an_old_timestamp_with_a_wrong_signature_is_a_bad_signature_first() -> None:
    old = int(NOW - TOLERANCE) - 600
    header = f"t={old},v1={sign(BODY, OLD_SECRET, old)}"
    assert reason(stripe(BODY, header)) is Reason.BAD_SIGNATURE


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b"\xff\xfe\x00",
        b'["v2.core.event"]',
        b"",
        thin_event(object="event"),
        thin_event(object=None),
    ],
    ids=["text", "not-utf8", "array", "empty", "v1-event-object", "no-object"],
)
def test_a_correctly_signed_body_that_is_not_a_v2_event_is_a_bad_payload(body: bytes) -> None:
    assert reason(stripe(body, signed_header(body))) is Reason.BAD_PAYLOAD


@pytest.mark.parametrize(
    "body",
    [thin_event(id=None), thin_event(id=""), thin_event(id=42)],
    ids=["no-id", "empty-id", "number-id"],
)
def test_a_correctly_signed_event_without_a_string_id_is_a_bad_payload(body: bytes) -> None:
    assert reason(stripe(body, signed_header(body))) is Reason.BAD_PAYLOAD


def test_a_refusal_never_quotes_the_secret_the_signature_or_the_body() -> None:
    signature = sign(BODY, OLD_SECRET, SIGNED_AT)
    outcomes = [
        stripe(BODY, f"t={SIGNED_AT},v1={signature}"),
        stripe(BODY, f"t=x,v1={signature}"),
        stripe(BODY, signed_header(timestamp=int(NOW) - 3600)),
        stripe(b'{"secret": "body-value"}', signed_header(b'{"secret": "body-value"}')),
    ]
    details = " ".join(o.detail for o in outcomes if isinstance(o, Refused))
    assert [type(o) for o in outcomes] == [Refused] * 4
    for text in (SECRET, OLD_SECRET, signature, "body-value"):
        assert text not in details


# Simotel: HTTP Basic, then the event name.


def basic(user: str = USER, password: str = PASSWORD) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def simotel(
    body: bytes = b'{"event_name": "Ping"}',
    authorization: str | None = None,
    content_type: str = JSON,
    path_event: str | None = None,
) -> Authentic | Refused:
    if authorization is None:
        authorization = basic()
    return verify_simotel(body, authorization, content_type, path_event, USER, PASSWORD)


def test_a_json_ping_with_the_right_credentials_is_authentic() -> None:
    outcome = simotel()
    assert outcome == Authentic(event_type="Ping")
    assert is_simotel_ping(Authentic(event_type="Ping"))


@pytest.mark.parametrize("name", ["Ping", "ping", "PING", "pInG"])
def test_the_ping_event_name_is_case_insensitive(name: str) -> None:
    outcome = simotel(json.dumps({"event_name": name}).encode())
    assert outcome == Authentic(event_type=name)
    assert is_simotel_ping(Authentic(event_type=name))


def test_another_event_is_authentic_but_not_a_ping() -> None:
    outcome = simotel(b'{"event_name": "NewState", "exten": "100"}')
    assert outcome == Authentic(event_type="NewState")
    assert not is_simotel_ping(Authentic(event_type="NewState"))


def test_the_basic_scheme_name_is_case_insensitive() -> None:
    assert isinstance(simotel(authorization=basic().replace("Basic", "basic")), Authentic)


@pytest.mark.parametrize("authorization", ["", "Bearer some-token", "Basic ", "Basic"])
def test_no_basic_credentials_is_unsigned_with_401(authorization: str) -> None:
    outcome = simotel(authorization=authorization)
    assert isinstance(outcome, Refused)
    assert (outcome.reason, outcome.status) == (Reason.UNSIGNED, 401)


def test_a_missing_authorization_header_is_unsigned_with_401() -> None:
    outcome = verify_simotel(b'{"event_name": "Ping"}', None, JSON, None, USER, PASSWORD)
    assert isinstance(outcome, Refused)
    assert (outcome.reason, outcome.status) == (Reason.UNSIGNED, 401)


@pytest.mark.parametrize(
    "authorization",
    [basic(user="someone-else"), basic(password="wrong-password"), basic("", ""), basic(USER, "")],
    ids=["wrong-user", "wrong-password", "empty-both", "empty-password"],
)
def test_wrong_credentials_are_a_bad_signature_with_401(authorization: str) -> None:
    outcome = simotel(authorization=authorization)
    assert isinstance(outcome, Refused)
    assert (outcome.reason, outcome.status) == (Reason.BAD_SIGNATURE, 401)


def test_credentials_without_a_colon_are_a_bad_signature() -> None:
    no_colon = "Basic " + base64.b64encode(f"{USER}{PASSWORD}".encode()).decode()
    assert reason(simotel(authorization=no_colon)) is Reason.BAD_SIGNATURE


@pytest.mark.parametrize(
    "encoded", ["!!!not-base64!!!", "abc", base64.b64encode(b"\xff\xfe:\xff").decode()]
)
def test_unreadable_basic_credentials_are_a_bad_signature_with_401(encoded: str) -> None:
    outcome = simotel(authorization=f"Basic {encoded}")
    assert isinstance(outcome, Refused)
    assert (outcome.reason, outcome.status) == (Reason.BAD_SIGNATURE, 401)


@pytest.mark.parametrize(
    "body",
    [b"[" * 20_000 + b"]" * 20_000, b'{"event_name": "Ping", "event_name": "NewState"}'],
    ids=["20000-nested-arrays", "duplicate-key"],
)
def test_an_authentic_body_too_deep_or_ambiguous_is_a_bad_payload(body: bytes) -> None:
    assert reason(simotel(body)) is Reason.BAD_PAYLOAD


def test_credentials_are_checked_before_the_body_is_read() -> None:
    outcome = simotel(b"garbage", authorization=basic(password="wrong"))
    assert reason(outcome) is Reason.BAD_SIGNATURE


@pytest.mark.parametrize(
    "content_type", [FORM, f"{FORM}; charset=utf-8", "Application/X-WWW-Form-Urlencoded"]
)
def test_a_form_encoded_ping_of_older_versions_is_read(content_type: str) -> None:
    outcome = simotel(b"event_name=Ping&exten=100", content_type=content_type)
    assert outcome == Authentic(event_type="Ping")


def test_a_json_body_is_read_whatever_its_content_type_says() -> None:
    assert simotel(content_type="text/plain") == Authentic(event_type="Ping")


def test_rest4_takes_the_event_from_the_path_when_the_body_has_no_event_name() -> None:
    outcome = simotel(b'{"exten": "100"}', path_event="Ping")
    assert outcome == Authentic(event_type="Ping")


def test_an_empty_body_with_the_event_in_the_path_is_a_ping() -> None:
    assert simotel(b"", path_event="Ping") == Authentic(event_type="Ping")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", JSON),
        (b"\xff\xfe", JSON),
        (b'"Ping"', JSON),
        (b"[1, 2]", JSON),
        (b"no-equals-sign", FORM),
        (b"", JSON),
        (b'{"event_name": 5}', JSON),
        (b'{"event_name": ""}', JSON),
    ],
    ids=[
        "broken-json",
        "not-utf8",
        "json-string",
        "json-array",
        "bad-form",
        "empty",
        "number",
        "empty-name",
    ],
)
def test_an_authentic_body_without_a_readable_event_is_a_bad_payload(
    body: bytes, content_type: str
) -> None:
    assert reason(simotel(body, content_type=content_type)) is Reason.BAD_PAYLOAD


def test_a_simotel_refusal_never_quotes_the_credentials() -> None:
    outcomes = [
        simotel(authorization=basic(password="wrong-password-value")),
        simotel(authorization="Basic !!!"),
        simotel(authorization=""),
    ]
    details = " ".join(o.detail for o in outcomes if isinstance(o, Refused))
    assert len(details.split()) > 3
    for text in (USER, PASSWORD, "wrong-password-value"):
        assert text not in details


# The peer's address against allowed_sources.


def networks(*sources: str) -> WebhookSettings:
    return WebhookSettings(allowed_sources=sources)


@pytest.mark.parametrize("peer", ["203.0.113.9", "::1", None, "garbage"])
def test_an_empty_allow_list_allows_every_peer(peer: str | None) -> None:
    assert source_allowed(peer, networks().networks()) is True


@pytest.mark.parametrize(
    ("peer", "allowed"),
    [
        ("192.168.51.7", True),
        ("192.168.51.255", True),
        ("192.168.52.7", False),
        ("10.0.0.7", True),
        ("10.0.0.8", False),
        ("2001:db8::1", True),
        ("2001:db9::1", False),
    ],
)
def test_a_peer_is_allowed_only_inside_a_listed_network_or_address(
    peer: str, allowed: bool
) -> None:
    settings = networks("192.168.51.0/24", "10.0.0.7", "2001:db8::/32")
    assert source_allowed(peer, settings.networks()) is allowed


@pytest.mark.parametrize(
    ("peer", "allowed"), [("::ffff:192.168.51.7", True), ("::ffff:8.8.8.8", False)]
)
def test_an_ipv4_mapped_ipv6_peer_is_judged_by_its_ipv4_address(peer: str, allowed: bool) -> None:
    assert source_allowed(peer, networks("192.168.51.0/24").networks()) is allowed


@pytest.mark.parametrize("peer", [None, "", "garbage", "192.168.51", "192.168.51.7:443"])
def test_a_missing_or_unreadable_peer_is_refused_when_a_list_is_set(peer: str | None) -> None:
    assert source_allowed(peer, networks("192.168.51.0/24").networks()) is False
