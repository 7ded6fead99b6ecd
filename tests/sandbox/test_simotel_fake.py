"""The Simotel fake answers ``POST /api/v4/setting/ping/act`` as the v4 settings page says."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from pingmon.sandbox import SimotelAccount, SimotelFake
from pingmon.sandbox.simotel import PING_MESSAGE

from . import SIMOTEL, Answer, basic, fetch

PATH = "/api/v4/setting/ping/act"
JSON = "application/json"


@pytest.fixture
async def simotel() -> AsyncIterator[SimotelFake]:
    async with SimotelFake(credentials=SIMOTEL) as fake:
        yield fake


def credentials(account: SimotelAccount) -> dict[str, str]:
    """Both headers, which every auth mode accepts when they are right."""
    return {
        "Authorization": basic(account.username, account.password),
        "X-APIKEY": account.api_key,
    }


async def ping(
    session: aiohttp.ClientSession,
    simotel: SimotelFake,
    headers: dict[str, str] | None = None,
    *,
    method: str = "POST",
    data: bytes | None = b"{}",
    content_type: str = JSON,
    path: str = PATH,
) -> Answer:
    sent = {"Content-Type": content_type, **credentials(SIMOTEL.both)}
    if headers is not None:
        sent = {"Content-Type": content_type, **headers}
    return await fetch(session, method, simotel.url + path, headers=sent, data=data)


def failure(message: str) -> dict[str, object]:
    return {"success": 0, "message": message, "data": None}


async def test_simotel_ping_with_both_credentials_returns_the_documented_success(
    session: aiohttp.ClientSession, simotel: SimotelFake
) -> None:
    answer = await ping(session, simotel)
    assert answer.status == 200
    assert answer.body == {"success": 1, "message": PING_MESSAGE, "data": None}


async def test_simotel_basic_account_accepts_basic_auth_alone(
    session: aiohttp.ClientSession, simotel: SimotelFake
) -> None:
    only_basic = {"Authorization": basic(SIMOTEL.basic.username, SIMOTEL.basic.password)}
    answer = await ping(session, simotel, only_basic)
    assert answer.status == 200


async def test_simotel_token_account_accepts_the_api_key_alone(
    session: aiohttp.ClientSession, simotel: SimotelFake
) -> None:
    answer = await ping(session, simotel, {"X-APIKEY": SIMOTEL.token.api_key})
    assert answer.status == 200


async def test_simotel_api_key_header_name_is_case_insensitive(
    session: aiohttp.ClientSession, simotel: SimotelFake
) -> None:
    answer = await ping(session, simotel, {"X-ApiKey": SIMOTEL.token.api_key})
    assert answer.status == 200


async def test_simotel_no_credentials_is_401_missing(
    session: aiohttp.ClientSession, simotel: SimotelFake
) -> None:
    answer = await ping(session, simotel, {})
    assert answer.status == 401
    assert answer.body == failure("BasicAuth or ApiKey is missing")


async def test_simotel_both_account_with_basic_only_is_401_invalid(
    session: aiohttp.ClientSession, simotel: SimotelFake
) -> None:
    only_basic = {"Authorization": basic(SIMOTEL.both.username, SIMOTEL.both.password)}
    answer = await ping(session, simotel, only_basic)
    assert answer.status == 401
    assert answer.body == failure("BasicAuth or ApiKey is invalid")


async def test_simotel_wrong_password_is_401_invalid(
    session: aiohttp.ClientSession, simotel: SimotelFake
) -> None:
    answer = await ping(session, simotel, {"Authorization": basic(SIMOTEL.basic.username, "nope")})
    assert answer.status == 401
    assert answer.body == failure("BasicAuth or ApiKey is invalid")


async def test_simotel_account_without_ping_permission_is_403_access_denied(
    session: aiohttp.ClientSession, simotel: SimotelFake
) -> None:
    answer = await ping(session, simotel, credentials(SIMOTEL.no_ping))
    assert answer.status == 403
    assert answer.body == failure("setting/ping/act;Access denied")


async def test_simotel_client_ip_outside_the_allowlist_is_403(
    session: aiohttp.ClientSession, simotel: SimotelFake
) -> None:
    simotel.allowed_ips = {"192.168.51.1"}
    answer = await ping(session, simotel)
    assert answer.status == 403
    assert answer.body == failure("IP is not permitted")


async def test_simotel_get_is_405_method_not_allowed(
    session: aiohttp.ClientSession, simotel: SimotelFake
) -> None:
    answer = await ping(session, simotel, method="GET", data=None)
    assert answer.status == 405
    assert answer.body == failure("Method not allowed")


async def test_simotel_put_is_405_unless_the_fake_accepts_it(
    session: aiohttp.ClientSession, simotel: SimotelFake
) -> None:
    refused = await ping(session, simotel, method="PUT")
    simotel.accept_put = True
    accepted = await ping(session, simotel, method="PUT")
    assert (refused.status, accepted.status) == (405, 200)


async def test_simotel_wrong_content_type_is_415(
    session: aiohttp.ClientSession, simotel: SimotelFake
) -> None:
    answer = await ping(session, simotel, content_type="text/plain")
    assert answer.status == 415
    assert answer.body == failure("Unsupported Media Type")


async def test_simotel_unparsable_body_is_400(
    session: aiohttp.ClientSession, simotel: SimotelFake
) -> None:
    answer = await ping(session, simotel, data=b"{not json")
    assert answer.status == 400
    assert answer.body == failure("Unable to parse content")


async def test_simotel_empty_body_is_read_as_an_empty_object(
    session: aiohttp.ClientSession, simotel: SimotelFake
) -> None:
    answer = await ping(session, simotel, data=b"")
    assert answer.status == 200


async def test_simotel_empty_body_is_400_when_the_fake_is_strict(
    session: aiohttp.ClientSession, simotel: SimotelFake
) -> None:
    simotel.empty_body_is_error = True
    answer = await ping(session, simotel, data=b"")
    assert answer.status == 400


async def test_simotel_accepts_the_official_sdks_list_body(
    session: aiohttp.ClientSession, simotel: SimotelFake
) -> None:
    answer = await ping(session, simotel, data=b'[""]')
    assert answer.status == 200


async def test_simotel_unknown_v4_service_is_501(
    session: aiohttp.ClientSession, simotel: SimotelFake
) -> None:
    answer = await ping(session, simotel, path="/api/v4/setting/pong/act")
    assert answer.status == 501
    assert answer.body == failure("Requested service does not exist")


async def test_simotel_wrong_prefix_is_apaches_html_404(
    session: aiohttp.ClientSession, simotel: SimotelFake
) -> None:
    answer = await ping(session, simotel, path="/api/v3/setting/ping/act")
    assert answer.status == 404
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "<title>404 Not Found</title>" in answer.text


async def test_simotel_authentication_comes_before_the_scenario(
    session: aiohttp.ClientSession, simotel: SimotelFake
) -> None:
    simotel.set_scenario("*", "server_error")
    answer = await ping(session, simotel, {})
    assert answer.status == 401


async def test_simotel_scenario_key_of_a_token_is_the_account_it_belongs_to(
    session: aiohttp.ClientSession, simotel: SimotelFake
) -> None:
    simotel.set_scenario(SIMOTEL.token.username, "server_error")
    answer = await ping(session, simotel, {"X-APIKEY": SIMOTEL.token.api_key})
    assert answer.status == 500
    assert simotel.count(SIMOTEL.token.username) == 1


async def test_simotel_bad_body_is_200_with_success_0(
    session: aiohttp.ClientSession, simotel: SimotelFake
) -> None:
    simotel.set_scenario("*", "bad_body")
    answer = await ping(session, simotel)
    assert answer.status == 200
    assert answer.body == failure("Requested operation failed")


async def test_simotel_success_string_sends_success_as_the_string_1(
    session: aiohttp.ClientSession, simotel: SimotelFake
) -> None:
    simotel.set_scenario("*", "success_string")
    answer = await ping(session, simotel)
    assert answer.body["success"] == "1"


async def test_simotel_html_200_is_a_200_html_page(
    session: aiohttp.ClientSession, simotel: SimotelFake
) -> None:
    simotel.set_scenario("*", "html_200")
    answer = await ping(session, simotel)
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/html")


async def test_simotel_redirect_is_a_302_to_https_on_the_same_host(
    session: aiohttp.ClientSession, simotel: SimotelFake
) -> None:
    simotel.set_scenario("*", "redirect")
    answer = await ping(session, simotel)
    assert answer.status == 302
    host = simotel.url.removeprefix("http://")
    assert answer.headers["Location"] == f"https://{host}{PATH}"


async def test_simotel_method_not_allowed_scenario_refuses_even_a_post(
    session: aiohttp.ClientSession, simotel: SimotelFake
) -> None:
    simotel.set_scenario("*", "method_not_allowed")
    answer = await ping(session, simotel)
    assert answer.status == 405
    assert answer.body == failure("Method not allowed")


async def test_simotel_not_found_scenario_is_apaches_html_404(
    session: aiohttp.ClientSession, simotel: SimotelFake
) -> None:
    simotel.set_scenario("*", "not_found")
    answer = await ping(session, simotel)
    assert answer.status == 404
    assert answer.body is None
