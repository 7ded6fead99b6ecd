"""The 9pic fake answers ``GET /api/v1/ext/{org_id}/event/{event_id}/ping`` as documented."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from pingmon.sandbox import NinepicFake, Scenario

from . import NINEPIC, Answer, fetch

ORG, EVENT = NINEPIC.org_id, NINEPIC.event_id


@pytest.fixture
async def ninepic() -> AsyncIterator[NinepicFake]:
    async with NinepicFake(credentials=NINEPIC) as fake:
        yield fake


async def ping(
    session: aiohttp.ClientSession,
    ninepic: NinepicFake,
    org: int | str = ORG,
    event: int | str = EVENT,
    *,
    key: str | None = NINEPIC.api_key,
    headers: dict[str, str] | None = None,
) -> Answer:
    sent = dict(headers or {})
    if key is not None:
        sent["X-API-Key"] = key
    url = f"{ninepic.url}/api/v1/ext/{org}/event/{event}/ping"
    return await fetch(session, "GET", url, headers=sent)


def error(message: str) -> dict[str, object]:
    return {"responseType": "error", "message": message, "data": None}


async def test_ninepic_ping_returns_the_pong_envelope_echoing_the_ids(
    session: aiohttp.ClientSession, ninepic: NinepicFake
) -> None:
    answer = await ping(session, ninepic)
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.body == {
        "responseType": "success",
        "message": "pong",
        "data": {"status": "ok", "org_id": ORG, "event_id": EVENT},
    }


async def test_ninepic_missing_api_key_is_401(
    session: aiohttp.ClientSession, ninepic: NinepicFake
) -> None:
    answer = await ping(session, ninepic, key=None)
    assert answer.status == 401
    assert answer.body == error("API key missing")


async def test_ninepic_unknown_api_key_is_403_not_401(
    session: aiohttp.ClientSession, ninepic: NinepicFake
) -> None:
    answer = await ping(session, ninepic, key="9pic_no_such_key")
    assert answer.status == 403
    assert answer.body["data"] is None


async def test_ninepic_deactivated_api_key_is_403(
    session: aiohttp.ClientSession, ninepic: NinepicFake
) -> None:
    answer = await ping(session, ninepic, key=NINEPIC.deactivated_key)
    assert answer.status == 403


async def test_ninepic_key_of_another_org_is_403(
    session: aiohttp.ClientSession, ninepic: NinepicFake
) -> None:
    answer = await ping(session, ninepic, key=NINEPIC.other_org_key)
    assert answer.status == 403
    assert answer.body["responseType"] == "error"


async def test_ninepic_second_org_key_pings_its_own_org(
    session: aiohttp.ClientSession, ninepic: NinepicFake
) -> None:
    org, event = NINEPIC.other_org_id, NINEPIC.other_event_id
    answer = await ping(session, ninepic, org, event, key=NINEPIC.other_org_key)
    assert answer.status == 200
    assert answer.body["data"]["org_id"] == org


async def test_ninepic_event_of_another_org_is_403(
    session: aiohttp.ClientSession, ninepic: NinepicFake
) -> None:
    ninepic.foreign_events.add(EVENT)
    answer = await ping(session, ninepic)
    assert answer.status == 403


async def test_ninepic_unconfigured_event_is_404_event_configuration_not_found(
    session: aiohttp.ClientSession, ninepic: NinepicFake
) -> None:
    ninepic.unconfigured_events.add(EVENT)
    answer = await ping(session, ninepic)
    assert answer.status == 404
    assert answer.body == error("Event configuration not found")


async def test_ninepic_host_not_on_the_allowlist_is_403(
    session: aiohttp.ClientSession, ninepic: NinepicFake
) -> None:
    ninepic.allowed_hosts = {"api.9pic.ai"}
    answer = await ping(session, ninepic)
    assert answer.status == 403
    assert answer.body == error("Host not approved")


async def test_ninepic_host_on_the_allowlist_is_served(
    session: aiohttp.ClientSession, ninepic: NinepicFake
) -> None:
    ninepic.allowed_hosts = {"api.9pic.ai"}
    answer = await ping(session, ninepic, headers={"Host": "api.9pic.ai"})
    assert answer.status == 200


async def test_ninepic_non_integer_ids_are_422_with_a_flattened_pydantic_message(
    session: aiohttp.ClientSession, ninepic: NinepicFake
) -> None:
    answer = await ping(session, ninepic, "acme", "party")
    assert answer.status == 422
    parsing = "Input should be a valid integer, unable to parse string as an integer"
    assert answer.body == error(f"path.org_id: {parsing}; path.event_id: {parsing}")


async def test_ninepic_validation_comes_before_authentication(
    session: aiohttp.ClientSession, ninepic: NinepicFake
) -> None:
    answer = await ping(session, ninepic, "acme", EVENT, key=None)
    assert answer.status == 422
    assert answer.body["message"].startswith("path.org_id: Input should be a valid integer")


async def test_ninepic_post_is_405_in_the_envelope(
    session: aiohttp.ClientSession, ninepic: NinepicFake
) -> None:
    url = f"{ninepic.url}/api/v1/ext/{ORG}/event/{EVENT}/ping"
    answer = await fetch(session, "POST", url, headers={"X-API-Key": NINEPIC.api_key})
    assert answer.status == 405
    assert answer.body["data"] is None


async def test_ninepic_unknown_route_is_404_in_the_envelope(
    session: aiohttp.ClientSession, ninepic: NinepicFake
) -> None:
    answer = await fetch(session, "GET", f"{ninepic.url}/api/v1/ext/{ORG}/photos")
    assert answer.status == 404
    assert answer.body == error("Not Found")


async def test_ninepic_authentication_comes_before_the_scenario(
    session: aiohttp.ClientSession, ninepic: NinepicFake
) -> None:
    ninepic.set_scenario("*", "server_error")
    answer = await ping(session, ninepic, key=None)
    assert answer.status == 401


async def test_ninepic_scenario_applies_to_the_event_id_it_was_set_for(
    session: aiohttp.ClientSession, ninepic: NinepicFake
) -> None:
    ninepic.set_scenario(str(EVENT + 1), "server_error")
    other = await ping(session, ninepic, ORG, EVENT + 1)
    mine = await ping(session, ninepic)
    assert (other.status, mine.status) == (500, 200)
    assert other.body == error("Internal failure")


async def test_ninepic_legacy_scenario_serves_the_flat_body(
    session: aiohttp.ClientSession, ninepic: NinepicFake
) -> None:
    ninepic.set_scenario("*", "legacy")
    answer = await ping(session, ninepic)
    assert answer.body == {"status": "ok", "org_id": ORG, "event_id": EVENT}


async def test_ninepic_mismatched_ids_echo_other_ids(
    session: aiohttp.ClientSession, ninepic: NinepicFake
) -> None:
    ninepic.set_scenario("*", "mismatched_ids")
    data = (await ping(session, ninepic)).body["data"]
    assert (data["org_id"], data["event_id"]) != (ORG, EVENT)
    assert data["status"] == "ok"


async def test_ninepic_error_envelope_200_is_a_200_saying_error(
    session: aiohttp.ClientSession, ninepic: NinepicFake
) -> None:
    ninepic.set_scenario("*", "error_envelope_200")
    answer = await ping(session, ninepic)
    assert answer.status == 200
    assert answer.body["responseType"] == "error"


async def test_ninepic_bad_body_has_a_status_other_than_ok(
    session: aiohttp.ClientSession, ninepic: NinepicFake
) -> None:
    ninepic.set_scenario("*", "bad_body")
    answer = await ping(session, ninepic)
    assert answer.status == 200
    assert answer.body["responseType"] == "success"
    assert answer.body["data"]["status"] != "ok"


async def test_ninepic_rate_limited_is_429_in_the_envelope_without_retry_after(
    session: aiohttp.ClientSession, ninepic: NinepicFake
) -> None:
    ninepic.set_scenario("*", "rate_limited")
    answer = await ping(session, ninepic)
    assert answer.status == 429
    assert answer.body == error("Rate limit exceeded")
    assert "Retry-After" not in answer.headers


async def test_ninepic_rate_limited_gateway_is_429_in_the_gateway_shape(
    session: aiohttp.ClientSession, ninepic: NinepicFake
) -> None:
    ninepic.set_scenario("*", Scenario("rate_limited_gateway", retry_after="-5"))
    answer = await ping(session, ninepic)
    assert answer.status == 429
    assert answer.body == {"message": "Too Many Requests"}
    assert answer.headers["Retry-After"] == "-5"


async def test_ninepic_html_502_is_a_gateway_html_page(
    session: aiohttp.ClientSession, ninepic: NinepicFake
) -> None:
    ninepic.set_scenario("*", "html_502")
    answer = await ping(session, ninepic)
    assert answer.status == 502
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "502 Bad Gateway" in answer.text


async def test_ninepic_files_requests_under_the_event_id(
    session: aiohttp.ClientSession, ninepic: NinepicFake
) -> None:
    await ping(session, ninepic)
    await ping(session, ninepic, key="9pic_no_such_key")
    assert ninepic.count(str(EVENT)) == 2
    assert ninepic.requests[0].path == f"/api/v1/ext/{ORG}/event/{EVENT}/ping"
