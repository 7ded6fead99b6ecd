"""The Stripe and Simotel fakes deliver signed webhooks after a successful ping, per scenario.

A plain aiohttp receiver on loopback records what arrives; signatures are checked here with an
independent HMAC computation, never with the sandbox's own signing code.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict

from pingmon.sandbox import (
    SANDBOX_CREDENTIALS,
    Sandbox,
    SimotelFake,
    SimotelWebhook,
    StripeFake,
    StripeWebhook,
    WebhookScenario,
    WebhookSender,
)
from pingmon.sandbox.__main__ import configure_webhooks, parse_args
from pingmon.sandbox.webhooks import OutgoingWebhook
from tests.processes import free_port

from . import SIMOTEL, STRIPE, Answer, basic, fetch, good_call, send

SECRET = "whsec_test_receiver_secret_0123456789"
HOOK_USER = "simotel_hook"
HOOK_PASSWORD = "simotel-hook-pass"
DESTINATION = STRIPE.test_destination
WAIT = 2.0  # the bound on every wait for a delivery; they normally take milliseconds
DELAY = 0.3


@dataclass(frozen=True)
class Received:
    """One request the receiver got, stamped with time.monotonic() on arrival."""

    at: float
    path: str
    headers: CIMultiDict[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A webhook receiver that records every request and answers with the status it is told."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.status = 200
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        seen = Received(time.monotonic(), request.path, CIMultiDict(request.headers), body)
        async with self._arrived:
            self.received.append(seen)
            self._arrived.notify_all()
        return web.json_response({"received": True}, status=self.status)

    async def wait_for(self, count: int) -> list[Received]:
        """The first count requests, failing the test if they do not arrive within WAIT."""
        async with asyncio.timeout(WAIT), self._arrived:
            await self._arrived.wait_for(lambda: len(self.received) >= count)
        return self.received[:count]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    await hook.start()
    yield hook
    await hook.stop()


@pytest.fixture
async def stripe(receiver: Receiver) -> AsyncIterator[StripeFake]:
    async with StripeFake(credentials=STRIPE) as fake:
        fake.set_webhook(DESTINATION, f"{receiver.url}/webhooks/orders", SECRET)
        yield fake


@pytest.fixture
async def simotel(receiver: Receiver) -> AsyncIterator[SimotelFake]:
    async with SimotelFake(credentials=SIMOTEL) as fake:
        fake.set_webhook(f"{receiver.url}/webhooks/pbx", HOOK_USER, HOOK_PASSWORD)
        yield fake


async def ping(session: aiohttp.ClientSession, fake: StripeFake | SimotelFake) -> Answer:
    """The well-formed, authenticated ping of the fake's provider."""
    return await send(session, fake, good_call(fake))


async def settled(fake: StripeFake | SimotelFake) -> None:
    """Wait (bounded) until no delivery of the fake is pending any more."""
    async with asyncio.timeout(WAIT):
        await fake.webhook_sender.wait_idle()


def signature_parts(header: str) -> tuple[int, list[str]]:
    """``t`` and every ``v1`` of a Stripe-Signature header."""
    pairs = [item.split("=", 1) for item in header.split(",")]
    timestamps = [int(value) for key, value in pairs if key == "t"]
    assert len(timestamps) == 1, header
    return timestamps[0], [value for key, value in pairs if key == "v1"]


def signed_by(received: Received, secret: str) -> bool:
    """Whether a v1 signature of the request matches secret, computed here independently."""
    timestamp, signatures = signature_parts(received.headers["Stripe-Signature"])
    payload = str(timestamp).encode() + b"." + received.body
    expected = hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, signature) for signature in signatures)


def timestamp_of(received: Received) -> int:
    return signature_parts(received.headers["Stripe-Signature"])[0]


# -- Stripe ---------------------------------------------------------------------------------


async def test_stripe_delivers_the_thin_event_of_the_ping_with_the_same_event_id(
    session: aiohttp.ClientSession, stripe: StripeFake, receiver: Receiver
) -> None:
    answer = await ping(session, stripe)
    [delivery] = await receiver.wait_for(1)
    assert delivery.path == "/webhooks/orders"
    assert delivery.json() == {
        "id": answer.body["id"],
        "object": "v2.core.event",
        "type": "v2.core.event_destination.ping",
        "livemode": False,
        "created": answer.body["created"],
        "related_object": {
            "id": DESTINATION,
            "type": "event_destination",
            "url": f"/v2/core/event_destinations/{DESTINATION}",
        },
    }


async def test_stripe_delivery_carries_stripes_content_type_and_user_agent(
    session: aiohttp.ClientSession, stripe: StripeFake, receiver: Receiver
) -> None:
    await ping(session, stripe)
    [delivery] = await receiver.wait_for(1)
    assert delivery.headers["Content-Type"] == "application/json; charset=utf-8"
    assert delivery.headers["User-Agent"] == "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


async def test_stripe_signature_verifies_with_the_signing_secret_and_is_timestamped_now(
    session: aiohttp.ClientSession, stripe: StripeFake, receiver: Receiver
) -> None:
    await ping(session, stripe)
    [delivery] = await receiver.wait_for(1)
    assert signed_by(delivery, SECRET)
    assert not signed_by(delivery, SECRET + "x")
    assert abs(timestamp_of(delivery) - time.time()) < 5


async def test_stripe_delivery_record_carries_the_status_the_receiver_answered(
    session: aiohttp.ClientSession, stripe: StripeFake, receiver: Receiver
) -> None:
    receiver.status = 400
    await ping(session, stripe)
    await settled(stripe)
    [record] = stripe.deliveries
    assert (record.kind, record.key, record.status, record.scenario) == (
        "stripe",
        DESTINATION,
        400,
        "delivered",
    )
    assert record.url == f"{receiver.url}/webhooks/orders"


async def test_stripe_refused_delivery_is_recorded_and_the_fake_keeps_answering(
    session: aiohttp.ClientSession, stripe: StripeFake
) -> None:
    stripe.set_webhook(DESTINATION, f"http://127.0.0.1:{free_port()}/webhooks/orders", SECRET)
    first = await ping(session, stripe)
    await settled(stripe)
    second = await ping(session, stripe)
    await settled(stripe)
    assert (first.status, second.status) == (200, 200)
    assert [record.status for record in stripe.deliveries] == [None, None]
    assert stripe.deliveries[0].error is not None


@pytest.mark.parametrize(
    "scenario", ["not_found", "rate_limited", "server_error", "stale", "bad_body"]
)
async def test_stripe_delivers_nothing_for_a_ping_that_did_not_succeed(
    session: aiohttp.ClientSession, stripe: StripeFake, receiver: Receiver, scenario: str
) -> None:
    stripe.set_scenario(DESTINATION, scenario)
    await ping(session, stripe)
    stripe.clear_scenarios()
    ok = await ping(session, stripe)  # a successful ping after it: its delivery is the only one
    [delivery] = await receiver.wait_for(1)
    await settled(stripe)
    assert delivery.json()["id"] == ok.body["id"]
    assert len(receiver.received) == len(stripe.deliveries) == 1


async def test_stripe_idempotent_replay_of_a_ping_delivers_nothing_more(
    session: aiohttp.ClientSession, stripe: StripeFake, receiver: Receiver
) -> None:
    call = good_call(stripe)
    headers = {**call.headers, "Idempotency-Key": "9d2c4d7e-0000-4000-8000-00000000000a"}
    url = stripe.url + call.path
    first = await fetch(session, "POST", url, headers=headers, data=b"{}")
    again = await fetch(session, "POST", url, headers=headers, data=b"{}")
    await settled(stripe)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert [received.json()["id"] for received in receiver.received] == [first.body["id"]]


async def test_stripe_destination_without_a_webhook_delivers_nothing(
    session: aiohttp.ClientSession, stripe: StripeFake, receiver: Receiver
) -> None:
    stripe.remove_webhook(DESTINATION)
    answer = await ping(session, stripe)
    await settled(stripe)
    assert answer.status == 200
    assert receiver.received == []
    assert stripe.deliveries == []


async def test_stripe_delayed_delivery_arrives_no_sooner_than_the_delay(
    session: aiohttp.ClientSession, stripe: StripeFake, receiver: Receiver
) -> None:
    stripe.set_webhook_scenario(DESTINATION, WebhookScenario("delayed", delay=DELAY))
    pinged_at = time.monotonic()
    answer = await ping(session, stripe)
    assert receiver.received == []  # answered, not delivered yet
    [delivery] = await receiver.wait_for(1)
    assert delivery.at - pinged_at >= DELAY
    assert delivery.json()["id"] == answer.body["id"]
    assert signed_by(delivery, SECRET)


async def test_stripe_never_answers_the_ping_but_delivers_nothing(
    session: aiohttp.ClientSession, stripe: StripeFake, receiver: Receiver
) -> None:
    stripe.set_webhook_scenario("*", "never")
    answer = await ping(session, stripe)
    await settled(stripe)
    await asyncio.sleep(0.2)
    assert answer.status == 200
    assert receiver.received == []
    assert stripe.deliveries == []


async def test_stripe_badly_signed_delivery_fails_verification(
    session: aiohttp.ClientSession, stripe: StripeFake, receiver: Receiver
) -> None:
    stripe.set_webhook_scenario(DESTINATION, "badly_signed")
    answer = await ping(session, stripe)
    [delivery] = await receiver.wait_for(1)
    assert delivery.json()["id"] == answer.body["id"]
    timestamp, signatures = signature_parts(delivery.headers["Stripe-Signature"])
    assert len(signatures) == 1
    assert abs(timestamp - time.time()) < 5
    assert not signed_by(delivery, SECRET)


async def test_stripe_replayed_sends_the_identical_request_twice_then_an_old_signed_copy(
    session: aiohttp.ClientSession, stripe: StripeFake, receiver: Receiver
) -> None:
    stripe.set_webhook_scenario(DESTINATION, "replayed")
    await ping(session, stripe)
    original, replay, old = await receiver.wait_for(3)
    await settled(stripe)
    assert replay.body == original.body == old.body
    assert replay.headers["Stripe-Signature"] == original.headers["Stripe-Signature"]
    assert all(signed_by(received, SECRET) for received in (original, replay, old))
    assert timestamp_of(old) == timestamp_of(original) - 600
    assert original.at <= replay.at <= old.at
    assert [record.copy for record in stripe.deliveries] == ["original", "replay", "old_replay"]
    assert len(receiver.received) == 3


async def test_stripe_stale_delivery_is_validly_signed_ten_minutes_ago(
    session: aiohttp.ClientSession, stripe: StripeFake, receiver: Receiver
) -> None:
    stripe.set_webhook_scenario(DESTINATION, "stale")
    await ping(session, stripe)
    [delivery] = await receiver.wait_for(1)
    await settled(stripe)
    assert signed_by(delivery, SECRET)
    assert 590 < time.time() - timestamp_of(delivery) < 610
    assert len(receiver.received) == 1


async def test_clear_scenarios_also_restores_immediate_delivery(
    session: aiohttp.ClientSession, stripe: StripeFake, receiver: Receiver
) -> None:
    stripe.set_webhook_scenario("*", "never")
    stripe.clear_scenarios()
    await ping(session, stripe)
    await receiver.wait_for(1)


async def test_stop_cancels_a_pending_delayed_delivery(
    session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    fake = StripeFake(credentials=STRIPE)
    await fake.start()
    fake.set_webhook(DESTINATION, f"{receiver.url}/webhooks/orders", SECRET)
    fake.set_webhook_scenario(DESTINATION, WebhookScenario("delayed", delay=30))
    await ping(session, fake)
    assert fake.webhook_sender.pending == 1
    async with asyncio.timeout(WAIT):
        await fake.stop()
    assert fake.webhook_sender.pending == 0
    assert fake.deliveries == []
    assert receiver.received == []


def test_webhook_settings_never_show_their_secrets() -> None:
    stripe = StripeWebhook("http://127.0.0.1:1/hook", SECRET)
    simotel = SimotelWebhook("http://127.0.0.1:1/hook", HOOK_USER, HOOK_PASSWORD)
    outgoing = stripe.requests(b"{}", "delivered") + simotel.requests("delivered")
    shown = repr(stripe) + repr(simotel) + "".join(repr(request) for request in outgoing)
    assert SECRET not in shown
    assert HOOK_PASSWORD not in shown
    assert "Stripe-Signature" not in shown
    assert "Basic" not in shown


def test_webhook_scenarios_refuse_unknown_names_and_negative_delays() -> None:
    fake = SimotelFake()
    with pytest.raises(ValueError, match="unknown webhook scenario 'stale'"):
        fake.set_webhook_scenario("*", "stale")  # Stripe only
    with pytest.raises(ValueError, match="delay must be >= 0"):
        WebhookScenario("delayed", delay=-1)


# -- Simotel --------------------------------------------------------------------------------


async def test_simotel_g4_posts_the_ping_event_with_basic_auth_to_the_url(
    session: aiohttp.ClientSession, simotel: SimotelFake, receiver: Receiver
) -> None:
    answer = await ping(session, simotel)
    [delivery] = await receiver.wait_for(1)
    assert answer.body["success"] == 1
    assert delivery.path == "/webhooks/pbx"
    assert delivery.headers["Authorization"] == basic(HOOK_USER, HOOK_PASSWORD)
    assert delivery.headers["Content-Type"] == "application/json"
    assert delivery.json() == {"event_name": "Ping"}


async def test_simotel_rest4_appends_the_event_name_to_the_url(
    session: aiohttp.ClientSession, simotel: SimotelFake, receiver: Receiver
) -> None:
    simotel.set_webhook(f"{receiver.url}/webhooks/pbx", HOOK_USER, HOOK_PASSWORD, "Rest4")
    await ping(session, simotel)
    [delivery] = await receiver.wait_for(1)
    assert delivery.path == "/webhooks/pbx/Ping"
    assert delivery.json() == {"event_name": "Ping"}


async def test_simotel_delivery_record_names_the_pinging_account(
    session: aiohttp.ClientSession, simotel: SimotelFake, receiver: Receiver
) -> None:
    receiver.status = 401
    await ping(session, simotel)
    await settled(simotel)
    [record] = simotel.deliveries
    assert (record.kind, record.key, record.status) == ("simotel", SIMOTEL.both.username, 401)


@pytest.mark.parametrize("scenario", ["auth", "rate_limited", "success_string", "bad_body"])
async def test_simotel_delivers_nothing_for_a_ping_that_did_not_succeed(
    session: aiohttp.ClientSession, simotel: SimotelFake, receiver: Receiver, scenario: str
) -> None:
    simotel.set_scenario("*", scenario)
    await ping(session, simotel)
    await settled(simotel)
    assert receiver.received == []
    assert simotel.deliveries == []


async def test_simotel_badly_signed_sends_the_wrong_password(
    session: aiohttp.ClientSession, simotel: SimotelFake, receiver: Receiver
) -> None:
    simotel.set_webhook_scenario("*", "badly_signed")
    await ping(session, simotel)
    [delivery] = await receiver.wait_for(1)
    authorization = delivery.headers["Authorization"]
    assert authorization.startswith("Basic ")
    assert authorization != basic(HOOK_USER, HOOK_PASSWORD)


async def test_simotel_replayed_sends_the_identical_request_twice(
    session: aiohttp.ClientSession, simotel: SimotelFake, receiver: Receiver
) -> None:
    simotel.set_webhook_scenario("*", "replayed")
    await ping(session, simotel)
    first, second = await receiver.wait_for(2)
    await settled(simotel)
    assert (first.path, first.body) == (second.path, second.body)
    assert first.headers["Authorization"] == second.headers["Authorization"]
    assert len(receiver.received) == 2


async def test_simotel_webhook_scenario_follows_the_pinging_username(
    session: aiohttp.ClientSession, simotel: SimotelFake, receiver: Receiver
) -> None:
    simotel.set_webhook_scenario(SIMOTEL.both.username, "never")
    await ping(session, simotel)  # as SIMOTEL.both
    only_basic = {
        "Authorization": basic(SIMOTEL.basic.username, SIMOTEL.basic.password),
        "Content-Type": "application/json",
    }
    await fetch(session, "POST", simotel.url + good_call(simotel).path, headers=only_basic)
    await settled(simotel)
    assert [record.key for record in simotel.deliveries] == [SIMOTEL.basic.username]
    assert len(receiver.received) == 1


# -- the control routes and the command line ------------------------------------------------


async def test_control_route_sets_a_webhook_scenario(
    session: aiohttp.ClientSession, stripe: StripeFake, receiver: Receiver
) -> None:
    body = json.dumps({"name": "delayed", "delay": DELAY}).encode()
    url = f"{stripe.url}/_sandbox/webhook-scenarios/{DESTINATION}"
    put = await fetch(session, "PUT", url, data=body)
    assert put.status == 200
    assert put.body == {"key": DESTINATION, "scenario": {"name": "delayed", "delay": DELAY}}
    pinged_at = time.monotonic()
    await ping(session, stripe)
    [delivery] = await receiver.wait_for(1)
    assert delivery.at - pinged_at >= DELAY


async def test_control_route_refuses_an_unknown_webhook_scenario_listing_the_valid_ones(
    session: aiohttp.ClientSession, simotel: SimotelFake
) -> None:
    url = f"{simotel.url}/_sandbox/webhook-scenarios/*"
    answer = await fetch(session, "PUT", url, data=b'{"name": "stale"}')
    assert answer.status == 400
    assert answer.body["valid"] == ["badly_signed", "delayed", "delivered", "never", "replayed"]
    unknown_field = await fetch(session, "PUT", url, data=b'{"name": "never", "when": 1}')
    assert unknown_field.status == 400


async def test_control_routes_clear_scenarios_and_list_deliveries(
    session: aiohttp.ClientSession, simotel: SimotelFake, receiver: Receiver
) -> None:
    simotel.set_webhook_scenario("*", "never")
    cleared = await fetch(session, "DELETE", f"{simotel.url}/_sandbox/webhook-scenarios")
    await ping(session, simotel)
    await receiver.wait_for(1)
    await settled(simotel)
    listed = await fetch(session, "GET", f"{simotel.url}/_sandbox/webhook-deliveries")
    assert cleared.body == {"cleared": True}
    assert listed.body["pending"] == 0
    [record] = listed.body["deliveries"]
    assert (record["key"], record["status"], record["copy"]) == (
        SIMOTEL.both.username,
        200,
        "original",
    )


async def test_command_line_points_the_webhooks_with_the_sandbox_credentials(
    session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    args = parse_args(
        [
            "--stripe-webhook",
            f"{DESTINATION}={receiver.url}/webhooks/orders",
            "--simotel-webhook",
            f"{receiver.url}/webhooks/pbx",
            "--simotel-webhook-version",
            "Rest4",
        ]
    )
    async with Sandbox() as sandbox:
        configure_webhooks(sandbox, args)
        await ping(session, sandbox.stripe)
        stripe_delivery = (await receiver.wait_for(1))[0]
        await ping(session, sandbox.simotel)
        simotel_delivery = (await receiver.wait_for(2))[1]
    assert signed_by(stripe_delivery, SANDBOX_CREDENTIALS.stripe.webhook_secret)
    credentials = SANDBOX_CREDENTIALS.simotel
    assert simotel_delivery.path == "/webhooks/pbx/Ping"
    expected = basic(credentials.webhook_username, credentials.webhook_password)
    assert simotel_delivery.headers["Authorization"] == expected


def test_command_line_refuses_a_stripe_webhook_without_a_destination() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--stripe-webhook", "http://127.0.0.1:1/hook"])


# -- the sender on its own ------------------------------------------------------------------


async def test_sender_gives_up_on_a_receiver_slower_than_its_timeout() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(WAIT)
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", slow)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    sender = WebhookSender("stripe", timeout=0.1)
    await sender.start()
    try:
        sender.dispatch("k", WebhookScenario(), lambda: [OutgoingWebhook(url, b"{}", {})])
        async with asyncio.timeout(WAIT):
            await sender.wait_idle()
    finally:
        await sender.stop()
        await runner.cleanup()
    [record] = sender.deliveries
    assert record.status is None
    assert record.error is not None
