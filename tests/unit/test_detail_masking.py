"""What a check's detail may show: every provider's credentials in every form they are
sent, masked before the detail is cut; a base_url password nowhere."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import pytest
from yarl import URL

from pingmon.client import describe
from pingmon.providers import PROVIDER_TYPES, Provider
from pingmon.providers.base import DETAIL_MAX_CHARS, short, url_credentials, without_password
from pingmon.redaction import MARKER, Redactor
from pingmon.runner import DETAIL_SCAN_CHARS, DetailMemo, final_detail

KEY = "sk_test_CANARY0123456789abcdef"


def provider(**settings: Any) -> Provider[Any, Any]:
    model = PROVIDER_TYPES[settings["type"]].settings_model
    return PROVIDER_TYPES[settings["type"]](model.model_validate(settings))


def detail_of(prov: Provider[Any, Any], text: str) -> str:
    return final_detail(Redactor(prov.wire_secrets()), text)


# --- masked, then cut --------------------------------------------------------------------


def test_short_only_flattens_white_space_and_never_cuts() -> None:
    text = "a\n b\t" + "c" * 500

    assert short(text) == "a b " + "c" * 500


@pytest.mark.parametrize("offset", range(DETAIL_MAX_CHARS - len(KEY), DETAIL_MAX_CHARS + 2))
def test_a_key_across_the_200_character_cut_leaves_nothing_of_itself(offset: int) -> None:
    # Cutting first left all but the key's last character (issue 10 §4).
    text = "x" * offset + KEY + " and some more text after it"

    shown = final_detail(Redactor([KEY]), text)

    assert len(shown) <= DETAIL_MAX_CHARS
    assert "CANARY" not in shown
    assert "sk_test_" not in shown
    assert shown.startswith("x" * min(offset, DETAIL_MAX_CHARS - 3))


def test_a_short_detail_is_masked_and_kept_whole() -> None:
    assert final_detail(Redactor([KEY]), f"HTTP 401:\n bad key {KEY}") == (
        f"HTTP 401: bad key {MARKER}"
    )


def test_a_huge_detail_is_masked_within_bounds_up_to_its_cut() -> None:
    text = (KEY + " ") * (DETAIL_SCAN_CHARS // len(KEY) + 5)

    shown = final_detail(Redactor([KEY]), text)

    assert "CANARY" not in shown
    assert shown.startswith(f"{MARKER} {MARKER} ")


def test_a_targets_kept_detail_is_the_final_detail_of_each_check_in_turn() -> None:
    """A plan's DetailMemo gives what final_detail gives, check after check, a detail that
    repeats, changes and comes back included, masked every time."""
    redactor = Redactor([KEY])
    memo = DetailMemo()
    details = ["HTTP 200", "HTTP 200", f"HTTP 401: {KEY}", f"HTTP 401: {KEY}", "HTTP 200", ""]
    for detail in details:
        assert memo(redactor, detail) == final_detail(redactor, detail)
    assert memo(redactor, f"bad key\n{KEY}") == f"bad key {MARKER}"


# --- every provider type says what it sends ----------------------------------------------


def test_stripe_sends_its_key() -> None:
    stripe = provider(type="stripe", api_key=KEY)

    assert detail_of(stripe, f"Invalid API Key provided: {KEY}") == (
        f"Invalid API Key provided: {MARKER}"
    )


def test_simotel_sends_its_key_and_a_basic_pair_of_its_username_and_password() -> None:
    simotel = provider(
        type="simotel", base_url="http://pbx", api_key="apikey-0123456789",
        username="apiuser", password="Hunter2-pbx",
    )  # fmt: skip
    token = base64.b64encode(b"apiuser:Hunter2-pbx").decode()

    for echoed in ("apikey-0123456789", token, f"Basic {token}", "apiuser:Hunter2-pbx"):
        assert detail_of(simotel, f"rejected {echoed} here") == f"rejected {MARKER} here"


def test_an_http_header_is_masked_with_its_token_part() -> None:
    http = provider(type="http", base_url="http://h", headers={"Authorization": "Bearer tok-0123"})

    assert detail_of(http, "token tok-0123 is expired") == f"token {MARKER} is expired"


@pytest.mark.parametrize(
    ("base_url", "sent"),
    [
        ("http://u:pw%2Fsecret@h", ["pw%2Fsecret", "pw/secret", "u:pw/secret"]),
        ("http://tok-0123456@h/api", ["tok-0123456"]),  # a user alone is a token
    ],
)
def test_a_base_url_password_is_masked_as_written_decoded_and_as_basic(
    base_url: str, sent: list[str]
) -> None:
    http = provider(type="http", base_url=base_url)
    url = URL(base_url)
    # As aiohttp sends a URL's userinfo (helpers.strip_auth_from_url: latin-1).
    token = aiohttp.encode_basic_auth(url.user or "", url.password or "", encoding="latin1")

    for echoed in (*sent, token, token.removeprefix("Basic ")):
        assert detail_of(http, f"[{echoed}]") == f"[{MARKER}]"


def test_a_base_url_without_userinfo_is_no_secret() -> None:
    assert url_credentials("https://api.example.com/v1") == ()
    assert url_credentials("not a url [") == ()
    assert provider(type="http", base_url="https://h").wire_secrets() == ()


# --- base_url password in repr and dumps -------------------------------------------------


@pytest.mark.parametrize("base_url", ["http://u:CANARYpw1@h:9999/x", "http://CANARYtok@h"])
def test_settings_never_show_a_base_url_password(base_url: str) -> None:
    settings = PROVIDER_TYPES["http"].settings_model.model_validate(
        {"type": "http", "base_url": base_url}
    )

    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert "CANARY" not in shown
        assert MARKER in shown
    assert "CANARY" not in str(settings.model_dump())
    assert settings.base_url == base_url  # what the requests use is untouched


def test_without_password_keeps_the_user_and_everything_else() -> None:
    assert without_password("https://u:p@h:8443/a?b=1#c") == f"https://u:{MARKER}@h:8443/a?b=1#c"
    assert without_password("https://h/a") == "https://h/a"


# --- transport errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        aiohttp.InvalidUrlClientError("http://u:CANARYpw1@127.0.0.1:99999/x"),
        aiohttp.NonHttpUrlClientError(URL("ftp://u:CANARYpw2@127.0.0.1/")),
        aiohttp.InvalidURL("http://CANARYtok@h:99999"),
    ],
)
def test_a_transport_error_never_describes_url_userinfo(error: Exception) -> None:
    said = describe(error)

    assert "CANARY" not in said
    assert "127.0.0.1" in said or "h:99999" in said
