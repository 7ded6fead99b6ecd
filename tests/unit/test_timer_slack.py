"""The timer slack: runs due within one slack window start in one wake-up, never early, at
most about a slack late; 0 keeps every run at its own time; the setting's validation."""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, strategies as st

from pingmon.config import load_config
from pingmon.errors import ConfigError
from pingmon.scheduler import SLACK_SHARE, Cadence, CheckScheduler, effective_slack
from tests.unit.test_scheduler import make_target, nothing

INTERVAL = 0.5  # seconds: every target's
TARGETS = 40  # 80 runs a second, spread over the interval by their names' hashes


@dataclass
class Observed:
    """What a scheduler did: the runs each wake-up started (their scheduled times, epoch
    seconds), when each started against its time (seconds, negative: early), the lags the
    histogram's hook got."""

    wakes: list[list[float]] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)

    @property
    def runs(self) -> list[float]:
        return [run for wake in self.wakes for run in wake]


def _observe(slack: float, seconds: float, loop: Callable[[], asyncio.AbstractEventLoop] | None
             ) -> Observed:  # fmt: skip
    """Run ``TARGETS`` targets every ``INTERVAL`` with ``slack`` on a fresh loop (``loop``:
    its factory; None: asyncio's) for ``seconds``; what the scheduler did."""
    seen = Observed()

    async def scenario() -> None:
        scheduler = CheckScheduler(nothing, seen.lags.append, timer_slack=slack)
        inner = scheduler._scheduler
        process_jobs = inner._process_jobs

        def counted() -> float | None:
            seen.wakes.append([])
            return process_jobs()

        inner._process_jobs = counted  # type: ignore[method-assign]
        executor = inner._executors["default"]
        submit_job = executor.submit_job

        def submit(job: Any, run_times: list[datetime], *scheduled: float | None) -> None:
            at = run_times[-1].timestamp()
            seen.starts.append(time.time() - at)
            seen.wakes[-1].append(at)
            submit_job(job, run_times, *scheduled)

        executor.submit_job = submit
        scheduler.sync([make_target(f"t{index}", interval=INTERVAL) for index in range(TARGETS)])
        scheduler.start()
        try:
            await asyncio.sleep(seconds)
        finally:
            scheduler.shutdown()

    with asyncio.Runner(loop_factory=loop) as runner:
        runner.run(scenario())
    return seen


def _uvloop() -> Callable[[], asyncio.AbstractEventLoop]:
    uvloop = pytest.importorskip("uvloop")
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _windows(runs: list[float], slack: float) -> set[int]:
    """The slack windows (grid points, in slacks since the epoch) the runs fall into."""
    return {math.ceil(run / slack) for run in runs}


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_runs_due_within_one_slack_window_start_in_one_wake_up_and_never_early(
    loop: str,
) -> None:
    """With a 50 ms slack the runs (about four a window here) start together: no more
    wake-ups that start runs than windows that hold runs (a few more allowed: uvloop's timer
    fires up to a millisecond early, and a wake-up late on a loaded machine can take the
    next window's first runs), where without the slack nearly every run is its own wake-up;
    and no run starts before its time, on either loop."""
    slack = 0.05
    seen = _observe(slack, 1.2, _uvloop() if loop == "uvloop" else None)
    starting = [wake for wake in seen.wakes if wake]
    windows = _windows(seen.runs, slack)
    assert len(seen.runs) >= 60
    assert len(starting) <= 1.25 * len(windows) + 2
    assert len(seen.runs) / len(starting) >= 2.5
    assert min(seen.starts) >= 0.0
    assert len(seen.wakes) <= 2 * len(starting) + 3  # no spinning on early timers either


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_without_slack_every_run_is_woken_for_at_its_own_time(loop: str) -> None:
    """Slack 0 (``CheckScheduler``'s default): the old timing, runs (their times all differ)
    started by wake-ups of their own but for those a millisecond or two apart (a timer's
    tick, a loaded machine's delay), never early, about as late as a timer is: far from the
    2.5 runs a wake-up and the 25 ms median lag of a 50 ms slack above."""
    seen = _observe(0.0, 0.8, _uvloop() if loop == "uvloop" else None)
    starting = [wake for wake in seen.wakes if wake]
    assert len(seen.runs) >= 40
    assert len(starting) >= 0.6 * len(seen.runs)
    assert min(seen.starts) >= 0.0
    assert statistics.median(seen.lags) < 0.01


def test_on_an_idle_loop_a_run_starts_at_most_about_one_slack_late() -> None:
    """The lag the histogram observes is from each run's own time: spread over the slack
    (the slack shows as lag, as it is), and at most about one slack (a generous margin for a
    loaded machine on most runs)."""
    slack = 0.05
    seen = _observe(slack, 1.2, None)
    lags = sorted(seen.lags)
    assert len(lags) >= 60
    assert statistics.median(lags) > slack / 10  # runs wait for their window's end
    assert lags[int(0.9 * len(lags))] <= slack + 0.025
    assert min(lags) >= 0.0


def test_the_timer_is_set_for_the_next_multiple_of_the_slack_at_or_after_the_run() -> None:
    """``_slacked``: the wait ends on the epoch-seconds grid of the slack, not before the
    run's time and less than a slack after it; slack 0: the wait as given."""
    inner = CheckScheduler(nothing, lambda lag: None)._scheduler
    assert inner._slacked(0.0123) == 0.0123
    for slack, wait in [(0.01, 0.0), (0.01, 0.0123), (0.005, 3.2), (1.0, 0.25)]:
        inner.timer_slack = slack
        before = time.time()
        slacked = inner._slacked(wait)
        after = time.time()
        deadline = inner._deadline
        assert abs(deadline / slack - round(deadline / slack)) < 1e-6
        assert before + wait - 1e-6 <= deadline < after + wait + slack + 1e-6
        assert before + slacked - 1e-6 <= deadline <= after + slacked + 1e-6


@given(
    st.floats(min_value=0, max_value=1),
    st.lists(st.floats(min_value=0.001, max_value=3600), max_size=5),
)
def test_the_slack_is_at_most_a_share_of_the_shortest_interval(
    slack: float, intervals: list[float]
) -> None:
    cadences = [Cadence(i, 0.1, None if k % 2 else i / 2) for k, i in enumerate(intervals)]
    shortest = min(
        (s for c in cadences for s in (c.interval, c.failure_interval) if s is not None),
        default=None,
    )
    expected = slack if shortest is None else min(slack, SLACK_SHARE * shortest)
    assert effective_slack(slack, cadences) == expected


async def test_the_scheduler_caps_the_slack_for_its_shortest_interval_and_follows_changes(
) -> None:  # fmt: skip
    scheduler = CheckScheduler(nothing, lambda lag: None, timer_slack=0.02)
    assert scheduler._scheduler.timer_slack == 0.02
    scheduler.sync([make_target("fast", interval=0.05), make_target("slow", interval=60.0)])
    assert scheduler._scheduler.timer_slack == pytest.approx(0.005)
    scheduler.sync([make_target("slow", interval=60.0)])
    assert scheduler._scheduler.timer_slack == 0.02
    scheduler.timer_slack = 0.0
    assert scheduler._scheduler.timer_slack == 0.0


CONFIG = """\
timer_slack: {value}
providers:
  p: {{type: http, base_url: "http://127.0.0.1:9"}}
targets:
  - {{name: a, provider: p}}
"""


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("0", 0.0), ("0s", 0.0), ("0ms", 0.0), ("0.0", 0.0), ("5ms", 0.005), ("1s", 1.0),
     ("0.02", 0.02)],
)  # fmt: skip
def test_timer_slack_takes_zero_or_a_duration_up_to_a_second(
    tmp_path: Path, value: str, seconds: float
) -> None:
    path = tmp_path / "pingmon.yaml"
    path.write_text(CONFIG.format(value=value), encoding="utf-8")
    assert load_config(path).settings.timer_slack == seconds


def test_timer_slack_defaults_to_ten_milliseconds_and_the_environment_overrides_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "pingmon.yaml"
    path.write_text(CONFIG.format(value=0).replace("timer_slack: 0\n", ""), encoding="utf-8")
    assert load_config(path).settings.timer_slack == 0.01
    monkeypatch.setenv("PINGMON_TIMER_SLACK", "0")
    assert load_config(path).settings.timer_slack == 0.0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2s", "timer_slack: 2s is longer than 1s, the longest timer slack pingmon accepts"),
        ("1.5", "timer_slack: 1.5s is longer than 1s"),
        ("-1ms", "timer_slack: must be 0 (no slack) or a positive duration"),
        ("-0.5", "timer_slack: must be 0 (no slack) or a positive duration"),
        ("soon", "timer_slack: 'soon' is not a duration"),
        ("true", "timer_slack: must be a number, not true or false"),
        ("0.5ms", "timer_slack: 0.5ms is shorter than 1ms"),
    ],
)
def test_a_bad_timer_slack_is_one_line_naming_its_path(
    tmp_path: Path, value: str, message: str
) -> None:
    path = tmp_path / "pingmon.yaml"
    path.write_text(CONFIG.format(value=value), encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    lines = refused.value.lines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{path}: {message}")
