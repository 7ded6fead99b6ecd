"""Masking: every wire form of every secret, pieces left at a cut, and nothing else."""

from __future__ import annotations

import base64
import html
import json
import re
import secrets
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, strategies as st

from pingmon.redaction import (
    MARKER,
    MIN_FORM_CHARS,
    MIN_PIECE_CHARS,
    NO_REDACTION,
    Redactor,
    basic_token,
    credentials,
    wire_forms,
)

TOKEN = "tok-7f3a9c1e5b"
USER, PASSWORD = "apiuser", "Hunter2/pbx+key"
PAIR = f"{USER}:{PASSWORD}"
BASIC = "Basic " + base64.b64encode(PAIR.encode()).decode()


def masked(values: list[str], text: str) -> str:
    return Redactor(values).mask(text)


# --- the credentials a wire value carries ------------------------------------------------


@pytest.mark.parametrize(
    ("value", "carried"),
    [
        (f"Bearer {TOKEN}", TOKEN),  # RFC 9110 §11.4: the part after the auth-scheme
        (f"bearer   {TOKEN}", TOKEN),
        (f"Token {TOKEN}", TOKEN),
        (f"SSWS {TOKEN}", TOKEN),  # any scheme, not only the registered ones
        (BASIC, PAIR),  # RFC 7617: base64 of user:password
        (BASIC, PASSWORD),
        (BASIC, BASIC.removeprefix("Basic ").rstrip("=")),  # echoed without its padding
        (
            'Digest username="bob", response="6629fae49393a05397450978507c4ef1"',
            "6629fae49393a05397450978507c4ef1",
        ),
        ("CANARY%2Furlpw", "CANARY/urlpw"),  # a URL password as written, and decoded
        ("two  spaces\tand a tab", "two spaces and a tab"),  # as a detail flattens it
    ],
)
def test_a_wire_value_carries_its_credentials(value: str, carried: str) -> None:
    forms = wire_forms(value)

    assert any(carried in form for form in forms)
    assert masked([value], f"server said: {carried}!") == f"server said: {MARKER}!"


def test_the_public_lead_of_a_compound_is_never_masked_as_a_piece() -> None:
    # A user name or an auth-scheme is no secret: "apiuser" or "Bearer" ending a text is not
    # what is left of "apiuser:password" or "Bearer tok-..." cut short.
    assert USER not in credentials(BASIC)
    assert masked([BASIC], f"hello {USER}") == f"hello {USER}"
    assert masked([f"Bearer {TOKEN}"], "expected Bearer") == "expected Bearer"
    assert masked([BASIC], f"hello {USER}:{PASSWORD[:7]}") == f"hello {USER}:{MARKER}"


# --- encodings ---------------------------------------------------------------------------


SECRET = "CANARY+key/0123é\"'\\"


@pytest.mark.parametrize(
    "echoed",
    [
        SECRET,
        quote(SECRET, safe=""),
        re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quote(SECRET, safe="")),
        quote_plus(SECRET),
        json.dumps(SECRET)[1:-1],  # \u00e9, \", \\
        json.dumps(SECRET, ensure_ascii=False)[1:-1],
        json.dumps(SECRET)[1:-1].replace("/", "\\/"),  # PHP's json_encode
        html.escape(SECRET),  # an HTML error page
        repr(SECRET.encode())[2:-1],  # aiohttp's parser errors quote b'...'
        repr(SECRET)[1:-1],  # a judge's {value!r}
        repr(json.dumps(SECRET)[1:-1].replace("/", "\\/"))[1:-1],  # {echoed-json!r}
    ],
)
def test_every_encoding_a_server_or_pingmon_quotes_a_secret_in_is_masked(echoed: str) -> None:
    assert masked([SECRET], f"<{echoed}>") == f"<{MARKER}>"


def test_the_basic_token_is_masked_with_its_percent_and_json_forms() -> None:
    token = BASIC.removeprefix("Basic ")
    for echoed in (token, quote(token, safe=""), json.dumps(token)[1:-1].replace("/", "\\/")):
        assert masked([BASIC], f"got {echoed} here") == f"got {MARKER} here"


def test_basic_token_encodes_as_aiohttp_does() -> None:
    assert basic_token("u", "pé") == base64.b64encode("u:pé".encode("latin-1")).decode()
    assert basic_token("u", "p€") == base64.b64encode("u:p€".encode()).decode()


# --- short values ------------------------------------------------------------------------


def test_a_whole_short_secret_is_masked_however_short() -> None:
    assert masked(["ab"], "table ab") == f"t{MARKER}le {MARKER}"


def test_a_short_form_derived_from_a_secret_is_not_masked_alone() -> None:
    # The token part of "Bearer abc" is 3 characters: masked only as part of the whole.
    assert len("abc") < MIN_FORM_CHARS
    assert masked(["Bearer abc"], "abc is in Bearer abc") == f"abc is in {MARKER}"


def test_an_empty_value_masks_nothing() -> None:
    assert not Redactor(["", ""])
    assert Redactor([""]).mask("anything") == "anything"
    assert NO_REDACTION.mask("anything") == "anything"


# --- one pass, longest first -------------------------------------------------------------


def test_a_secret_inside_a_longer_form_becomes_one_marker() -> None:
    text = f"Authorization: Bearer {TOKEN}; again {TOKEN}"

    assert masked([f"Bearer {TOKEN}"], text) == f"Authorization: {MARKER}; again {MARKER}"


def test_overlapping_and_adjacent_secrets_become_one_marker() -> None:
    assert masked(["abcd1234", "1234wxyz"], "xx abcd1234wxyz yy") == f"xx {MARKER} yy"
    assert masked(["abcd1234"], "abcd1234abcd1234") == MARKER


def test_a_marker_is_never_masked_again() -> None:
    assert masked(["*****"], f"a {MARKER} b") == f"a {MARKER} b"


# --- pieces left by someone else's cut ---------------------------------------------------

KEY = "sk_test_CANARY0123456789abcdef"


@pytest.mark.parametrize(
    "text",
    [
        f"b'yyyy{KEY[:12]}...'",  # aiohttp: the first 100 bytes of a long line, then ...
        f"quoted {KEY[:-3]}\u2026 and more",
        f"the key ends the text {KEY[:MIN_PIECE_CHARS]}",
        f"...{KEY[-10:]} was the end of it",
        f"{KEY[-MIN_PIECE_CHARS:]} starts the text",
    ],
)
def test_a_piece_of_a_secret_at_a_cut_is_masked(text: str) -> None:
    result = masked([KEY], text)

    assert MARKER in result
    assert "CANARY" not in result
    assert KEY[-MIN_PIECE_CHARS:] not in result


def test_a_piece_shorter_than_the_minimum_or_away_from_a_cut_stays() -> None:
    short_piece = KEY[: MIN_PIECE_CHARS - 1]
    assert masked([KEY], f"ends in {short_piece}") == f"ends in {short_piece}"
    assert masked([KEY], f"a {KEY[:12]} in the middle") == f"a {KEY[:12]} in the middle"


# --- the whole kind ----------------------------------------------------------------------

TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=60)
# A secret inside the marker itself ("********") is "found" in every masked text.
SECRETS = st.text(alphabet=st.characters(codec="utf-8"), min_size=8, max_size=40).filter(
    lambda secret: secret not in MARKER
)


@given(SECRETS, TEXT, TEXT)
def test_a_secret_is_masked_wherever_it_sits_in_any_text(
    secret: str, before: str, after: str
) -> None:
    result = masked([secret], before + secret + after)

    assert secret not in result
    assert MARKER in result


@given(SECRETS, TEXT, TEXT, st.sampled_from(["json", "percent", "repr", "bytes"]))
def test_an_encoded_secret_is_masked_wherever_it_sits(
    secret: str, before: str, after: str, encoding: str
) -> None:
    encoded = {
        "json": json.dumps(secret)[1:-1],
        "percent": quote(secret, safe=""),
        "repr": repr(secret)[1:-1],
        "bytes": repr(secret.encode())[2:-1],
    }[encoding]

    assert encoded not in masked([secret], before + encoded + after)


def test_many_secrets_are_each_masked() -> None:
    keys = [f"sk_live_{secrets.token_urlsafe(24)}" for _ in range(2000)]
    redactor = Redactor(keys)

    text = " | ".join(keys[::100])
    assert redactor.mask(text) == " | ".join([MARKER] * 20)


def test_a_redactor_never_shows_what_it_masks() -> None:
    redactor = Redactor([KEY, BASIC])

    assert KEY not in repr(redactor)
    assert PASSWORD not in repr(redactor)
    assert redactor.extended([]) is redactor
    assert redactor.extended([KEY]) is redactor
    assert redactor.extended(["another-secret"]).mask("another-secret") == MARKER
