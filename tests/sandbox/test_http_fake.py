"""The status-page fake answers ``{"status": "ok"}`` on every path unless told otherwise."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from pingmon.sandbox import HttpFake, Scenario

from . import HTTP, fetch


@pytest.fixture
async def http() -> AsyncIterator[HttpFake]:
    async with HttpFake(credentials=HTTP) as fake:
        yield fake


async def test_http_any_path_answers_status_ok_as_json(
    session: aiohttp.ClientSession, http: HttpFake
) -> None:
    answer = await fetch(session, "GET", f"{http.url}/some/deep/path?verbose=1")
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.body == {"status": "ok"}


async def test_http_head_answers_200_without_a_body(
    session: aiohttp.ClientSession, http: HttpFake
) -> None:
    answer = await fetch(session, "HEAD", f"{http.url}{HTTP.path}")
    assert answer.status == 200
    assert answer.text == ""


async def test_http_scenario_applies_to_its_path_only(
    session: aiohttp.ClientSession, http: HttpFake
) -> None:
    http.set_scenario(HTTP.path, "server_error")
    failing = await fetch(session, "GET", f"{http.url}{HTTP.path}")
    other = await fetch(session, "GET", f"{http.url}/livez")
    assert (failing.status, other.status) == (500, 200)


async def test_http_bad_body_reports_degraded(
    session: aiohttp.ClientSession, http: HttpFake
) -> None:
    http.set_scenario(HTTP.path, "bad_body")
    answer = await fetch(session, "GET", f"{http.url}{HTTP.path}")
    assert answer.status == 200
    assert answer.body == {"status": "degraded"}


async def test_http_rate_limited_sends_an_http_date_retry_after_unchanged(
    session: aiohttp.ClientSession, http: HttpFake
) -> None:
    when = "Wed, 21 Oct 2015 07:28:00 GMT"
    http.set_scenario(HTTP.path, Scenario("rate_limited", retry_after=when))
    answer = await fetch(session, "GET", f"{http.url}{HTTP.path}")
    assert answer.status == 429
    assert answer.headers["Retry-After"] == when


async def test_http_accepts_any_credentials_by_default(
    session: aiohttp.ClientSession, http: HttpFake
) -> None:
    headers = {"Authorization": "Bearer whatever"}
    answer = await fetch(session, "GET", f"{http.url}{HTTP.path}", headers=headers)
    assert answer.status == 200


async def test_http_with_a_required_token_refuses_a_missing_one_with_401(
    session: aiohttp.ClientSession, http: HttpFake
) -> None:
    http.require_token = True
    answer = await fetch(session, "GET", f"{http.url}{HTTP.path}")
    assert answer.status == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


async def test_http_with_a_required_token_serves_the_right_one(
    session: aiohttp.ClientSession, http: HttpFake
) -> None:
    http.require_token = True
    headers = {"Authorization": f"Bearer {HTTP.token}"}
    answer = await fetch(session, "GET", f"{http.url}{HTTP.path}", headers=headers)
    assert answer.status == 200


async def test_http_files_requests_under_their_path(
    session: aiohttp.ClientSession, http: HttpFake
) -> None:
    await fetch(session, "GET", f"{http.url}{HTTP.path}?x=1")
    await fetch(session, "POST", f"{http.url}{HTTP.path}")
    assert http.count(HTTP.path) == 2
    assert [seen.method for seen in http.requests] == ["GET", "POST"]
