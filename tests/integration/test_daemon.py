"""The daemon against the sandbox on loopback: results, error classes, isolation."""

from __future__ import annotations

import pytest

from pingmon.sandbox import Sandbox, Scenario
from tests.integration.conftest import (
    ConfigWriter,
    StartDaemon,
    eventually,
    http_target,
    ninepic_target,
    simotel_target,
    stripe_target,
)


async def test_every_provider_answering_as_documented_is_a_success(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    config = config_writer.load(
        [
            stripe_target("orders"),
            ninepic_target("wedding"),
            simotel_target("pbx-main"),
            http_target("status"),
        ]
    )
    running = await start_daemon(config)
    names = ("orders", "wedding", "pbx-main", "status")

    async def all_checked() -> bool:
        pairs = zip(("stripe", "ninepic", "pbx", "status"), names, strict=True)
        return all(
            running.sample("pingmon_check_success", provider=p, target=t) is not None
            for p, t in pairs
        )

    await eventually(all_checked)
    for provider, target in zip(("stripe", "ninepic", "pbx", "status"), names, strict=True):
        labels = {"provider": provider, "target": target}
        assert running.sample("pingmon_check_success", **labels) == 1, target
        assert running.sample("pingmon_check_http_status", **labels) == 200
        assert running.sample("pingmon_check_error_class", error_class="none", **labels) == 1
        assert (running.sample("pingmon_checks_total", error_class="none", **labels) or 0) >= 1


@pytest.mark.parametrize(
    ("scenario", "error_class"),
    [
        (Scenario("auth"), "auth"),
        (Scenario("forbidden"), "forbidden"),
        (Scenario("not_found"), "not_found"),
        (Scenario("server_error"), "server_error"),
        (Scenario("rate_limited"), "rate_limited"),
        (Scenario("bad_body"), "bad_response"),
        (Scenario("garbage"), "bad_response"),
        (Scenario("huge"), "bad_response"),
        (Scenario("not_http"), "bad_response"),
        (Scenario("reset"), "connect"),
        (Scenario("slow", delay=5.0), "timeout"),
    ],
    ids=lambda value: value.name if isinstance(value, Scenario) else value,
)
async def test_misbehaving_provider_gets_the_right_error_class(
    config_writer: ConfigWriter,
    start_daemon: StartDaemon,
    sandbox: Sandbox,
    scenario: Scenario,
    error_class: str,
) -> None:
    sandbox.ninepic.set_scenario("456", scenario)
    running = await start_daemon(config_writer.load([ninepic_target("wedding")]))
    labels = {"provider": "ninepic", "target": "wedding"}

    def checked() -> bool:
        return running.sample("pingmon_check_success", **labels) is not None

    await eventually(checked)
    assert running.sample("pingmon_check_success", **labels) == 0
    assert running.sample("pingmon_check_error_class", error_class=error_class, **labels) == 1
    status = await running.target_status("wedding")
    assert status["error_class"] == error_class
    assert status["detail"]


async def test_closed_port_is_a_connect_error(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    providers = {"dead": {"type": "http", "base_url": "http://127.0.0.1:9"}}
    config = config_writer.load([{"name": "dead", "provider": "dead"}], providers=providers)
    running = await start_daemon(config)

    def checked() -> bool:
        return running.sample("pingmon_check_success", provider="dead", target="dead") is not None

    await eventually(checked)
    status = await running.target_status("dead")
    assert status["error_class"] == "connect"
    assert status["http_status"] is None
    assert running.sample("pingmon_check_http_status", provider="dead", target="dead") == 0
