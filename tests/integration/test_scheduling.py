"""Scheduling against the sandbox: back-off on 429, isolation, retries, limits."""

from __future__ import annotations

import asyncio
import itertools
import time

from pingmon.oneshot import check_once
from pingmon.sandbox import SANDBOX_CREDENTIALS, Sandbox, Scenario
from tests.integration.conftest import (
    ConfigWriter,
    StartDaemon,
    eventually,
    ninepic_target,
    sandbox_providers,
    stripe_target,
)

DEST_A, DEST_B = "ed_test_shared_a", "ed_test_shared_b"


def two_stripe_accounts_with_one_key(sandbox: Sandbox) -> dict[str, object]:
    """Two provider entries holding the same key: one credential, so one back-off."""
    providers = sandbox_providers(sandbox)
    providers["stripe-copy"] = dict(providers["stripe"])
    return providers


async def test_429_with_retry_after_delays_every_target_sharing_the_key(
    config_writer: ConfigWriter, start_daemon: StartDaemon, sandbox: Sandbox
) -> None:
    sandbox.stripe.set_scenario(DEST_A, Scenario("rate_limited", retry_after="2"))
    targets = [
        stripe_target("a", DEST_A, interval="300ms", timeout="200ms"),
        {
            **stripe_target("b", DEST_B, interval="300ms", timeout="200ms"),
            "provider": "stripe-copy",
        },
        ninepic_target("other-credential", interval="300ms", timeout="200ms"),
    ]
    providers = two_stripe_accounts_with_one_key(sandbox)
    running = await start_daemon(config_writer.load(targets, providers=providers))

    def rate_limited() -> bool:
        return running.sample("pingmon_rate_limited_total", provider="stripe", target="a") == 1

    await eventually(rate_limited)
    seen_a, seen_b = sandbox.stripe.count(DEST_A), sandbox.stripe.count(DEST_B)
    ninepic_before = sandbox.ninepic.count()
    backoff = running.sample("pingmon_backoff_seconds", provider="stripe-copy", target="b")
    assert backoff is not None
    assert 2.0 <= backoff <= 2.2
    assert (
        running.sample("pingmon_backoff_seconds", provider="ninepic", target="other-credential")
        == 0
    )
    await asyncio.sleep(1.2)  # well inside the 2 s Retry-After
    assert sandbox.stripe.count(DEST_A) == seen_a
    assert sandbox.stripe.count(DEST_B) == seen_b
    assert sandbox.ninepic.count() >= ninepic_before + 2  # another credential is unaffected

    sandbox.stripe.clear_scenarios()

    def recovered() -> bool:
        return running.sample("pingmon_check_success", provider="stripe", target="a") == 1

    await eventually(recovered)
    assert running.sample("pingmon_backoff_seconds", provider="stripe", target="a") == 0


async def test_429_without_retry_after_backs_off_exponentially(
    config_writer: ConfigWriter, start_daemon: StartDaemon, sandbox: Sandbox
) -> None:
    sandbox.stripe.set_scenario("*", Scenario("rate_limited"))
    targets = [stripe_target("a", DEST_A, interval="200ms", timeout="150ms")]
    running = await start_daemon(
        config_writer.load(targets, backoff={"initial": "300ms", "multiplier": 2, "max": "5s"})
    )

    def limited_twice() -> bool:
        return running.sample("pingmon_rate_limited_total", provider="stripe", target="a") == 2

    await eventually(limited_twice)
    backoff = running.sample("pingmon_backoff_seconds", provider="stripe", target="a")
    assert backoff is not None
    assert 0.54 <= backoff <= 0.66
    status = await running.target_status("a")
    assert status["error_class"] == "rate_limited"
    assert status["backoff_seconds"] == round(backoff, 3)


async def test_absurd_retry_after_is_capped_at_backoff_max(
    config_writer: ConfigWriter, start_daemon: StartDaemon, sandbox: Sandbox
) -> None:
    sandbox.stripe.set_scenario("*", Scenario("rate_limited", retry_after="999999999"))
    running = await start_daemon(config_writer.load([stripe_target("a", DEST_A)]))

    def limited() -> bool:
        return running.sample("pingmon_rate_limited_total", provider="stripe", target="a") == 1

    await eventually(limited)
    assert running.sample("pingmon_backoff_seconds", provider="stripe", target="a") == 5.0


async def test_hanging_target_does_not_delay_other_targets_or_metrics(
    config_writer: ConfigWriter, start_daemon: StartDaemon, sandbox: Sandbox
) -> None:
    sandbox.stripe.set_scenario("*", Scenario("slow", delay=30.0))
    targets = [
        stripe_target("hangs", DEST_A, interval="2s", timeout="1500ms"),
        ninepic_target("healthy", interval="200ms", timeout="150ms"),
    ]
    running = await start_daemon(config_writer.load(targets))
    await eventually(lambda: sandbox.stripe.count() >= 1)
    before = sandbox.ninepic.count()
    started = time.monotonic()
    status, _, body = await running.get_text("/metrics")
    assert status == 200
    assert "pingmon_check_success" in body
    await asyncio.sleep(1.0)
    assert time.monotonic() - started < 1.5
    assert sandbox.ninepic.count() >= before + 3  # at 200 ms, while the other hangs
    assert running.sample("pingmon_check_success", provider="ninepic", target="healthy") == 1

    def timed_out() -> bool:
        value = running.sample(
            "pingmon_check_error_class", provider="stripe", target="hangs", error_class="timeout"
        )
        return value == 1

    await eventually(timed_out)


async def test_retries_resend_within_one_check_and_count_every_attempt(
    config_writer: ConfigWriter, start_daemon: StartDaemon, sandbox: Sandbox
) -> None:
    sandbox.ninepic.set_scenario("456", Scenario("flaky", failures=2))
    target = ninepic_target("flaky", interval="5s", timeout="1s", retries=2)
    running = await start_daemon(config_writer.load([target]))
    labels = {"provider": "ninepic", "target": "flaky"}
    await eventually(lambda: running.sample("pingmon_check_success", **labels) is not None)
    assert running.sample("pingmon_check_success", **labels) == 1
    assert running.sample("pingmon_check_attempts_total", **labels) == 3
    assert running.sample("pingmon_checks_total", error_class="none", **labels) == 1
    assert sandbox.ninepic.count("456") == 3


async def test_retries_are_not_spent_on_auth_failures(
    config_writer: ConfigWriter, start_daemon: StartDaemon, sandbox: Sandbox
) -> None:
    sandbox.ninepic.set_scenario("456", Scenario("forbidden"))
    target = ninepic_target("denied", interval="5s", timeout="1s", retries=2)
    running = await start_daemon(config_writer.load([target]))
    labels = {"provider": "ninepic", "target": "denied"}
    await eventually(lambda: running.sample("pingmon_check_success", **labels) is not None)
    assert running.sample("pingmon_check_attempts_total", **labels) == 1


async def test_stripe_retries_reuse_the_checks_idempotency_key_and_checks_do_not(
    config_writer: ConfigWriter, start_daemon: StartDaemon, sandbox: Sandbox
) -> None:
    sandbox.stripe.set_scenario(DEST_A, Scenario("flaky", failures=1))
    target = stripe_target("a", DEST_A, interval="400ms", timeout="300ms", retries=1)
    running = await start_daemon(config_writer.load([target]))
    labels = {"provider": "stripe", "target": "a"}
    await eventually(
        lambda: (running.sample("pingmon_checks_total", error_class="none", **labels) or 0) >= 2
    )
    keys = [request.headers.get("Idempotency-Key") for request in sandbox.stripe.requests]
    assert keys[0] == keys[1]  # the retry of the first check
    assert len(set(keys[1:])) == len(keys) - 1  # every later check has its own


async def test_failure_interval_rechecks_a_failing_target_sooner(
    config_writer: ConfigWriter, start_daemon: StartDaemon, sandbox: Sandbox
) -> None:
    sandbox.ninepic.set_scenario("456", Scenario("server_error"))
    target = ninepic_target("x", interval="3s", timeout="100ms", failure_interval="200ms")
    running = await start_daemon(config_writer.load([target]))
    await eventually(lambda: sandbox.ninepic.count() >= 1, timeout=5)
    first = sandbox.ninepic.count()
    await asyncio.sleep(1.0)
    assert sandbox.ninepic.count() >= first + 3
    failures = running.sample("pingmon_check_consecutive_failures", provider="ninepic", target="x")
    assert (failures or 0) >= 3


async def test_rate_limit_budget_bounds_requests_per_credential(
    config_writer: ConfigWriter, start_daemon: StartDaemon, sandbox: Sandbox
) -> None:
    providers = sandbox_providers(sandbox)
    providers["stripe"]["rate_limit"] = "4/s"
    targets = [stripe_target(f"t{i}", interval="200ms", timeout="150ms") for i in range(6)]
    await start_daemon(config_writer.load(targets, providers=providers))
    await eventually(lambda: sandbox.stripe.count() >= 1)
    start = sandbox.stripe.count()
    await asyncio.sleep(1.5)
    sent = sandbox.stripe.count() - start
    # 6 targets every 200 ms want ~45 requests; the budget allows 4/s (+ a burst of 4).
    assert 2 <= sent <= 4 * 1.5 + 4


async def test_max_concurrency_keeps_one_check_in_flight_per_provider(
    config_writer: ConfigWriter, start_daemon: StartDaemon, sandbox: Sandbox
) -> None:
    providers = sandbox_providers(sandbox)
    providers["stripe"]["max_concurrency"] = 1
    sandbox.stripe.set_scenario("*", Scenario("slow", delay=0.25))
    targets = [stripe_target(f"t{i}", interval="300ms", timeout="280ms") for i in range(3)]
    await start_daemon(config_writer.load(targets, providers=providers))
    await eventually(lambda: sandbox.stripe.count() >= 4)
    arrivals = [request.at for request in sandbox.stripe.requests]
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) >= 0.2  # the next request only after the previous answer (0.25 s)


def test_sandbox_credentials_used_here_are_the_documented_ones() -> None:
    assert SANDBOX_CREDENTIALS.stripe.test_key.startswith("sk_test_")


async def test_global_concurrency_bounds_checks_in_flight_across_providers(
    config_writer: ConfigWriter, start_daemon: StartDaemon, sandbox: Sandbox
) -> None:
    sandbox.stripe.set_scenario("*", Scenario("slow", delay=0.25))
    sandbox.ninepic.set_scenario("*", Scenario("slow", delay=0.25))
    targets = [
        stripe_target("s", interval="300ms", timeout="280ms"),
        ninepic_target("n", interval="300ms", timeout="280ms"),
    ]
    await start_daemon(config_writer.load(targets, concurrency=1))
    await eventually(lambda: sandbox.stripe.count() + sandbox.ninepic.count() >= 4)
    arrivals = sorted(r.at for r in [*sandbox.stripe.requests, *sandbox.ninepic.requests])
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) >= 0.2  # one check in flight at a time, whatever the provider


async def test_check_once_reports_a_target_held_back_by_its_credentials_429(
    config_writer: ConfigWriter, sandbox: Sandbox
) -> None:
    providers = sandbox_providers(sandbox)
    providers["stripe"]["rate_limit"] = "1/s"  # the second request waits a second
    sandbox.stripe.set_scenario("*", Scenario("rate_limited"))
    targets = [stripe_target("first", DEST_A), stripe_target("second", DEST_B)]
    backoff = {"initial": "30s", "multiplier": 2, "max": "1m"}  # outlasts the wait for a token
    config = config_writer.load(targets, providers=providers, backoff=backoff)
    results = await check_once(config, [])
    assert [r.error_class for r in results] == ["rate_limited", "rate_limited"]
    assert sorted(r.attempts for r in results) == [0, 1]
    assert sandbox.stripe.count() == 1
