"""The daemon's timer slack: the file's at start, a reload's at once, capped by the intervals."""

from __future__ import annotations

from pingmon.sandbox import Sandbox
from tests.integration.conftest import ConfigWriter, StartDaemon, ninepic_target


async def test_the_daemon_takes_the_files_slack_and_a_reload_changes_it(
    config_writer: ConfigWriter, start_daemon: StartDaemon, sandbox: Sandbox
) -> None:
    targets = [ninepic_target("slow", interval="10s", timeout="1s")]
    running = await start_daemon(config_writer.load(targets, timer_slack="20ms"))
    scheduler = running.daemon.scheduler
    assert scheduler.timer_slack == 0.02
    assert scheduler._scheduler.timer_slack == 0.02

    config_writer.write(targets, timer_slack="0")
    ok, problems = await running.daemon.reload()
    assert ok, problems
    assert scheduler._scheduler.timer_slack == 0.0

    fast = [*targets, ninepic_target("fast", interval="50ms", timeout="40ms")]
    config_writer.write(fast, timer_slack="20ms")
    ok, problems = await running.daemon.reload()
    assert ok, problems
    assert scheduler.timer_slack == 0.02
    assert abs(scheduler._scheduler.timer_slack - 0.005) < 1e-9  # a tenth of 50 ms
