"""The Stripe fake answers ``POST …/event_destinations/{id}/ping`` as PROVIDERS.md 1 says."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from pingmon.sandbox import Scenario, StripeFake
from pingmon.sandbox.stripe import mask_key

from . import STRIPE, Answer, basic, fetch

DESTINATION = STRIPE.test_destination
RFC3339_MILLIS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
async def stripe() -> AsyncIterator[StripeFake]:
    async with StripeFake(credentials=STRIPE) as fake:
        yield fake


async def ping(
    session: aiohttp.ClientSession,
    stripe: StripeFake,
    destination: str = DESTINATION,
    *,
    key: str | None = STRIPE.test_key,
    data: bytes | None = b"{}",
    headers: dict[str, str] | None = None,
) -> Answer:
    sent = {"Content-Type": "application/json", **(headers or {})}
    if key is not None:
        sent.setdefault("Authorization", f"Bearer {key}")
    url = f"{stripe.url}/v2/core/event_destinations/{destination}/ping"
    return await fetch(session, "POST", url, headers=sent, data=data)


async def test_stripe_ping_returns_a_ping_event_for_the_requested_destination(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    answer = await ping(session, stripe)
    assert answer.status == 200
    assert answer.body["object"] == "v2.core.event"
    assert answer.body["type"] == "v2.core.event_destination.ping"
    assert answer.body["id"].startswith("evt_test_")
    assert answer.body["livemode"] is False
    assert answer.body["related_object"] == {
        "id": DESTINATION,
        "type": "v2.core.event_destination",
        "url": f"/v2/core/event_destinations/{DESTINATION}",
    }


async def test_stripe_ping_created_is_now_in_rfc3339_with_milliseconds(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    created = (await ping(session, stripe)).body["created"]
    assert RFC3339_MILLIS.fullmatch(created)
    age = datetime.now(UTC) - datetime.fromisoformat(created)
    assert abs(age) < timedelta(seconds=5)


async def test_stripe_every_ping_carries_a_fresh_event_id(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    first = await ping(session, stripe)
    second = await ping(session, stripe)
    assert first.body["id"] != second.body["id"]


async def test_stripe_live_key_pings_a_live_destination_with_livemode_true(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    answer = await ping(session, stripe, STRIPE.live_destination, key=STRIPE.live_key)
    assert answer.status == 200
    assert answer.body["livemode"] is True
    assert answer.body["id"].startswith("evt_live_")


async def test_stripe_accepts_basic_auth_with_the_key_as_username(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    answer = await ping(session, stripe, headers={"Authorization": basic(STRIPE.test_key)})
    assert answer.status == 200


async def test_stripe_accepts_an_empty_body(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    answer = await ping(session, stripe, data=None)
    assert answer.status == 200


async def test_stripe_non_json_body_is_400(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    answer = await ping(session, stripe, data=b"destination=x")
    assert answer.status == 400
    assert answer.body["error"]["type"] == "invalid_request_error"


async def test_stripe_body_with_parameters_is_400_unknown_parameter(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    answer = await ping(session, stripe, data=b'{"force": true}')
    assert answer.status == 400
    assert answer.body["error"]["code"] == "parameter_unknown"


async def test_stripe_missing_key_is_401_with_a_basic_challenge(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    answer = await ping(session, stripe, key=None)
    assert answer.status == 401
    assert answer.headers["Www-Authenticate"] == 'Basic realm="Stripe"'
    assert answer.body["error"]["type"] == "invalid_request_error"


async def test_stripe_unknown_key_is_401_naming_the_key_masked(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    answer = await ping(session, stripe, key="sk_test_revokedkey123456")
    assert answer.status == 401
    message = answer.body["error"]["message"]
    assert message == "Invalid API Key provided: sk_test_****3456"
    assert "revokedkey" not in answer.text


def test_stripe_mask_key_never_shows_a_short_secret() -> None:
    assert mask_key("sk_test_abc") == "sk_test_****"
    assert mask_key("whatever-key-1234567") == "****4567"


async def test_stripe_restricted_key_without_event_destination_permission_is_403(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    answer = await ping(session, stripe, key=STRIPE.readonly_key)
    assert answer.status == 403
    assert answer.body["error"]["type"] == "invalid_request_error"
    assert STRIPE.readonly_key not in answer.text


async def test_stripe_restricted_key_with_event_destination_permission_pings(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    answer = await ping(session, stripe, key=STRIPE.restricted_key)
    assert answer.status == 200


async def test_stripe_malformed_destination_id_is_404_not_found(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    answer = await ping(session, stripe, "evt_test_65RM8sQH2oXnebF5Rpc16RJyfa2xSQLHJJh1sxm7H0KI92")
    assert answer.status == 404
    assert answer.body == {"error": {"code": "not_found", "message": "The resource wasn't found."}}


async def test_stripe_deleted_destination_is_404_not_found(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    stripe.deleted_destinations.add(DESTINATION)
    answer = await ping(session, stripe)
    assert answer.status == 404
    assert answer.body["error"]["code"] == "not_found"


async def test_stripe_test_key_does_not_see_a_live_destination(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    answer = await ping(session, stripe, STRIPE.live_destination)
    assert answer.status == 404


async def test_stripe_same_idempotency_key_replays_the_same_event(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    headers = {"Idempotency-Key": "a1b2c3d4-0000-4000-8000-000000000001"}
    first = await ping(session, stripe, headers=headers)
    second = await ping(session, stripe, headers=headers)
    assert second.status == 200
    assert second.body == first.body
    assert second.headers["Idempotent-Replayed"] == "true"


async def test_stripe_same_idempotency_key_on_another_destination_is_400_idempotency_error(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    headers = {"Idempotency-Key": "a1b2c3d4-0000-4000-8000-000000000002"}
    await ping(session, stripe, headers=headers)
    answer = await ping(session, stripe, "ed_test_another_one", headers=headers)
    assert answer.status == 400
    assert answer.body["error"]["code"] == "idempotency_error"


async def test_stripe_retry_with_the_same_key_after_a_failure_runs_afresh(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    stripe.set_scenario(DESTINATION, Scenario("flaky", failures=1))
    headers = {"Idempotency-Key": "a1b2c3d4-0000-4000-8000-000000000003"}
    failed = await ping(session, stripe, headers=headers)
    retried = await ping(session, stripe, headers=headers)
    assert (failed.status, retried.status) == (500, 200)


async def test_stripe_event_reason_names_the_request_and_its_idempotency_key(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    answer = await ping(session, stripe, headers={"Idempotency-Key": "probe-42"})
    request = {"id": answer.headers["Request-Id"], "idempotency_key": "probe-42"}
    assert answer.body["reason"] == {"type": "request", "request": request}


async def test_stripe_sends_a_request_id_and_echoes_stripe_version_even_on_errors(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    answer = await ping(session, stripe, key=None, headers={"Stripe-Version": "2025-04-30.basil"})
    assert re.fullmatch(r"req_[A-Za-z0-9]{14}", answer.headers["Request-Id"])
    assert answer.headers["Stripe-Version"] == "2025-04-30.basil"


async def test_stripe_authentication_comes_before_the_scenario(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    stripe.set_scenario("*", "server_error")
    answer = await ping(session, stripe, key="sk_test_unknown_key_0000")
    assert answer.status == 401


async def test_stripe_rate_limited_names_global_rate_and_sends_no_retry_after(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    stripe.set_scenario(DESTINATION, "rate_limited")
    answer = await ping(session, stripe)
    assert answer.status == 429
    assert answer.headers["Stripe-Rate-Limited-Reason"] == "global-rate"
    assert "Retry-After" not in answer.headers
    assert answer.body["error"]["type"] == "rate_limit"


async def test_stripe_rate_limited_with_retry_after_sends_the_raw_value(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    stripe.set_scenario(DESTINATION, Scenario("rate_limited", retry_after="garbage"))
    answer = await ping(session, stripe)
    assert answer.headers["Retry-After"] == "garbage"


async def test_stripe_lock_timeout_is_429_without_a_rate_limited_reason(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    stripe.set_scenario(DESTINATION, "lock_timeout")
    answer = await ping(session, stripe)
    assert answer.status == 429
    assert answer.body["error"]["code"] == "lock_timeout"
    assert "Stripe-Rate-Limited-Reason" not in answer.headers


async def test_stripe_server_error_is_500_without_should_retry(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    stripe.set_scenario(DESTINATION, "server_error")
    answer = await ping(session, stripe)
    assert answer.status == 500
    assert answer.body["error"]["type"] == "api_error"
    assert "Stripe-Should-Retry" not in answer.headers


async def test_stripe_server_error_no_retry_is_503_with_should_retry_false(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    stripe.set_scenario(DESTINATION, "server_error_no_retry")
    answer = await ping(session, stripe)
    assert answer.status == 503
    assert answer.headers["Stripe-Should-Retry"] == "false"


async def test_stripe_conflict_is_409_idempotency_key_in_use(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    stripe.set_scenario(DESTINATION, "conflict")
    answer = await ping(session, stripe)
    assert answer.status == 409
    assert answer.body["error"]["code"] == "idempotency_key_in_use"


async def test_stripe_stale_event_was_created_an_hour_ago(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    stripe.set_scenario(DESTINATION, "stale")
    created = (await ping(session, stripe)).body["created"]
    age = datetime.now(UTC) - datetime.fromisoformat(created)
    assert timedelta(minutes=59) < age < timedelta(minutes=61)


async def test_stripe_wrong_destination_relates_the_event_to_another_destination(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    stripe.set_scenario(DESTINATION, "wrong_destination")
    related = (await ping(session, stripe)).body["related_object"]
    assert related["id"] != DESTINATION
    assert not related["url"].endswith(DESTINATION)


async def test_stripe_bad_body_has_a_wrong_event_type(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    stripe.set_scenario(DESTINATION, "bad_body")
    answer = await ping(session, stripe)
    assert answer.status == 200
    assert answer.body["type"] != "v2.core.event_destination.ping"


async def test_stripe_html_scenario_is_a_200_html_page(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    stripe.set_scenario(DESTINATION, "html")
    answer = await ping(session, stripe)
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/html")


async def test_stripe_unrecognized_url_is_a_json_404(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    async with session.get(f"{stripe.url}/v2/core/event_destinations") as response:
        assert response.status == 404
        body = await response.json()
    assert body["error"]["message"].startswith("Unrecognized request URL (GET:")


async def test_stripe_files_requests_under_the_destination_id(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    await ping(session, stripe)
    await ping(session, stripe, key=None)
    assert stripe.count(DESTINATION) == 2
    assert stripe.requests[0].headers["Authorization"] == f"Bearer {STRIPE.test_key}"
