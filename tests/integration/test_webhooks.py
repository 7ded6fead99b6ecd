"""The webhook round trip through the real daemon: sandbox pings, signed deliveries, metrics."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest

from pingmon.sandbox import Sandbox, Scenario
from pingmon.sandbox.webhooks import WebhookScenario, WebhookSendingFake
from tests.integration.conftest import (
    SECRET_VALUES,
    ConfigWriter,
    RunningDaemon,
    StartDaemon,
    eventually,
    simotel_target,
    stripe_target,
)
from tests.processes import free_port

SIGNING_SECRET = "whsec_pingmon_integration_0123456789"
HOOK_USER = "pingmon-hook"
HOOK_PASSWORD = "hook-password-4711"
WEBHOOK_SECRETS = (SIGNING_SECRET, HOOK_PASSWORD)
DESTINATION = "ed_test_webhooks"
FAST_WEBHOOK = {"interval": "500ms", "timeout": "300ms", "jitter": 0}


@pytest.fixture(autouse=True)
def webhook_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SB_STRIPE_WEBHOOK_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("SB_HOOK_USER", HOOK_USER)
    monkeypatch.setenv("SB_HOOK_PASSWORD", HOOK_PASSWORD)


def stripe_hook_target(name: str = "orders", **webhook: Any) -> dict[str, Any]:
    settings = {"timeout": "400ms", "signing_secret": {"env": "SB_STRIPE_WEBHOOK_SECRET"}}
    return stripe_target(name, DESTINATION, **FAST_WEBHOOK, webhook={**settings, **webhook})


def simotel_hook_target(name: str = "pbx-main", **webhook: Any) -> dict[str, Any]:
    settings = {
        "timeout": "400ms",
        "username": {"env": "SB_HOOK_USER"},
        "password": {"env": "SB_HOOK_PASSWORD"},
    }
    return simotel_target(name, **FAST_WEBHOOK, webhook={**settings, **webhook})


async def start_with_webhooks(
    config_writer: ConfigWriter,
    start_daemon: StartDaemon,
    targets: list[dict[str, Any]],
    **top: Any,
) -> tuple[RunningDaemon, str]:
    """The daemon on a port chosen beforehand, so the sandbox knows where to deliver before
    the first ping; the receiver's base URL is returned with it."""
    port = free_port()
    listen = top.pop("listen", f"127.0.0.1:{port}")
    running = await start_daemon(config_writer.load(targets, listen=listen, **top))
    webhook_listen = top.get("webhook_listen") or listen
    prefix = top.get("webhook_path_prefix", "")
    return running, f"http://{webhook_listen}{prefix}/webhooks"


async def start_stripe_round_trip(
    sandbox: Sandbox,
    config_writer: ConfigWriter,
    start_daemon: StartDaemon,
    scenario: WebhookScenario | None = None,
) -> tuple[RunningDaemon, int]:
    """One Stripe target whose destination delivers to the daemon (as ``scenario`` says), on a
    port chosen before the start, so the sandbox knows where to deliver from the first ping."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhooks/orders"
    sandbox.stripe.set_webhook(DESTINATION, url, SIGNING_SECRET)
    if scenario is not None:
        sandbox.stripe.set_webhook_scenario(DESTINATION, scenario)
    config = config_writer.load([stripe_hook_target()], listen=f"127.0.0.1:{port}")
    return await start_daemon(config), port


def count(running: RunningDaemon, metric: str, target: str, **labels: str) -> float:
    """A counter or gauge that may not exist yet, as a number (0 while absent)."""
    return hook(running, metric, target, **labels) or 0.0


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def hook(running: RunningDaemon, metric: str, target: str, **labels: str) -> float | None:
    provider = "stripe" if target == "orders" else "pbx"
    return running.sample(metric, provider=provider, target=target, **labels)


async def test_a_stripe_ping_webhook_comes_back_and_gives_a_round_trip(
    sandbox: Sandbox, config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running, _ = await start_stripe_round_trip(sandbox, config_writer, start_daemon)

    await eventually(
        lambda: count(running, "pingmon_webhooks_total", "orders", outcome="delivered") >= 2
    )
    assert hook(running, "pingmon_webhook_delivered", "orders") == 1.0
    roundtrip = hook(running, "pingmon_webhook_roundtrip_seconds", "orders")
    assert roundtrip is not None
    assert 0 < roundtrip < 0.4
    assert hook(running, "pingmon_webhook_consecutive_misses", "orders") == 0.0
    assert count(running, "pingmon_webhook_roundtrip_latency_seconds_count", "orders") >= 2
    assert hook(running, "pingmon_webhook_last_received_timestamp_seconds", "orders") is not None
    assert all(d.status == 200 for d in sandbox.stripe.deliveries)
    status = (await running.target_status("orders"))["webhook"]
    assert status["delivered"] is True
    assert status["delivered_total"] >= 2
    assert status["rejected"] == {}


async def test_a_simotel_ping_event_comes_back_in_both_v4_formats(
    sandbox: Sandbox, config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/webhooks"
    sandbox.simotel.set_webhook(f"{base}/pbx-main", HOOK_USER, HOOK_PASSWORD, version="G4")
    targets = [simotel_hook_target("pbx-main"), simotel_hook_target("pbx-rest")]
    running = await start_daemon(config_writer.load(targets, listen=f"127.0.0.1:{port}"))

    await eventually(lambda: hook(running, "pingmon_webhook_delivered", "pbx-main") == 1.0)
    # Rest4 appends the event's name: .../webhooks/pbx-rest/Ping
    sandbox.simotel.set_webhook(f"{base}/pbx-rest", HOOK_USER, HOOK_PASSWORD, version="Rest4")
    await eventually(lambda: hook(running, "pingmon_webhook_delivered", "pbx-rest") == 1.0)

    def rest4_answered_200() -> bool:  # the sender records a delivery once it has the answer
        deliveries = sandbox.simotel.deliveries
        return any(d.url.endswith("/pbx-rest/Ping") and d.status == 200 for d in deliveries)

    await eventually(rest4_answered_200)


async def test_a_webhook_that_never_comes_is_missed_while_the_ping_succeeds(
    sandbox: Sandbox, config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running, _ = await start_stripe_round_trip(
        sandbox, config_writer, start_daemon, WebhookScenario("never")
    )

    await eventually(lambda: count(running, "pingmon_webhook_consecutive_misses", "orders") >= 2)
    assert hook(running, "pingmon_webhook_delivered", "orders") == 0.0
    assert running.sample("pingmon_check_success", provider="stripe", target="orders") == 1.0
    assert hook(running, "pingmon_webhooks_total", "orders", outcome="delivered") == 0.0
    assert sandbox.stripe.deliveries == []

    sandbox.stripe.set_webhook_scenario(DESTINATION, WebhookScenario("delivered"))
    await eventually(lambda: hook(running, "pingmon_webhook_delivered", "orders") == 1.0)
    assert hook(running, "pingmon_webhook_consecutive_misses", "orders") == 0.0


async def test_a_delayed_webhook_counts_within_the_timeout_and_is_late_after_it(
    sandbox: Sandbox, config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running, _ = await start_stripe_round_trip(
        sandbox, config_writer, start_daemon, WebhookScenario("delayed", delay=0.15)
    )

    await eventually(lambda: hook(running, "pingmon_webhook_delivered", "orders") == 1.0)
    roundtrip = hook(running, "pingmon_webhook_roundtrip_seconds", "orders")
    assert roundtrip is not None
    assert roundtrip >= 0.15

    sandbox.stripe.set_webhook_scenario(DESTINATION, WebhookScenario("delayed", delay=0.6))
    await eventually(
        lambda: count(running, "pingmon_webhook_rejected_total", "orders", reason="late") >= 1
    )
    assert hook(running, "pingmon_webhook_delivered", "orders") == 0.0

    def a_late_one_answered_200() -> bool:  # recorded once the sender has the answer
        return any(d.status == 200 and d.scenario == "delayed" for d in sandbox.stripe.deliveries)

    await eventually(a_late_one_answered_200)


@pytest.mark.parametrize("kind", ["stripe", "simotel"])
async def test_a_badly_signed_webhook_is_refused_and_never_counted(
    kind: str, sandbox: Sandbox, config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/webhooks"
    fake: WebhookSendingFake
    if kind == "stripe":
        name, fake, key = "orders", sandbox.stripe, DESTINATION
        sandbox.stripe.set_webhook(DESTINATION, f"{base}/orders", SIGNING_SECRET)
        target, expected_status = stripe_hook_target(), 400
    else:
        name, fake, key = "pbx-main", sandbox.simotel, "*"
        sandbox.simotel.set_webhook(f"{base}/pbx-main", HOOK_USER, HOOK_PASSWORD)
        target, expected_status = simotel_hook_target(), 401
    fake.set_webhook_scenario(key, WebhookScenario("badly_signed"))
    running = await start_daemon(config_writer.load([target], listen=f"127.0.0.1:{port}"))

    await eventually(
        lambda: count(running, "pingmon_webhook_rejected_total", name, reason="bad_signature") >= 2
    )
    await eventually(lambda: hook(running, "pingmon_webhook_delivered", name) == 0.0)
    assert hook(running, "pingmon_webhooks_total", name, outcome="delivered") == 0.0
    await eventually(lambda: len(fake.deliveries) >= 2)  # recorded once answered
    assert {d.status for d in fake.deliveries} == {expected_status}


async def test_a_replayed_stripe_webhook_is_refused_inside_and_outside_the_tolerance(
    sandbox: Sandbox, config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running, _ = await start_stripe_round_trip(
        sandbox, config_writer, start_daemon, WebhookScenario("replayed")
    )

    await eventually(
        lambda: count(running, "pingmon_webhook_rejected_total", "orders", reason="stale") >= 2
    )
    await eventually(lambda: len({d.copy for d in sandbox.stripe.deliveries}) == 3)
    statuses = {(d.copy, d.status) for d in sandbox.stripe.deliveries}
    assert statuses == {("original", 200), ("replay", 409), ("old_replay", 400)}
    replayed = hook(running, "pingmon_webhook_rejected_total", "orders", reason="replayed")
    delivered = hook(running, "pingmon_webhooks_total", "orders", outcome="delivered")
    assert replayed is not None
    assert delivered is not None
    assert replayed >= 1
    # Each ping's original counted once; its copies never. The sender records an original
    # once answered: a ping still in flight may have been counted and not yet recorded.
    originals = sum(1 for d in sandbox.stripe.deliveries if d.copy == "original")
    assert delivered <= originals + sandbox.stripe.webhook_sender.pending


async def test_refusals_for_unknown_targets_foreign_sources_and_huge_bodies(
    sandbox: Sandbox, config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    targets = [stripe_hook_target(), simotel_hook_target(allowed_sources=["10.0.0.0/8"])]
    running, base = await start_with_webhooks(config_writer, start_daemon, targets)
    http = running.http

    async with http.post(f"{base}/no-such-target", data=b"{}") as response:
        assert response.status == 404
    assert (
        running.sample(
            "pingmon_webhook_rejected_total", provider="", target="", reason="unknown_target"
        )
        == 1.0
    )
    async with http.post(
        f"{base}/pbx-main",
        json={"event_name": "Ping"},
        headers={"Authorization": basic_auth(HOOK_USER, HOOK_PASSWORD)},
    ) as response:
        assert response.status == 403  # 127.0.0.1 is not in 10.0.0.0/8
    assert (
        hook(running, "pingmon_webhook_rejected_total", "pbx-main", reason="forbidden_source")
        == 1.0
    )
    async with http.post(f"{base}/orders", data=b"x" * 70_000) as response:
        assert response.status == 413
    assert hook(running, "pingmon_webhook_rejected_total", "orders", reason="too_large") == 1.0
    async with http.post(f"{base}/orders", data=b"{}") as response:
        assert response.status == 400
        assert (await response.json())["reason"] == "unsigned"
    async with http.get(f"{base}/orders") as response:
        assert response.status == 405
    assert hook(running, "pingmon_webhooks_total", "orders", outcome="delivered") == 0.0


async def test_webhook_listen_serves_the_receiver_alone(
    sandbox: Sandbox, config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    hook_port = free_port()
    hook_base = f"http://127.0.0.1:{hook_port}/pingmon/webhooks"
    sandbox.stripe.set_webhook(DESTINATION, f"{hook_base}/orders", SIGNING_SECRET)
    running, base = await start_with_webhooks(
        config_writer,
        start_daemon,
        [stripe_hook_target()],
        webhook_listen=f"127.0.0.1:{hook_port}",
        webhook_path_prefix="/pingmon",
    )
    assert base == hook_base
    await eventually(lambda: hook(running, "pingmon_webhook_delivered", "orders") == 1.0)
    async with running.http.post(f"{running.url}/pingmon/webhooks/orders", data=b"{}") as response:
        assert response.status == 404  # not on the metrics listener
    async with running.http.get(f"http://127.0.0.1:{hook_port}/metrics") as response:
        assert response.status == 404  # and no metrics on the webhook listener


async def test_no_webhook_secret_leaks_into_logs_status_or_metrics(
    sandbox: Sandbox,
    config_writer: ConfigWriter,
    start_daemon: StartDaemon,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()
    base = f"http://127.0.0.1:{port}/webhooks"
    sandbox.stripe.set_webhook(DESTINATION, f"{base}/orders", SIGNING_SECRET)
    sandbox.stripe.set_webhook_scenario(DESTINATION, WebhookScenario("replayed"))
    sandbox.simotel.set_webhook(f"{base}/pbx-main", HOOK_USER, HOOK_PASSWORD)
    sandbox.simotel.set_webhook_scenario("*", WebhookScenario("badly_signed"))
    targets = [stripe_hook_target(), simotel_hook_target()]
    running = await start_daemon(config_writer.load(targets, listen=f"127.0.0.1:{port}"))
    await eventually(
        lambda: (
            count(running, "pingmon_webhook_rejected_total", "pbx-main", reason="bad_signature")
            >= 1
        )
    )
    await eventually(
        lambda: count(running, "pingmon_webhook_rejected_total", "orders", reason="stale") >= 1
    )

    _, _, metrics = await running.get_text("/metrics")
    _, _, status = await running.get_text("/status")
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for secret in (*WEBHOOK_SECRETS, *SECRET_VALUES):
        assert secret not in metrics
        assert secret not in status
        assert secret not in logged
    assert "webhook not counted" in logged
    assert repr(running.daemon.config).count(SIGNING_SECRET) == 0


async def test_a_reload_keeps_a_webhook_target_waiting_and_removing_it_drops_its_series(
    sandbox: Sandbox, config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running, port = await start_stripe_round_trip(sandbox, config_writer, start_daemon)
    await eventually(lambda: hook(running, "pingmon_webhook_delivered", "orders") == 1.0)

    config_writer.path.write_text("targets: [oops", encoding="utf-8")
    ok, _ = await running.daemon.reload()
    assert not ok
    delivered_before = count(running, "pingmon_webhooks_total", "orders", outcome="delivered")
    await eventually(
        lambda: (
            count(running, "pingmon_webhooks_total", "orders", outcome="delivered")
            > delivered_before
        )
    )

    plain = stripe_target("orders", DESTINATION, **FAST_WEBHOOK)
    config_writer.write([plain], listen=f"127.0.0.1:{port}")
    ok, _ = await running.daemon.reload()
    assert ok
    assert hook(running, "pingmon_webhook_timeout_seconds", "orders") is None
    async with running.http.post(
        f"http://127.0.0.1:{port}/webhooks/orders", data=b"{}"
    ) as response:
        assert response.status == 404


async def test_a_failed_ping_restarts_the_count_of_missed_webhooks(
    sandbox: Sandbox, config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running, _ = await start_stripe_round_trip(
        sandbox, config_writer, start_daemon, WebhookScenario("never")
    )
    await eventually(lambda: count(running, "pingmon_webhook_consecutive_misses", "orders") >= 1)

    # A 429 says nothing about the way back: the count stands.
    sandbox.stripe.set_scenario(DESTINATION, Scenario("rate_limited"))
    await eventually(lambda: count(running, "pingmon_rate_limited_total", "orders") >= 1)
    assert count(running, "pingmon_webhook_consecutive_misses", "orders") >= 1
    # A failed ping breaks the run of answered pings: the count starts again.
    sandbox.stripe.set_scenario(DESTINATION, Scenario("server_error"))
    await eventually(
        lambda: count(running, "pingmon_checks_total", "orders", error_class="server_error") >= 1
    )
    assert count(running, "pingmon_webhook_consecutive_misses", "orders") == 0.0
