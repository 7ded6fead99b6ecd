"""Basic auth as exporter-toolkit checks it, with its cache, and the cross-site test."""

from __future__ import annotations

import asyncio
import base64

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from pingmon import webauth
from pingmon.webauth import BasicAuthVerifier, cross_site
from pingmon.webconfig import BasicAuthUser, WebConfig
from tests.webfiles import bcrypt_hash


def users(**passwords: str) -> tuple[BasicAuthUser, ...]:
    return tuple(BasicAuthUser.of(name, bcrypt_hash(pw)) for name, pw in passwords.items())


def basic(user: str | bytes, password: str | bytes) -> str:
    raw = (user if isinstance(user, bytes) else user.encode()) + b":"
    raw += password if isinstance(password, bytes) else password.encode()
    return "Basic " + base64.b64encode(raw).decode()


@pytest.fixture
def bcrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The hashes bcrypt was asked to check against, in order (the real check still runs)."""
    calls: list[bytes] = []
    real = webauth._checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(webauth, "_checkpw", counting)
    return calls


USERS = users(prometheus="s3cret", grafana="other")


async def test_the_right_password_is_granted_and_a_wrong_one_refused() -> None:
    verifier = BasicAuthVerifier()
    assert await verifier.verify(USERS, basic("prometheus", "s3cret"))
    assert await verifier.verify(USERS, basic("grafana", "other"))
    assert not await verifier.verify(USERS, basic("prometheus", "other"))
    assert not await verifier.verify(USERS, basic("prometheus", "s3cret "))


async def test_a_repeated_scrape_pays_bcrypt_once(bcrypt_calls: list[bytes]) -> None:
    verifier = BasicAuthVerifier()
    for _ in range(5):
        assert await verifier.verify(USERS, basic("prometheus", "s3cret"))
    assert len(bcrypt_calls) == 1


async def test_a_repeated_wrong_password_pays_bcrypt_once(bcrypt_calls: list[bytes]) -> None:
    verifier = BasicAuthVerifier()
    for _ in range(5):
        assert not await verifier.verify(USERS, basic("prometheus", "guess"))
    assert len(bcrypt_calls) == 1


async def test_a_flood_of_wrong_passwords_never_evicts_a_granted_entry(
    bcrypt_calls: list[bytes],
) -> None:
    verifier = BasicAuthVerifier(granted_size=4, refused_size=8)
    assert await verifier.verify(USERS, basic("prometheus", "s3cret"))
    for guess in range(20):
        assert not await verifier.verify(USERS, basic("prometheus", f"guess-{guess}"))
    calls = len(bcrypt_calls)
    assert await verifier.verify(USERS, basic("prometheus", "s3cret"))
    assert len(bcrypt_calls) == calls


async def test_concurrent_scrapes_with_the_same_credentials_share_one_bcrypt(
    bcrypt_calls: list[bytes],
) -> None:
    verifier = BasicAuthVerifier()
    results = await asyncio.gather(
        *(verifier.verify(USERS, basic("prometheus", "s3cret")) for _ in range(10))
    )
    assert all(results)
    assert len(bcrypt_calls) == 1


async def test_an_unknown_user_costs_a_bcrypt_against_a_stand_in_hash(
    bcrypt_calls: list[bytes],
) -> None:
    verifier = BasicAuthVerifier()
    assert not await verifier.verify(USERS, basic("mallory", "fakepassword"))
    assert bcrypt_calls == [webauth.UNKNOWN_USER_HASH]


async def test_a_changed_hash_is_checked_again_not_taken_from_the_cache(
    bcrypt_calls: list[bytes],
) -> None:
    verifier = BasicAuthVerifier()
    assert await verifier.verify(USERS, basic("prometheus", "s3cret"))
    rotated = users(prometheus="new")
    assert not await verifier.verify(rotated, basic("prometheus", "s3cret"))
    assert await verifier.verify(rotated, basic("prometheus", "new"))
    assert len(bcrypt_calls) == 3


async def test_credentials_are_compared_as_the_utf8_bytes_sent() -> None:
    verifier = BasicAuthVerifier()
    accented = users(**{"zoë": "pässwörd"})
    assert await verifier.verify(accented, basic("zoë", "pässwörd"))
    assert not await verifier.verify(accented, basic("zoë".encode("latin1"), "pässwörd"))
    assert not await verifier.verify(accented, basic("zoë", "pässwörd".encode("latin1")))


async def test_a_password_over_72_bytes_is_refused_not_an_error() -> None:
    long = users(prometheus="x" * 72)
    verifier = BasicAuthVerifier()
    assert not await verifier.verify(long, basic("prometheus", "x" * 73))
    assert await verifier.verify(long, basic("prometheus", "x" * 72))


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer abc",
        "Basic",
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Digest username=prometheus",
    ],
)
async def test_anything_but_basic_credentials_is_refused(header: str | None) -> None:
    assert not await BasicAuthVerifier().verify(USERS, header)


async def test_no_users_grants_nothing() -> None:
    """protect() asks only when users are configured; the verifier itself never grants blind."""
    empty = WebConfig(source="web.yml")
    assert not await BasicAuthVerifier().verify(empty.users, basic("", ""))


def post(**headers: str) -> bool:
    request = make_mocked_request(
        "POST", "/-/reload", headers=CIMultiDict({"Host": "pingmon:9108", **headers})
    )
    return cross_site(request)


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
])  # fmt: skip
def test_a_form_post_from_another_origin_is_cross_site(content_type: str) -> None:
    assert post(**{"Origin": "https://evil.example", "Content-Type": content_type})


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({}, False),  # curl, Prometheus, kubectl: no browser headers
        ({"Sec-Fetch-Site": "cross-site"}, True),
        ({"Sec-Fetch-Site": "same-site"}, True),  # a sibling subdomain is another site's page
        ({"Sec-Fetch-Site": "same-origin"}, False),
        ({"Sec-Fetch-Site": "none"}, False),  # typed in the address bar, a bookmark
        ({"Sec-Fetch-Site": "same-origin", "Origin": "https://evil.example"}, False),
        ({"Origin": "http://pingmon:9108"}, False),
        ({"Origin": "http://PINGMON:9108"}, False),
        ({"Origin": "http://pingmon:9109"}, True),
        ({"Origin": "http://pingmon"}, True),
        ({"Origin": "null"}, True),  # a sandboxed iframe, a data: URL
        ({"Origin": "http://[::1"}, True),
    ],
)
def test_cross_site_follows_fetch_metadata_then_origin(
    headers: dict[str, str], refused: bool
) -> None:
    assert post(**headers) is refused
