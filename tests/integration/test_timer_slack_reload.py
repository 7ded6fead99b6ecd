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


async def test_a_reload_with_a_bad_slack_is_refused_in_one_line_and_keeps_the_old(
    config_writer: ConfigWriter, start_daemon: StartDaemon, sandbox: Sandbox
) -> None:
    """Every bad value (a 400-digit int among them: YAML reads it as one, past a float's
    range, and it was "cannot be loaded (OverflowError ...)") is one line naming
    ``timer_slack``; the running slack and timers stay."""
    targets = [ninepic_target("slow", interval="10s", timeout="1s")]
    running = await start_daemon(config_writer.load(targets, timer_slack="20ms"))
    scheduler = running.daemon.scheduler
    for bad, reason in [
        (10**400, "must be a finite duration"),
        ("2s", "2s is longer than 1s"),
        (0.0005, "0.0005s is shorter than 1ms"),
        (True, "must be a number, not true or false"),
    ]:
        path = config_writer.write(targets, timer_slack=bad)
        ok, problems = await running.daemon.reload()
        assert not ok
        assert problems == [problems[0]]
        assert problems[0].startswith(f"{path}: timer_slack: {reason}")
        assert scheduler.timer_slack == 0.02
        assert scheduler._scheduler.timer_slack == 0.02
