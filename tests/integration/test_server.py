"""The HTTP endpoints and configuration reload, against the sandbox."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pingmon.sandbox import Sandbox, Scenario
from pingmon.webconfig import WebOptions
from tests.integration.conftest import (
    SECRET_VALUES,
    ConfigWriter,
    StartDaemon,
    eventually,
    http_target,
    ninepic_target,
    simotel_target,
    stripe_target,
)

LIFECYCLE = WebOptions(enable_lifecycle=True)  # POST /-/reload answers


async def test_metrics_negotiates_openmetrics_and_text(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running = await start_daemon(config_writer.load([ninepic_target("w")]))
    await running.wait_checked("ninepic", "w")
    status, content_type, body = await running.get_text("/metrics")
    assert status == 200
    assert content_type.startswith("text/plain; version=0.0.4")
    names = {family.name for family in text_string_to_metric_families(body)}
    assert {"pingmon_check_success", "pingmon_checks", "pingmon_build_info"} <= names
    status, content_type, body = await running.get_text(
        "/metrics", accept="application/openmetrics-text; version=1.0.0"
    )
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith("# EOF\n")


async def test_health_and_readiness(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running = await start_daemon(config_writer.load([ninepic_target("w")]))
    assert (await running.get_text("/-/healthy"))[0] == 200
    assert (await running.get_text("/-/ready"))[0] == 200
    assert (await running.get_text("/"))[0] == 200


async def test_status_lists_every_target_with_its_next_run(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running = await start_daemon(config_writer.load([ninepic_target("w"), stripe_target("s")]))
    await running.wait_checked("stripe", "s")
    status = await running.status()
    assert {t["target"] for t in status["targets"]} == {"w", "s"}
    stripe = await running.target_status("s")
    assert stripe["success"] is True
    assert stripe["error_class"] == "none"
    assert stripe["next_run"] is not None
    assert stripe["backoff_seconds"] == 0


async def test_secrets_never_appear_in_metrics_status_or_logs(
    config_writer: ConfigWriter,
    start_daemon: StartDaemon,
    sandbox: Sandbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox.stripe.set_scenario("ed_test_denied", Scenario("auth"))  # 401 body quotes a key
    targets = [
        stripe_target("ok"),
        stripe_target("denied", "ed_test_denied"),
        ninepic_target("w"),
        simotel_target("pbx"),
        http_target("status"),
    ]
    running = await start_daemon(config_writer.load(targets))
    await running.wait_checked("stripe", "denied")
    await running.wait_checked("status", "status")
    exposed = [
        (await running.get_text("/metrics"))[2],
        (await running.get_text("/status"))[2],
        caplog.text,
        repr(running.daemon.config),
        str(running.daemon.config.settings.model_dump()),
    ]
    for text in exposed:
        for secret in SECRET_VALUES:
            assert secret not in text


async def test_reload_adopts_a_good_file_and_drops_removed_targets(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    running = await start_daemon(
        config_writer.load([ninepic_target("keep"), stripe_target("gone")]), LIFECYCLE
    )
    await running.wait_checked("stripe", "gone")
    config_writer.write([ninepic_target("keep"), simotel_target("new")])
    async with running.http.post(running.url + "/-/reload") as response:
        assert response.status == 200
    assert running.sample("pingmon_check_success", provider="stripe", target="gone") is None
    _, _, body = await running.get_text("/metrics")
    assert 'target="gone"' not in body
    await running.wait_checked("pbx", "new", success=True)
    assert running.sample("pingmon_config_last_reload_successful") == 1


async def test_bad_reload_keeps_the_running_configuration(
    config_writer: ConfigWriter, start_daemon: StartDaemon, sandbox: Sandbox
) -> None:
    running = await start_daemon(config_writer.load([ninepic_target("keep")]), LIFECYCLE)
    await running.wait_checked("ninepic", "keep", success=True)
    good_reload_time = running.sample("pingmon_config_last_reload_success_timestamp_seconds")
    Path(config_writer.path).write_text("targets: [{name: x, provider: nope}]\nbogus: 1\n")
    async with running.http.post(running.url + "/-/reload") as response:
        assert response.status == 500
        problems = (await response.json())["problems"]
    assert any("bogus: unknown key" in line for line in problems)
    assert any("targets[0].provider" in line for line in problems)
    assert running.sample("pingmon_config_last_reload_successful") == 0
    assert (
        running.sample("pingmon_config_last_reload_success_timestamp_seconds") == good_reload_time
    )
    before = sandbox.ninepic.count()
    await eventually(lambda: sandbox.ninepic.count() > before + 1)  # still checking
    assert [t["target"] for t in (await running.status())["targets"]] == ["keep"]


async def test_a_line_is_logged_when_a_target_changes_state_not_on_every_tick(
    config_writer: ConfigWriter,
    start_daemon: StartDaemon,
    sandbox: Sandbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pingmon")
    running = await start_daemon(
        config_writer.load([ninepic_target("w", interval="100ms", timeout="80ms")])
    )
    labels = {"provider": "ninepic", "target": "w"}
    await eventually(
        lambda: (running.sample("pingmon_checks_total", error_class="none", **labels) or 0) >= 5
    )
    sandbox.ninepic.set_scenario("*", Scenario("server_error"))
    await eventually(
        lambda: (running.sample("pingmon_check_consecutive_failures", **labels) or 0) >= 3
    )
    sandbox.ninepic.clear_scenarios()
    await running.wait_checked("ninepic", "w", success=True)
    transitions = [
        (record.message, getattr(record, "error_class", None))
        for record in caplog.records
        if getattr(record, "target", None) == "w"
    ]
    assert transitions == [
        ("target is up", "none"),
        ("target is failing", "server_error"),
        ("target is up", "none"),
    ]
