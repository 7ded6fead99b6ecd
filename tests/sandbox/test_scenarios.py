"""Scenario switches, control routes and lifecycle shared by every sandbox fake."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

import pingmon
from pingmon.sandbox import (
    KINDS,
    SANDBOX_CREDENTIALS,
    FakeProvider,
    HttpFake,
    Sandbox,
    Scenario,
    StripeFake,
)

from . import HTTP, fetch, good_call, send

HEALTHZ = HTTP.path
# Played by FakeProvider itself; every other scenario name is a status the table below pins.
TRANSPORT = frozenset({"slow", "huge", "reset", "not_http"})
COMMON_STATUSES = {
    "ok": 200,
    "auth": 401,
    "forbidden": 403,
    "not_found": 404,
    "rate_limited": 429,
    "server_error": 500,
    "garbage": 200,
    "flaky": 500,
    "bad_body": 200,
}
STATUSES: dict[str, dict[str, int]] = {
    "stripe": COMMON_STATUSES
    | {
        "lock_timeout": 429,
        "server_error_no_retry": 503,
        "conflict": 409,
        "stale": 200,
        "wrong_destination": 200,
        "html": 200,
    },
    "ninepic": COMMON_STATUSES
    | {
        "legacy": 200,
        "mismatched_ids": 200,
        "error_envelope_200": 200,
        "rate_limited_gateway": 429,
        "html_502": 502,
    },
    "simotel": COMMON_STATUSES
    | {"success_string": 200, "html_200": 200, "redirect": 302, "method_not_allowed": 405},
    "http": COMMON_STATUSES,
}
PLAYED = [(kind, name) for kind, table in STATUSES.items() for name in sorted(table)]


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox() as started:
        yield started


@pytest.fixture
async def http() -> AsyncIterator[HttpFake]:
    async with HttpFake() as fake:
        yield fake


def fake_of(sandbox: Sandbox, kind: str) -> FakeProvider:
    return {fake.kind: fake for fake in sandbox.fakes}[kind]


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    """Poll briefly for something the server does on its own schedule."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def get_healthz(session: aiohttp.ClientSession, http: HttpFake) -> int:
    return (await fetch(session, "GET", f"{http.url}{HEALTHZ}")).status


def test_every_scenario_name_of_every_fake_has_a_pinned_status() -> None:
    for fake in Sandbox().fakes:
        assert set(STATUSES[fake.kind]) == fake.scenario_names - TRANSPORT, fake.kind


@pytest.mark.parametrize(("kind", "name"), PLAYED)
async def test_scenario_answers_with_its_documented_status(
    session: aiohttp.ClientSession, sandbox: Sandbox, kind: str, name: str
) -> None:
    fake = fake_of(sandbox, kind)
    call = good_call(fake)
    fake.set_scenario(call.key, name)
    answer = await send(session, fake, call)
    assert answer.status == STATUSES[kind][name]


async def test_sandbox_binds_every_fake_on_its_own_loopback_port(sandbox: Sandbox) -> None:
    urls = sandbox.urls()
    assert list(urls) == list(KINDS)
    assert all(url.startswith("http://127.0.0.1:") for url in urls.values())
    assert len(set(urls.values())) == len(KINDS)


async def test_sandbox_listens_on_the_ports_it_is_given() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with Sandbox(ports={"http": port}) as started:
        assert started.http.url == f"http://127.0.0.1:{port}"


def test_sandbox_refuses_ports_for_unknown_fakes() -> None:
    with pytest.raises(ValueError, match="paypal"):
        Sandbox(ports={"paypal": 1234})


def test_url_of_a_fake_that_is_not_started_raises() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        _ = HttpFake().url


def test_set_scenario_with_an_unknown_name_raises_value_error() -> None:
    with pytest.raises(ValueError, match="unknown scenario 'teapot'"):
        HttpFake().set_scenario("*", "teapot")


def test_provider_specific_scenario_is_unknown_to_other_fakes() -> None:
    StripeFake().set_scenario("*", "lock_timeout")
    with pytest.raises(ValueError, match="lock_timeout"):
        HttpFake().set_scenario("*", "lock_timeout")


def test_scenario_refuses_a_negative_delay() -> None:
    with pytest.raises(ValueError, match="delay"):
        Scenario("slow", delay=-1)


async def test_wildcard_scenario_applies_to_every_key_and_a_specific_key_overrides_it(
    session: aiohttp.ClientSession, http: HttpFake
) -> None:
    http.set_scenario("*", "server_error")
    http.set_scenario("/livez", "ok")
    other = await fetch(session, "GET", f"{http.url}/readyz")
    overridden = await fetch(session, "GET", f"{http.url}/livez")
    assert (other.status, overridden.status) == (500, 200)


async def test_clear_scenarios_makes_every_key_answer_ok_again(
    session: aiohttp.ClientSession, http: HttpFake
) -> None:
    http.set_scenario("*", "server_error")
    http.clear_scenarios()
    assert await get_healthz(session, http) == 200


async def test_flaky_fails_the_given_number_of_times_then_answers_ok(
    session: aiohttp.ClientSession, http: HttpFake
) -> None:
    http.set_scenario(HEALTHZ, Scenario("flaky", failures=2))
    statuses = [await get_healthz(session, http) for _ in range(4)]
    assert statuses == [500, 500, 200, 200]


async def test_flaky_counts_failures_per_key(
    session: aiohttp.ClientSession, http: HttpFake
) -> None:
    http.set_scenario("*", Scenario("flaky", failures=1))
    first = await fetch(session, "GET", f"{http.url}/a")
    other = await fetch(session, "GET", f"{http.url}/b")
    again = await fetch(session, "GET", f"{http.url}/a")
    assert (first.status, other.status, again.status) == (500, 500, 200)


async def test_set_scenario_restarts_the_flaky_counter(
    session: aiohttp.ClientSession, http: HttpFake
) -> None:
    http.set_scenario(HEALTHZ, Scenario("flaky", failures=1))
    await get_healthz(session, http)
    http.set_scenario(HEALTHZ, Scenario("flaky", failures=1))
    assert await get_healthz(session, http) == 500


async def test_rate_limited_without_retry_after_sends_no_retry_after(
    session: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    for fake in sandbox.fakes:
        call = good_call(fake)
        fake.set_scenario(call.key, "rate_limited")
        answer = await send(session, fake, call)
        assert answer.status == 429
        assert "Retry-After" not in answer.headers, fake.kind


@pytest.mark.parametrize("kind", KINDS)
async def test_slow_answers_the_documented_success_after_the_delay(
    session: aiohttp.ClientSession, sandbox: Sandbox, kind: str
) -> None:
    fake = fake_of(sandbox, kind)
    call = good_call(fake)
    fake.set_scenario(call.key, Scenario("slow", delay=0.2))
    started = time.monotonic()
    answer = await send(session, fake, call)
    assert time.monotonic() - started >= 0.2
    assert answer.status == 200


async def test_slow_outlasts_a_client_timeout_and_is_cancelled_when_the_client_leaves(
    session: aiohttp.ClientSession, http: HttpFake
) -> None:
    http.set_scenario(HEALTHZ, Scenario("slow", delay=30))
    timeout = aiohttp.ClientTimeout(total=0.2)
    with pytest.raises(TimeoutError):
        await fetch(session, "GET", f"{http.url}{HEALTHZ}", timeout=timeout)
    await until(lambda: http.in_flight == 0)


async def test_stop_cancels_a_slow_answer_still_in_flight(
    session: aiohttp.ClientSession,
) -> None:
    fake = HttpFake()
    await fake.start()
    fake.set_scenario("*", Scenario("slow", delay=30))
    request = asyncio.create_task(fetch(session, "GET", f"{fake.url}{HEALTHZ}"))
    await until(lambda: fake.in_flight == 1)
    started = time.monotonic()
    await fake.stop()
    assert time.monotonic() - started < 2
    with pytest.raises(aiohttp.ClientConnectionError):
        await request


async def test_garbage_is_a_200_html_page_that_is_not_json(
    session: aiohttp.ClientSession, http: HttpFake
) -> None:
    http.set_scenario(HEALTHZ, "garbage")
    answer = await fetch(session, "GET", f"{http.url}{HEALTHZ}")
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError, match="Expecting value"):
        json.loads(answer.text)


async def test_huge_streams_json_looking_chunks_and_stops_when_the_client_hangs_up(
    session: aiohttp.ClientSession, http: HttpFake
) -> None:
    http.set_scenario(HEALTHZ, "huge")
    async with session.get(f"{http.url}{HEALTHZ}") as response:
        assert response.headers["Transfer-Encoding"] == "chunked"
        assert response.content_type == "application/json"
        head = await response.content.readexactly(2 * 1024 * 1024)
        response.close()
    assert head.startswith(b'{"huge": true, "padding": "xxxx')
    await until(lambda: http.in_flight == 0)


@pytest.mark.parametrize("kind", KINDS)
async def test_reset_aborts_the_connection_without_any_response(
    session: aiohttp.ClientSession, sandbox: Sandbox, kind: str
) -> None:
    fake = fake_of(sandbox, kind)
    call = good_call(fake)
    fake.set_scenario(call.key, "reset")
    with pytest.raises(aiohttp.ClientConnectionError):
        await send(session, fake, call)


@pytest.mark.parametrize("kind", KINDS)
async def test_not_http_answers_with_bytes_that_are_not_http(
    session: aiohttp.ClientSession, sandbox: Sandbox, kind: str
) -> None:
    fake = fake_of(sandbox, kind)
    call = good_call(fake)
    fake.set_scenario(call.key, "not_http")
    with pytest.raises(aiohttp.ClientResponseError, match="Bad status line"):
        await send(session, fake, call)


async def test_fake_keeps_serving_after_a_reset(
    session: aiohttp.ClientSession, http: HttpFake
) -> None:
    http.set_scenario("/broken", "reset")
    with pytest.raises(aiohttp.ClientConnectionError):
        await fetch(session, "GET", f"{http.url}/broken")
    assert await get_healthz(session, http) == 200


async def test_requests_are_recorded_with_method_path_and_headers_as_received(
    session: aiohttp.ClientSession, http: HttpFake
) -> None:
    before = time.monotonic()
    headers = {"X-Probe-Name": "checkout"}
    await fetch(session, "GET", f"{http.url}{HEALTHZ}?full=1", headers=headers)
    (seen,) = http.requests
    assert (seen.key, seen.method, seen.path) == (HEALTHZ, "GET", HEALTHZ)
    assert seen.headers["X-Probe-Name"] == "checkout"
    assert before <= seen.at <= time.monotonic()


async def test_control_route_sets_a_scenario_for_a_path_key(
    session: aiohttp.ClientSession, http: HttpFake
) -> None:
    body = json.dumps({"name": "rate_limited", "retry_after": "2"}).encode()
    put = await fetch(session, "PUT", f"{http.url}/_sandbox/scenarios/%2Fhealthz", data=body)
    answer = await fetch(session, "GET", f"{http.url}{HEALTHZ}")
    assert put.status == 200
    assert (answer.status, answer.headers["Retry-After"]) == (429, "2")


async def test_control_route_refuses_an_unknown_scenario_listing_the_valid_ones(
    session: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    url = f"{sandbox.stripe.url}/_sandbox/scenarios/*"
    answer = await fetch(session, "PUT", url, data=b'{"name": "legacy"}')
    assert answer.status == 400
    assert answer.body["valid"] == sorted(sandbox.stripe.scenario_names)
    assert "lock_timeout" in answer.body["valid"]


async def test_control_route_refuses_fields_of_the_wrong_type(
    session: aiohttp.ClientSession, http: HttpFake
) -> None:
    body = b'{"name": "flaky", "failures": "three"}'
    answer = await fetch(session, "PUT", f"{http.url}/_sandbox/scenarios/*", data=body)
    assert answer.status == 400
    assert "failures" in answer.body["error"]


async def test_control_route_clears_every_scenario(
    session: aiohttp.ClientSession, http: HttpFake
) -> None:
    http.set_scenario("*", "server_error")
    cleared = await fetch(session, "DELETE", f"{http.url}/_sandbox/scenarios")
    assert cleared.status == 200
    assert await get_healthz(session, http) == 200


async def test_control_route_counts_provider_requests_by_key_and_not_itself(
    session: aiohttp.ClientSession, http: HttpFake
) -> None:
    await get_healthz(session, http)
    await get_healthz(session, http)
    await fetch(session, "GET", f"{http.url}/livez")
    answer = await fetch(session, "GET", f"{http.url}/_sandbox/requests")
    assert answer.body == {"total": 3, "by_key": {HEALTHZ: 2, "/livez": 1}}


async def test_python_m_pingmon_sandbox_prints_its_urls_and_exits_0_on_sigterm(
    session: aiohttp.ClientSession,
) -> None:
    root = Path(pingmon.__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pingmon.sandbox", stdout=asyncio.subprocess.PIPE, env=env
    )
    assert process.stdout is not None
    try:
        urls = json.loads(await asyncio.wait_for(process.stdout.readline(), timeout=10))
        answer = await fetch(session, "GET", f"{urls['http']}{HEALTHZ}")
    finally:
        process.send_signal(signal.SIGTERM)
        returncode = await asyncio.wait_for(process.wait(), timeout=10)
    assert sorted(urls) == sorted(KINDS)
    assert answer.status == 200
    assert returncode == 0


def test_sandbox_credentials_name_a_key_for_every_documented_outcome() -> None:
    simotel = SANDBOX_CREDENTIALS.simotel
    assert {a.auth for a in simotel.accounts().values()} == {"basic", "token", "both"}
    assert not simotel.no_ping.can_ping
    assert SANDBOX_CREDENTIALS.stripe.readonly_key.startswith("rk_test_")
    ninepic = SANDBOX_CREDENTIALS.ninepic
    assert not ninepic.keys()[ninepic.deactivated_key].active
