"""Scheduling: stable spread of first runs, job options, failure_interval switching."""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.events import EVENT_JOB_SUBMITTED
from apscheduler.executors.base import MaxInstancesReachedError
from apscheduler.job import Job
from apscheduler.triggers.interval import IntervalTrigger
from hypothesis import given, strategies as st

from pingmon.providers.http import HttpParams, HttpSettings
from pingmon.schedule import Schedule
from pingmon.scheduler import (
    CheckScheduler,
    GridIntervalTrigger,
    ScheduleError,
    _run_times,
    plan_schedule,
    spread_offset,
)
from pingmon.targets import Target


def make_target(
    name: str, interval: float = 60.0, failure_interval: float | None = None
) -> Target:
    return Target(
        name=name,
        provider_name="p",
        provider=HttpSettings(base_url="http://127.0.0.1:9"),
        params=HttpParams(),
        schedule=Schedule(
            interval=interval,
            timeout=1.0,
            jitter=0.0,
            failure_interval=failure_interval,
            retries=0,
            max_body_bytes=1024,
        ),
    )


async def nothing(name: str) -> None:
    return None


@given(st.text(min_size=1, max_size=50), st.floats(min_value=0.1, max_value=86400))
def test_spread_offset_is_stable_and_within_the_interval(name: str, interval: float) -> None:
    offset = spread_offset(name, interval)
    assert 0 <= offset < interval
    assert spread_offset(name, interval) == offset


def test_spread_offsets_of_many_targets_cover_the_interval() -> None:
    offsets = sorted(spread_offset(f"target-{i}", 60.0) for i in range(1000))
    assert offsets[0] < 1.0
    assert offsets[-1] > 59.0
    assert max(b - a for a, b in itertools.pairwise(offsets)) < 2.0


async def test_one_job_per_target_never_piling_up() -> None:
    scheduler = CheckScheduler(nothing, lambda lag: None)
    scheduler.start()
    try:
        scheduler.sync([make_target("a"), make_target("b", interval=30.0)])
        job = scheduler._scheduler.get_job("a")
        assert job.max_instances == 1
        assert job.coalesce is True
        assert job.misfire_grace_time is None
        assert {j.id for j in scheduler._scheduler.get_jobs()} == {"a", "b"}
        next_run = scheduler.next_run("a")
        assert next_run is not None
        expected = datetime.now(UTC) + timedelta(seconds=spread_offset("a", 60.0))
        assert abs((next_run - expected).total_seconds()) < 1.0
    finally:
        scheduler.shutdown()


async def test_sync_keeps_unchanged_timers_and_drops_removed_targets() -> None:
    scheduler = CheckScheduler(nothing, lambda lag: None)
    scheduler.start()
    try:
        scheduler.sync([make_target("a"), make_target("b")])
        before = scheduler.next_run("a")
        scheduler.sync([make_target("a"), make_target("c")])
        assert scheduler.next_run("a") == before
        assert scheduler.next_run("b") is None
        assert scheduler.next_run("c") is not None
    finally:
        scheduler.shutdown()


async def test_failing_target_switches_to_its_failure_interval_and_back() -> None:
    scheduler = CheckScheduler(nothing, lambda lag: None)
    scheduler.start()
    try:
        scheduler.sync([make_target("a", interval=600.0, failure_interval=5.0)])
        scheduler.set_failing("a", True)
        soon = scheduler.next_run("a")
        assert soon is not None
        assert (soon - datetime.now(UTC)).total_seconds() <= 5.0
        scheduler.set_failing("a", False)
        later = scheduler.next_run("a")
        assert later is not None
        assert (later - datetime.now(UTC)).total_seconds() > 500
    finally:
        scheduler.shutdown()


def _mean_interval(trigger_class: type[IntervalTrigger], runs: int = 2000) -> float:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    trigger = trigger_class(seconds=1, start_date=start, jitter=0.2)
    fire_times = [trigger.get_next_fire_time(None, start)]
    for _ in range(runs):
        fire_times.append(trigger.get_next_fire_time(fire_times[-1], fire_times[-1]))
    return float((fire_times[-1] - fire_times[0]).total_seconds() / runs)


def test_jitter_does_not_stretch_the_interval() -> None:
    random.seed(7)
    assert _mean_interval(IntervalTrigger) > 1.08  # APScheduler's own trigger drifts
    assert _mean_interval(GridIntervalTrigger) == pytest.approx(1.0, abs=0.01)


def test_jittered_runs_stay_within_their_grid_slot() -> None:
    random.seed(11)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    trigger = GridIntervalTrigger(seconds=10, start_date=start, jitter=4)
    fire_time = trigger.get_next_fire_time(None, start)
    for step in range(1, 200):
        assert fire_time is not None
        fire_time = trigger.get_next_fire_time(fire_time, fire_time)
        assert fire_time is not None
        offset = (fire_time - start).total_seconds() - 10 * step
        assert 0 <= offset <= 4


@pytest.mark.parametrize("interval", [0.1, 0.05, 0.3, 1.0, 7.0])
def test_a_jitter_drawn_as_zero_still_moves_to_the_next_grid_point(
    monkeypatch: pytest.MonkeyPatch, interval: float
) -> None:
    """At today's epoch (1.8e9 s) a float timestamp is 2.4e-7 s coarse: the grid step of a
    run that fell on its grid point is found from exact microseconds, not from the
    difference of two float timestamps (which gave the step before, so the run came again;
    and when it came at the very same microsecond, APScheduler's run-time loop never
    ended)."""
    monkeypatch.setattr(random, "uniform", lambda low, high: low)
    start = datetime(2026, 11, 30, 19, 14, 28, 123457, tzinfo=UTC)
    trigger = GridIntervalTrigger(seconds=interval, start_date=start, jitter=interval / 10)
    fire_time = trigger.get_next_fire_time(None, start)
    for step in range(1, 500):
        assert fire_time is not None
        fire_time = trigger.get_next_fire_time(fire_time, fire_time)
        assert fire_time is not None
        assert (fire_time - start).total_seconds() == pytest.approx(step * interval, abs=1e-6)


@pytest.mark.parametrize(("interval", "jitter"), [(0.1, 2e-6), (0.1, 2e-4), (0.05, 1e-3)])
def test_tiny_jitters_never_repeat_a_run(interval: float, jitter: float) -> None:
    random.seed(3)
    start = datetime(2026, 11, 30, 19, 14, 28, 123457, tzinfo=UTC)
    trigger = GridIntervalTrigger(seconds=interval, start_date=start, jitter=jitter)
    fire_time = trigger.get_next_fire_time(None, start)
    for _ in range(20_000):
        assert fire_time is not None
        successor = trigger.get_next_fire_time(fire_time, fire_time)
        assert successor is not None
        assert (successor - fire_time).total_seconds() > interval - jitter - 1e-6
        fire_time = successor


DAY = 86400.0


@pytest.mark.parametrize(
    ("interval", "failure_interval", "field"),
    [
        (1e9 * DAY, None, "interval"),  # past timedelta's range
        (5000 * 365 * DAY, None, "interval"),  # the first run fits, the second is past 9999
        (math.inf, None, "interval"),
        (60.0, 1e12 * DAY, "failure_interval"),
    ],
)
def test_a_cadence_past_what_a_timer_holds_is_refused_naming_target_and_field(
    interval: float, failure_interval: float | None, field: str
) -> None:
    with pytest.raises(ScheduleError) as raised:
        plan_schedule([make_target("fine"), make_target("huge", interval, failure_interval)])
    assert (raised.value.target, raised.value.field) == ("huge", field)
    assert raised.value.reason.startswith("cannot be scheduled: runs ")


@pytest.mark.parametrize("interval", [0.001, 7 * DAY, 365 * DAY, 1000 * 365 * DAY])
def test_long_but_representable_cadences_are_planned(interval: float) -> None:
    schedule = plan_schedule([make_target("t", interval, failure_interval=interval / 2)])
    assert set(schedule.cadences) == {"t"}


async def test_a_refused_schedule_leaves_every_timer_as_it_was() -> None:
    scheduler = CheckScheduler(nothing, lambda lag: None)
    scheduler.start()
    try:
        scheduler.sync([make_target("a"), make_target("b")])
        before = {name: scheduler.next_run(name) for name in ("a", "b")}
        with pytest.raises(ScheduleError):
            scheduler.sync([make_target("a", interval=30.0), make_target("huge", 1e9 * DAY)])
        assert {name: scheduler.next_run(name) for name in ("a", "b")} == before
        assert scheduler.next_run("huge") is None
        scheduler.sync([make_target("c")])  # and the next sync works
        assert [job.id for job in scheduler._scheduler.get_jobs()] == ["c"]
    finally:
        scheduler.shutdown()


async def test_apply_ends_with_the_planned_timers_even_if_a_job_went_missing() -> None:
    scheduler = CheckScheduler(nothing, lambda lag: None)
    scheduler.start()
    try:
        scheduler.sync([make_target("a"), make_target("b"), make_target("c")])
        for name in ("a", "b", "c"):
            scheduler._scheduler.remove_job(name)
        scheduler.sync([make_target("b", interval=30.0), make_target("c")])
        assert sorted(job.id for job in scheduler._scheduler.get_jobs()) == ["b", "c"]
    finally:
        scheduler.shutdown()


def test_a_runs_successor_is_drawn_once_however_often_it_is_asked_for() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    trigger = GridIntervalTrigger(seconds=10, start_date=start, jitter=4)
    first = trigger.get_next_fire_time(None, start)
    assert first is not None
    successor = trigger.get_next_fire_time(first, first)
    assert all(trigger.get_next_fire_time(first, first) == successor for _ in range(20))
    assert successor is not None
    after = {trigger.get_next_fire_time(successor, successor) for _ in range(20)}
    assert len(after) == 1
    assert after != {successor}


async def _until(condition: Callable[[], bool], seconds: float = 3.0) -> None:
    """Wait, in short sleeps, until ``condition`` holds (bounded: fails after ``seconds``)."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_runs_repeat_and_a_run_still_going_is_skipped_as_apscheduler_skips_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """pingmon's own ``_process_jobs``: every due run starts, its lag is observed, the next run
    is stored (one heap entry per job, none stale), and ``max_instances=1`` skips a run
    while the last one still goes, with APScheduler's warning."""
    caplog.set_level(logging.WARNING, logger="apscheduler")  # pingmon's logging sets ERROR
    runs: dict[str, int] = {"fast": 0, "slow": 0}
    lags: list[float] = []
    release = asyncio.Event()

    async def check(name: str) -> None:
        runs[name] += 1
        if name == "slow":
            await release.wait()

    scheduler = CheckScheduler(check, lags.append)
    scheduler.sync([make_target("fast", interval=0.05), make_target("slow", interval=0.05)])
    scheduler.start()
    try:
        await _until(lambda: runs["fast"] >= 4 and "maximum number of running" in caplog.text)
        assert runs["slow"] == 1
        assert len(lags) == sum(runs.values())
        assert min(lags) >= 0.0
        store = scheduler._scheduler._jobstores["default"]
        assert sorted(entry[1] for entry in store._heap) == ["fast", "slow"]
    finally:
        release.set()
        scheduler.shutdown()


async def test_with_a_listener_apschedulers_own_processing_runs_the_jobs() -> None:
    runs: list[str] = []
    events: list[int] = []

    async def check(name: str) -> None:
        runs.append(name)

    scheduler = CheckScheduler(check, lambda lag: None)
    scheduler._scheduler.add_listener(lambda event: events.append(event.code), EVENT_JOB_SUBMITTED)
    scheduler.sync([make_target("a", interval=0.05)])
    scheduler.start()
    try:
        await _until(lambda: len(runs) >= 3)
        assert events.count(EVENT_JOB_SUBMITTED) >= 3  # submission events: APScheduler's path
    finally:
        scheduler.shutdown()


def _run_on_uvloop(seconds: float, jobs: int) -> tuple[int, int, list[float]]:
    """Run ``jobs`` targets every 50 ms on uvloop for ``seconds``: (wake-ups of the
    scheduler, runs started, each start's time minus its scheduled time, in seconds)."""
    uvloop = pytest.importorskip("uvloop")
    wakes = 0
    starts: list[float] = []

    async def scenario() -> None:
        nonlocal wakes
        scheduler = CheckScheduler(nothing, lambda lag: None)
        inner = scheduler._scheduler
        process_jobs = inner._process_jobs

        def counted() -> float | None:
            nonlocal wakes
            wakes += 1
            return process_jobs()

        inner._process_jobs = counted  # type: ignore[method-assign]
        executor = inner._executors["default"]
        submit_job = executor.submit_job

        def submit(job: Any, run_times: list[datetime], *scheduled: float | None) -> None:
            starts.append(datetime.now(UTC).timestamp() - run_times[-1].timestamp())
            submit_job(job, run_times, *scheduled)

        executor.submit_job = submit
        scheduler.sync([make_target(f"t{index}", interval=0.05) for index in range(jobs)])
        scheduler.start()
        try:
            await asyncio.sleep(seconds)
        finally:
            scheduler.shutdown()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())
    return wakes, len(starts), starts


def test_on_uvloop_a_timer_that_fires_early_is_not_spun_on_and_no_run_starts_early() -> None:
    """uvloop's timers fire up to a millisecond early (and at once for a wait under half of
    one): the scheduler sets the timer again for whole milliseconds instead of waking the
    loop at once until the time comes (7.5 wake-ups a run here before, 1.1 after), and never
    starts a run before its scheduled time."""
    wakes, runs, starts = _run_on_uvloop(seconds=0.6, jobs=20)
    assert runs >= 40
    assert wakes < 2.5 * runs
    assert min(starts) >= 0.0


@pytest.mark.parametrize("missed", [0, 1, 7])
def test_pingmons_run_times_are_apschedulers_to_the_microsecond(missed: int) -> None:
    """``_run_times`` (one trigger call per run) gives the runs ``Job._get_run_times`` gives,
    and the same next run as the trigger asked again for the last, as APScheduler's
    ``_process_jobs`` asks; with the same random draws, so the same datetimes exactly."""
    start = datetime(2026, 11, 30, 19, 14, 28, 123457, tzinfo=UTC)

    def job() -> SimpleNamespace:
        trigger = GridIntervalTrigger(seconds=10, start_date=start, jitter=3)
        first = trigger.get_next_fire_time(None, start)
        return SimpleNamespace(trigger=trigger, next_run_time=first)

    for seed in range(20):
        random.seed(seed)
        ours = job()
        assert ours.next_run_time is not None
        now = ours.next_run_time + timedelta(seconds=10 * missed + 5)
        run_times, next_run = _run_times(ours, now)
        random.seed(seed)
        theirs = job()
        expected = Job._get_run_times(theirs, now)
        assert run_times == expected
        assert len(run_times) == missed + 1  # jitter 3 s, now 5 s past a grid point
        assert next_run == theirs.trigger.get_next_fire_time(expected[-1], now)
        assert next_run is not None
        assert next_run > now


def test_run_times_in_a_dst_fold_are_apschedulers() -> None:
    """A trigger in a zone with DST: the run an hour after 02:40 CEST is 02:40 CET (fold=1),
    which compares by wall clock as due at 02:45 CEST though it is 55 minutes ahead;
    ``_run_times`` compares instants, as ``Job._get_run_times`` does."""
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 10, 25, 0, 40, tzinfo=UTC).astimezone(berlin)  # 02:40 CEST
    now = datetime(2026, 10, 25, 0, 45, tzinfo=UTC).astimezone(berlin)  # 02:45 CEST

    def job() -> SimpleNamespace:
        trigger = IntervalTrigger(hours=1, start_date=start, timezone=berlin)
        return SimpleNamespace(trigger=trigger, next_run_time=start)

    run_times, next_run = _run_times(job(), now)
    assert run_times == Job._get_run_times(job(), now) == [start]
    assert next_run is not None
    assert next_run.astimezone(UTC) == datetime(2026, 10, 25, 1, 40, tzinfo=UTC)  # 02:40 CET
    assert next_run.fold == 1  # the second 02:40: the clocks went back


async def test_a_run_that_raises_is_logged_as_apscheduler_logs_it_and_uncounted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The executor's instance count (kept without ``BaseExecutor``'s lock) goes back to
    zero whether a run ends or raises, so the job runs again; a run that raised is logged
    with APScheduler's message."""
    caplog.set_level(logging.ERROR, logger="apscheduler")
    runs: list[str] = []

    async def check(name: str) -> None:
        runs.append(name)
        if len(runs) == 1:
            raise RuntimeError("boom")

    scheduler = CheckScheduler(check, lambda lag: None)
    scheduler.sync([make_target("a", interval=0.05)])
    scheduler.start()
    executor = scheduler._scheduler._executors["default"]
    try:
        await _until(lambda: len(runs) >= 3)
        await _until(lambda: not executor._instances)
        assert "Error running job a" in caplog.text
        assert "boom" in caplog.text
    finally:
        scheduler.shutdown()


async def test_the_lag_of_coalesced_missed_runs_is_the_last_ones() -> None:
    """Runs missed while the loop was held start once (coalesce), and the lag observed is
    from the last missed run's time, as from ``run_times[-1]`` before; a run on time is
    observed from its own time. A hook set on ``_observe_lag`` (as benchmarks set one)
    gets every observation from then on."""
    scheduler = CheckScheduler(nothing, lambda lag: None)
    lags: list[float] = []
    scheduler._observe_lag = lags.append
    assert scheduler._observe_lag == lags.append
    scheduler.sync([make_target("a", interval=10.0)])
    scheduler.start()
    inner = scheduler._scheduler
    store = inner._jobstores["default"]
    try:
        await asyncio.sleep(0.01)
        job = inner.get_job("a")
        first = job.next_run_time
        missed = datetime.now(UTC) - timedelta(seconds=45)  # four or five runs missed
        with inner._jobstores_lock:
            job.next_run_time = missed
            store.update_job(job)
        inner.wakeup()
        await _until(lambda: len(lags) == 1)
        assert lags[0] < 20.0  # from the last missed run (within an interval), not 45 s
        assert inner.get_job("a").next_run_time > datetime.now(UTC)  # no second run due
        assert inner.get_job("a").next_run_time != first
    finally:
        scheduler.shutdown()


@given(st.integers(min_value=1, max_value=4), st.integers(min_value=0, max_value=5))
def test_the_executors_room_is_what_submit_job_refuses(limit: int, running: int) -> None:
    """``CheckExecutor.has_room`` says no exactly when ``submit_job`` would raise
    ``MaxInstancesReachedError`` (the scheduler skips on the answer, without the raise)."""
    executor = CheckScheduler(nothing, lambda lag: None)._executor
    started: list[str] = []

    def record(job: Any, run_times: list[datetime]) -> None:  # no loop here: noted only
        started.append(job.id)

    executor._do_submit_job = record  # type: ignore[method-assign]
    job = SimpleNamespace(id="a", max_instances=limit)
    if running:
        executor._instances["a"] = running
    room = executor.has_room(job)
    refused = False
    try:
        executor.submit_job(job, [datetime.now(UTC)], time.time())
    except MaxInstancesReachedError:
        refused = True
    assert refused is (running >= limit)
    assert room is not refused
    assert started == ([] if refused else ["a"])


async def test_a_skipped_run_is_logged_and_rescheduled_without_reaching_the_executor(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A run due while the last one still goes is skipped on the executor's ``has_room``:
    APScheduler's warning once per skipped run, no lag observed, no ``submit_job`` call (no
    ``MaxInstancesReachedError`` raised), and the job's next run stored on its grid."""
    caplog.set_level(logging.WARNING, logger="apscheduler")
    lags: list[float] = []
    scheduler = CheckScheduler(nothing, lags.append)
    scheduler.sync([make_target("a", interval=10.0)])
    scheduler.start()
    inner = scheduler._scheduler
    store, executor = inner._jobstores["default"], inner._executors["default"]
    submitted: list[str] = []
    submit_job = executor.submit_job

    def submit(job: Any, run_times: list[datetime], *scheduled: float | None) -> None:
        submitted.append(job.id)
        submit_job(job, run_times, *scheduled)

    executor.submit_job = submit
    try:
        await asyncio.sleep(0.01)
        executor._instances["a"] = 1  # a run still going
        due = datetime.now(UTC) - timedelta(seconds=1)
        with inner._jobstores_lock:
            job = inner.get_job("a")
            job.next_run_time = due
            store.update_job(job)
        inner.wakeup()
        await _until(lambda: "maximum number of running instances reached (1)" in caplog.text)
        assert submitted == []
        assert lags == []
        assert caplog.text.count("skipped") == 1
        following = job.trigger.get_next_fire_time(due, datetime.now(UTC))
        assert inner.get_job("a").next_run_time == following
        assert store.get_next_timestamp() == following.timestamp()
    finally:
        executor._instances.clear()
        scheduler.shutdown()


async def test_a_job_replaced_or_removed_while_its_run_goes_on_never_leaks_its_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A reload that replaces a target's job (new interval) while its run goes on: the new
    job's runs are skipped with APScheduler's warning (``max_instances`` counts by id, as
    APScheduler's own executors do) until that run ends, then run; removed and added again
    meanwhile, the same; shut down with a run going, the run is cancelled and uncounted. No
    path leaves a job counted as running after its task ended."""
    caplog.set_level(logging.WARNING, logger="apscheduler")
    runs: list[str] = []
    release = asyncio.Event()

    async def check(name: str) -> None:
        runs.append(name)
        if len(runs) == 1:
            await release.wait()

    scheduler = CheckScheduler(check, lambda lag: None, timer_slack=0.01)
    executor = scheduler._scheduler._executors["default"]
    scheduler.sync([make_target("a", interval=0.05)])
    scheduler.start()
    try:
        await _until(lambda: "maximum number of running" in caplog.text)
        scheduler.sync([make_target("a", interval=0.06)])  # replaced while its run goes
        scheduler.sync([])
        scheduler.sync([make_target("a", interval=0.05)])  # removed and added again
        caplog.clear()
        await _until(lambda: "maximum number of running" in caplog.text)
        assert runs == ["a"]
        assert executor._instances == {"a": 1}
        release.set()
        await _until(lambda: len(runs) >= 3)
        await _until(lambda: not executor._tasks)
        assert executor._instances == {}
        release.clear()
        runs.clear()  # the next run is the first again: it waits
        await _until(lambda: executor._instances == {"a": 1})
    finally:
        scheduler.shutdown()
    await _until(lambda: not executor._tasks)
    assert executor._instances == {}
