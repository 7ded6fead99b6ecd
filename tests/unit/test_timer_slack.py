"""The timer slack: every run placed on the slack's grid (rounded up), the runs due at one
point start in one wake-up, never early, on an idle loop far less than a slack late; 0 keeps
every run at its own time; reloads move the runs onto a new grid; the setting's validation."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import math
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
from apscheduler.triggers.interval import IntervalTrigger
from hypothesis import assume, given, settings, strategies as st

from pingmon.config import json_schema, load_config
from pingmon.errors import ConfigError
from pingmon.fields import parse_slack
from pingmon.scheduler import (
    GRID_TOLERANCE,
    RUNS_PER_WINDOW,
    SLACK_SHARE,
    Cadence,
    CheckScheduler,
    GridIntervalTrigger,
    SchedulePlan,
    SlackGrid,
    _trigger,
    effective_slack,
    grid_point,
)
from pingmon.targets import Target
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


def jittered(name: str, interval: float, jitter: float) -> Target:
    """``make_target`` with a jitter (+-fraction of the interval)."""
    target = make_target(name, interval=interval)
    return dataclasses.replace(
        target, schedule=dataclasses.replace(target.schedule, jitter=jitter)
    )


def _observe(slack: float, seconds: float, loop: Callable[[], asyncio.AbstractEventLoop] | None,
             jitter: float = 0.0) -> Observed:  # fmt: skip
    """Run ``TARGETS`` targets every ``INTERVAL`` (+-``jitter``) with ``slack`` on a fresh
    loop (``loop``: its factory; None: asyncio's) for ``seconds``; what the scheduler did."""
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
        scheduler.sync([jittered(f"t{index}", INTERVAL, jitter) for index in range(TARGETS)])
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


@pytest.mark.parametrize(("loop", "jitter"), [("asyncio", 0.0), ("asyncio", 0.1), ("uvloop", 0.1)])
def test_on_an_idle_loop_runs_start_far_less_than_a_slack_late(loop: str, jitter: float) -> None:
    """The lag the histogram observes is from each run's own time, and every run's time is
    a point of the slack's grid, the one its timer is set for: on an idle loop the lag is
    what the loop adds (about a millisecond), not the wait for the window's end (spread
    over 0 to the 50 ms slack, a median of about 25 ms, before runs were on the grid). A
    generous margin for a loaded machine; never early."""
    slack = 0.05
    seen = _observe(slack, 1.2, _uvloop() if loop == "uvloop" else None, jitter)
    lags = sorted(seen.lags)
    assert len(lags) >= 60
    assert statistics.median(lags) < slack / 5
    assert lags[int(0.9 * len(lags))] <= slack / 2
    assert min(lags) >= 0.0
    assert all(abs(run / slack - round(run / slack)) < 1e-4 for run in seen.runs)


def test_on_uvloop_a_window_of_runs_on_the_grid_costs_one_wake_up() -> None:
    """uvloop's timers fire up to about a millisecond early, and the runs are on the grid
    point the timer is set for: once a timer has fired early, each is set a tick later, so
    almost no wake-up finds nothing due (before: about one window in four woke twice,
    15 % of the wake-ups here), and the runs still start about a millisecond late, not
    spread over the slack."""
    slack = 0.01
    seen = _observe(slack, 2.0, _uvloop(), 0.1)
    starting = [wake for wake in seen.wakes if wake]
    assert len(seen.runs) >= 120
    assert len(seen.wakes) - len(starting) <= 0.05 * len(seen.wakes) + 3
    assert statistics.median(seen.lags) < slack / 2
    assert min(seen.starts) >= 0.0


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
    assert effective_slack(slack, cadences) == expected  # a few targets: the rate never binds


@given(
    st.floats(min_value=0, max_value=1),
    st.lists(
        st.tuples(st.floats(min_value=0.001, max_value=600),
                  st.none() | st.floats(min_value=0.001, max_value=600)),
        max_size=300,
    ),
    st.integers(min_value=1, max_value=10_000),
)  # fmt: skip
@settings(deadline=None)  # up to 30,000 cadences an example
def test_the_slack_holds_at_most_runs_per_window_on_average(
    slack: float, cadences: list[tuple[float, float | None]], copies: int
) -> None:
    """Against the straightforward sums: the slack is the least of the setting, a share of
    the shortest interval or failure interval, and the time in which every target (each at
    its shorter interval) is due ``RUNS_PER_WINDOW`` times in all."""
    planned = [Cadence(interval, 0.1, failure) for interval, failure in cadences] * (
        copies if len(cadences) <= 3 else 1
    )
    shortest = [min(c.interval, c.failure_interval or c.interval) for c in planned]
    rate = math.fsum(1 / s for s in shortest)
    effective = effective_slack(slack, planned)
    assert effective <= slack
    if planned:
        assert effective <= SLACK_SHARE * min(shortest)
        assert effective * rate <= RUNS_PER_WINDOW * (1 + 1e-9)
        assert effective == pytest.approx(
            min(slack, SLACK_SHARE * min(shortest), RUNS_PER_WINDOW / rate), rel=1e-9
        )
    else:
        assert effective == slack


def test_many_targets_cap_the_slack_at_a_window_of_runs_per_wake_up() -> None:
    """A 1 s slack at 100,000 targets every 60 s would start 1,667 runs in one wake-up;
    capped, 50 a window (30 ms). The default 10 ms (17 a window) is unchanged."""
    cadences = [Cadence(60.0, 0.1, None)] * 100_000
    assert effective_slack(1.0, cadences) == pytest.approx(0.03)
    assert effective_slack(0.01, cadences) == 0.01
    failing = [Cadence(60.0, 0.1, 15.0)] * 100_000  # every target may fail at once
    assert effective_slack(1.0, failing) == pytest.approx(0.0075)


def test_a_large_slack_over_many_targets_starts_windows_of_runs_not_bursts() -> None:
    """1,000 runs a second with a 1 s slack (its interval share, 200 ms, allows 200 runs a
    window): each wake-up that starts runs starts about ``RUNS_PER_WINDOW`` of them, never
    a burst of hundreds that holds the loop (about 15 ms for 500 submissions alone)."""
    starts: list[int] = []

    async def scenario() -> None:
        scheduler = CheckScheduler(nothing, lambda lag: None, timer_slack=1.0)
        inner = scheduler._scheduler
        executor = inner._executors["default"]
        process_jobs, submit_job = inner._process_jobs, executor.submit_job

        def counted() -> float | None:
            starts.append(0)
            return process_jobs()

        def submit(job: Any, run_times: list[datetime], *scheduled: float | None) -> None:
            starts[-1] += 1
            submit_job(job, run_times, *scheduled)

        inner._process_jobs = counted  # type: ignore[method-assign]
        executor.submit_job = submit
        scheduler.sync([make_target(f"t{index}", interval=2.0) for index in range(2_000)])
        scheduler.start()
        try:
            await asyncio.sleep(1.0)
        finally:
            scheduler.shutdown()

    with asyncio.Runner() as runner:
        runner.run(scenario())
    starting = sorted(count for count in starts if count)
    assert sum(starting) >= 500
    assert statistics.median(starting) <= 100  # 50 a window on average; 200 uncapped


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


async def test_a_new_slack_moves_the_timer_already_set_at_once() -> None:
    """A reload from a 1 s slack to 0 (or any change of the slack in use) sets the timer
    again on the new grid at once: the next run is not left up to the old slack late (the
    timer set under the old slack would fire at its 1 s grid point)."""
    scheduler = CheckScheduler(nothing, lambda lag: None, timer_slack=1.0)
    scheduler.sync([make_target("slow", interval=30.0)])  # first run in 11 s; cap 3 s
    scheduler.start()
    try:
        await asyncio.sleep(0.01)
        inner = scheduler._scheduler
        loop = asyncio.get_running_loop()
        next_run = inner._jobstores["default"].get_next_timestamp()
        scheduler.timer_slack = 0.0
        await asyncio.sleep(0.01)
        wait = inner._timeout.when() - loop.time()
        assert abs(wait - (next_run - time.time())) < 0.005
    finally:
        scheduler.shutdown()


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
        # A float keeps its digits: not "1s is longer than 1s" (six significant digits).
        ("1.0000001s", "timer_slack: 1.0000001s is longer than 1s"),
        ("1.0000001", "timer_slack: 1.0000001s is longer than 1s"),
        # YAML reads 400 digits as one int, past a float's range: a line, not OverflowError.
        ("1" + "0" * 400, "timer_slack: must be a finite duration"),
        ("-1" + "0" * 400, "timer_slack: must be 0 (no slack) or a positive duration"),
        (".nan", "timer_slack: must be a positive duration"),
        ("[5ms]", "timer_slack: ['5ms'] is not a duration"),
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


@functools.cache
def _slack_schema() -> jsonschema.Draft7Validator:
    """The schema's ``timer_slack``, built once (the whole schema takes about 40 ms)."""
    return jsonschema.Draft7Validator(json_schema()["properties"]["timer_slack"])


@given(
    st.one_of(
        st.floats(min_value=0, max_value=2),
        st.sampled_from([0, 0.0, -0.0, 0.0005, 0.000999, 0.001, 1, 1.0, 1.0000001]),
    )
)
def test_the_schema_takes_exactly_the_numbers_the_setting_takes(seconds: float) -> None:
    """``pingmon config schema`` (and the chart's values.schema.json, made from it) accepts a
    number for ``timer_slack`` exactly when the configuration does: 0 or 1 ms to 1 s, not the
    0 to 1 ms an editor would pass and pingmon refuse."""
    try:
        parse_slack(seconds)
    except ValueError:
        taken = False
    else:
        taken = True
    assert _slack_schema().is_valid(seconds) == taken


@pytest.mark.parametrize("step", [-0.3, 0.3])
def test_a_wall_clock_step_under_a_set_timer_neither_spins_nor_stops_the_runs(
    step: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The slack's grid is on the wall clock (the job store's), the loop's timers on the
    monotonic one: a step of the wall clock while a timer is set (back: the grid point
    not reached when the timer fires; forward: many runs due at once) leaves a wake-up
    per window or two, no loop of wake-ups, and the runs going on (back by 0.3 s: they
    wait for their times to come again, as APScheduler's runs always did)."""
    uvloop = pytest.importorskip("uvloop")
    offset = [0.0]
    real = time.time
    clock = SimpleNamespace(time=lambda: real() + offset[0], monotonic=time.monotonic)
    monkeypatch.setattr("pingmon.scheduler.time", clock)
    counts = {"wakes": 0, "runs": 0}

    async def check(name: str) -> None:
        counts["runs"] += 1

    async def scenario() -> None:
        scheduler = CheckScheduler(check, lambda lag: None, timer_slack=0.01)
        inner = scheduler._scheduler
        process_jobs = inner._process_jobs

        def counted() -> float | None:
            counts["wakes"] += 1
            return process_jobs()

        inner._process_jobs = counted  # type: ignore[method-assign]
        scheduler.sync([make_target(f"t{index}", interval=0.2) for index in range(20)])
        scheduler.start()
        try:
            await asyncio.sleep(0.3)
            counts.update(wakes=0, runs=0)
            offset[0] = step
            await asyncio.sleep(0.7)
        finally:
            scheduler.shutdown()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())
    assert counts["runs"] >= 20  # 100 a second: at least 0.2 s of them after the step
    assert counts["wakes"] <= 2 * counts["runs"] + 10  # the timer slack's two a window


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(when: datetime) -> int:
    """``when`` in whole microseconds since the epoch (exact: datetimes hold microseconds)."""
    return (when - EPOCH) // timedelta(microseconds=1)


def _runs(trigger: IntervalTrigger, count: int, now: datetime) -> list[datetime]:
    """The trigger's first ``count`` run times, each asked for as APScheduler asks."""
    runs: list[datetime] = [trigger.get_next_fire_time(None, now)]
    for _ in range(count - 1):
        runs.append(trigger.get_next_fire_time(runs[-1], runs[-1]))
    return runs


@given(
    interval=st.floats(min_value=0.001, max_value=7 * 86400),
    jitter=st.sampled_from([0.0, 0.5]) | st.floats(min_value=0, max_value=0.5),
    first_in=st.floats(min_value=0, max_value=1),  # a share of the interval
    share=st.floats(min_value=0, max_value=1),  # of the largest slack the caps allow
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
@settings(deadline=None, max_examples=300)
def test_with_a_slack_every_run_is_a_point_of_its_grid_never_early_and_each_step_once(
    interval: float, jitter: float, first_in: float, share: float, seed: int
) -> None:
    """Random intervals, jitters, first runs and slacks (up to the caps: ``SLACK_SHARE`` of
    the interval, 1 s): every run time, the first too, is a multiple of the slack to the
    microsecond; each run is its interval step's (the steps consecutive: none skipped, none
    twice), never before the step's un-jittered point nor before its jittered time (bar
    the microsecond the reading allows; down by less than a slack only where rounding up
    would have reached the next step's point), and at most the jitter plus a slack after
    the point."""
    grid = SlackGrid(share * min(SLACK_SHARE * interval, 1.0))
    assume(grid.micros)
    slack = grid.seconds
    draws: list[float] = []

    def uniform(a: float, b: float) -> float:
        draws.append(random.Random(seed + len(draws)).uniform(a, b))
        return draws[-1]

    trigger = _trigger(Cadence(interval, jitter, None), interval, first_in * interval, grid)
    start, interval = trigger.start_date, trigger.interval_length  # whole microseconds
    original, random.uniform = random.uniform, uniform
    try:
        runs = _runs(trigger, 40, datetime.now(UTC))
    finally:
        random.uniform = original
    span = 2 * jitter * interval  # the trigger's jitter: 0 to 2j of the interval
    assert len(draws) == (len(runs) if span else 0)
    steps = [math.floor(((run - start).total_seconds() + 1e-6) / interval) for run in runs]
    assert steps == list(range(steps[0], steps[0] + len(runs)))
    assert steps[0] in (0, 1)
    for index, (run, step) in enumerate(zip(runs, steps, strict=True)):
        assert _micros(run) % grid.micros == 0
        offset = (run - start).total_seconds() - step * interval  # after the step's point
        assert -1e-6 <= offset < span + slack + 1e-6
        drawn = draws[index] if span else 0.0
        if offset < drawn - 1e-6:  # rounded down: up would have reached the next step
            assert offset > drawn - slack - 1e-6
            assert offset + slack > interval - 3e-6


def _old_successor(trigger: GridIntervalTrigger, previous: datetime | None, now: datetime
                   ) -> datetime | None:  # fmt: skip
    """The trigger's run after ``previous`` as it was computed before runs were put on the
    slack's grid (the straightforward version): APScheduler's own for the first run and
    without jitter, else the step after the previous run's plus a fresh jitter."""
    if previous is None or not trigger.jitter:
        return IntervalTrigger.get_next_fire_time(trigger, previous, now)  # type: ignore[no-any-return]
    elapsed = (previous - trigger.start_date).total_seconds()
    steps = math.floor((elapsed + 1e-6) / trigger.interval_length)
    timestamp = trigger.start_date.timestamp() + (steps + 1) * trigger.interval_length
    timestamp += random.uniform(0, trigger.jitter)
    return datetime.fromtimestamp(timestamp, trigger.timezone)


@given(
    interval=st.floats(min_value=0.001, max_value=7 * 86400),
    jitter=st.sampled_from([0.0, 0.1, 0.5]) | st.floats(min_value=0, max_value=0.5),
    first_in=st.floats(min_value=0, max_value=1),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    grid=st.sampled_from([None, 0.0]),
)
@settings(deadline=None)
def test_without_a_slack_the_run_times_are_the_ones_before_the_grid(
    interval: float, jitter: float, first_in: float, seed: int, grid: float | None
) -> None:
    """Slack 0 (or no grid): the same run times, to the microsecond, as the computation
    before runs were placed on the slack's grid, from the same random draws."""
    trigger = _trigger(
        Cadence(interval, jitter, None),
        interval,
        first_in * interval,
        None if grid is None else SlackGrid(grid),
    )
    now = datetime.now(UTC)
    random.seed(seed)
    runs = _runs(trigger, 30, now)
    random.seed(seed)
    expected = [_old_successor(trigger, None, now)]
    for _ in range(29):
        previous = expected[-1]
        assert previous is not None
        expected.append(_old_successor(trigger, previous, previous))
    assert runs == expected


@given(
    micros=st.integers(min_value=10, max_value=1_000_000),
    ahead=st.floats(min_value=0, max_value=100_000),
)
def test_a_run_on_the_grid_is_recognised_as_its_point_and_the_timer_is_set_for_it(
    micros: int, ahead: float
) -> None:
    """A run placed on a point (today's epoch, up to a day ahead), stored as a datetime and
    read back as a float timestamp, is taken for that point, not the next one (which would
    start it a slack late), by ``grid_point`` and by the timer (``_slacked``): the timer is
    set for the run's own time, within the tolerance."""
    slack = micros / 1e6
    point = math.ceil((time.time() + ahead) * 1e6 / micros) * micros  # exact microseconds
    stored = datetime.fromtimestamp(point / 1e6, UTC)
    assert _micros(stored) == point
    at = stored.timestamp()
    assert abs(grid_point(at, slack) * 1e6 - point) < 0.5
    inner = CheckScheduler(nothing, lambda lag: None)._scheduler
    inner.timer_slack = slack
    before = time.time()
    wait = inner._slacked(at - before + 5 * GRID_TOLERANCE, at)  # a wait that read late
    assert abs(inner._deadline * 1e6 - point) < 0.5
    assert wait <= max(at - before, 0.0) + 1e-6


def _next_runs(scheduler: CheckScheduler) -> dict[str, int]:
    return {name: _micros(when) for name, when in scheduler.next_runs().items()}


async def test_after_a_reload_that_changes_the_slack_runs_land_on_its_grid_within_an_interval(
) -> None:  # fmt: skip
    """A reload that changes the slack leaves the runs already stored where they are (none
    moved, earlier or later); the run after each, computed once that one came, is on the
    new grid: within one interval (0.2 s here) every target's next run is."""
    targets = [jittered(f"t{index}", 0.2, 0.1) for index in range(50)]
    scheduler = CheckScheduler(nothing, lambda lag: None, timer_slack=0.01)
    scheduler.start()
    try:
        scheduler.sync(targets)
        plan = SchedulePlan(dict(scheduler._cadences))  # to apply again with other slacks
        before = _next_runs(scheduler)
        assert all(run % 10_000 == 0 for run in before.values())
        for slack, micros in [(0.003, 3_000), (0.0, 0), (0.007, 7_000)]:
            scheduler.apply(plan, timer_slack=slack)
            assert scheduler._grid.micros == micros
            stored = _next_runs(scheduler)
            assert all(stored[name] == before[name] for name in before.keys() & stored.keys())
            await asyncio.sleep(0.3)  # every target ran once or more since
            before = _next_runs(scheduler)
            if micros:
                assert all(run % micros == 0 for run in before.values())
            else:
                assert sum(run % 1_000 != 0 for run in before.values()) >= 40  # no grid
    finally:
        scheduler.shutdown()


async def test_the_first_runs_of_a_schedule_are_on_the_grid_it_ends_with() -> None:
    """The slack's share for the schedule is taken before its jobs are added: with 70 ms
    intervals a 10 ms slack is capped to 7 ms, and every target's first run is on the 7 ms
    grid (not on the 10 ms one the scheduler had before the schedule came, off the new
    grid once)."""
    scheduler = CheckScheduler(nothing, lambda lag: None, timer_slack=0.01)
    scheduler.start()
    try:
        scheduler.sync([jittered(f"t{index}", 0.07, 0.1) for index in range(20)])
        assert scheduler._grid.micros == 7_000
        assert scheduler._scheduler.timer_slack == pytest.approx(0.007)
        assert all(run % 7_000 == 0 for run in _next_runs(scheduler).values())
    finally:
        scheduler.shutdown()


async def test_a_failure_interval_switch_places_its_runs_on_the_grid_keeping_its_meaning(
) -> None:  # fmt: skip
    """A failing target's recheck comes within its ``failure_interval`` (plus the slack),
    on the grid; back to its ``interval`` on recovery, on the grid too."""
    scheduler = CheckScheduler(nothing, lambda lag: None, timer_slack=0.01)
    scheduler.start()
    try:
        scheduler.sync([make_target("a", interval=600.0, failure_interval=5.0)])
        scheduler.set_failing("a", True)
        soon = scheduler.next_run("a")
        assert soon is not None
        assert _micros(soon) % 10_000 == 0
        assert 4.0 <= (soon - datetime.now(UTC)).total_seconds() <= 5.0 + 0.01
        scheduler.set_failing("a", False)
        later = scheduler.next_run("a")
        assert later is not None
        assert _micros(later) % 10_000 == 0
        assert (later - datetime.now(UTC)).total_seconds() > 500
    finally:
        scheduler.shutdown()


def test_on_asyncio_a_wall_clock_step_back_does_not_make_every_timer_a_tick_late(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """asyncio's timers never fire early (docs/scheduling.md: no tick there). A timer that
    fires before its grid point because the wall clock stepped back under it (NTP, a VM
    resumed) did not fire early on the loop's clock: the loop is not taken for one whose
    timers do (``_fires_early``), which would set every later timer a tick past its point
    for the rest of the process."""
    offset = [0.0]
    real = time.time
    clock = SimpleNamespace(time=lambda: real() + offset[0], monotonic=time.monotonic)
    monkeypatch.setattr("pingmon.scheduler.time", clock)
    runs = {"after": 0}

    async def check(name: str) -> None:
        runs["after"] += 1

    async def scenario() -> bool:
        scheduler = CheckScheduler(check, lambda lag: None, timer_slack=0.01)
        scheduler.sync([make_target(f"t{index}", interval=0.1) for index in range(5)])
        scheduler.start()
        try:
            await asyncio.sleep(0.25)
            assert not scheduler._scheduler._fires_early  # asyncio: never early
            offset[0] = -0.05
            runs["after"] = 0
            for _ in range(100):  # until runs came after the step (their times came again)
                await asyncio.sleep(0.02)
                if runs["after"] >= 5:
                    break
            return bool(scheduler._scheduler._fires_early)
        finally:
            scheduler.shutdown()

    with asyncio.Runner() as runner:
        fires_early = runner.run(scenario())
    assert runs["after"] >= 5
    assert not fires_early
