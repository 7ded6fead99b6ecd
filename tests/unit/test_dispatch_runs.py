"""Dispatch under stress: slow checks, loop stalls, failure-interval switches and reloads
with renamed targets while the scheduler runs. Every run is checked against its trigger's
grid: it starts at or after a grid point (never early), at most once per grid point (never
twice), never while the target's last run still goes (``max_instances=1``), and the lag
observed for it is from that grid point (the last one due, when runs were missed). The
executor's count of running instances ends empty."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import pytest

from pingmon.scheduler import CheckScheduler
from tests.unit.test_scheduler import make_target

Observation = tuple[float, float, dict[str, Any]]  # (when, lag, each job's trigger then)


async def _until_ended(executor: Any) -> None:
    """Until every run the executor started has ended (at most a second)."""
    for _ in range(100):
        if not executor._tasks:
            return
        await asyncio.sleep(0.01)


def _assert_stopped_quietly(caplog: pytest.LogCaptureFixture, executor: Any) -> None:
    """Nothing logged as a failed job, and every run ended and uncounted."""
    assert [r.getMessage() for r in caplog.records] == []
    assert not executor._tasks
    assert not executor._instances
    assert not executor._shut_down


def _scenario(seed: int, seconds: float) -> Callable[[], Any]:
    async def run() -> tuple[list[Observation], list[tuple[str, float]], list[str], Any]:
        rng = random.Random(seed)
        observed: list[Observation] = []
        started: list[tuple[str, float]] = []
        overlaps: list[str] = []
        running: set[str] = set()
        scheduler: CheckScheduler

        def observe(lag: float) -> None:
            when = time.time()  # a few µs after the executor's own reading
            store = scheduler._scheduler._jobstores["default"]
            triggers = {name: entry[0].trigger for name, entry in store._jobs.items()}
            observed.append((when, lag, triggers))

        async def check(name: str) -> None:
            started.append((name, time.time()))
            if name in running:
                overlaps.append(name)
            running.add(name)
            try:
                draw = rng.random()
                if draw < 0.03:
                    time.sleep(rng.uniform(0.15, 0.5))  # noqa: ASYNC251 - the loop held: runs are missed
                elif draw < 0.25:
                    await asyncio.sleep(rng.uniform(0.1, 0.35))  # longer than an interval
                else:
                    await asyncio.sleep(rng.choice((0.0, 0.005)))
            finally:
                running.discard(name)
            scheduler.set_failing(name, rng.random() < 0.3)

        def targets(generation: int) -> list[Any]:
            names = [f"t{i}" if rng.random() < 0.7 else f"t{i}-g{generation}" for i in range(6)]
            return [
                make_target(
                    name,
                    interval=rng.choice((0.07, 0.1, 0.13)),
                    failure_interval=rng.choice((None, 0.05, 0.2)),
                )
                for name in names
            ]

        scheduler = CheckScheduler(check, observe)
        scheduler.sync(targets(0))
        scheduler.start()
        executor = scheduler._scheduler._executors["default"]
        try:
            deadline = time.monotonic() + seconds
            generation = 0
            while time.monotonic() < deadline:
                await asyncio.sleep(rng.uniform(0.05, 0.25))
                generation += 1
                scheduler.sync(targets(generation))  # a reload, some targets renamed
        finally:
            scheduler.shutdown()
        await _until_ended(executor)  # the cancelled runs' callbacks
        return observed, started, overlaps, executor

    return run


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("seed", range(3))
def test_runs_start_on_their_grid_once_each_and_never_overlap(loop: str, seed: int) -> None:
    factory = None
    if loop == "uvloop":
        factory = pytest.importorskip("uvloop").new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        observed, started, overlaps, executor = runner.run(_scenario(seed, 1.2)())
    assert overlaps == []
    assert not executor._instances
    assert not executor._tasks
    assert len(started) >= 20
    assert len(started) <= len(observed)  # a run cancelled at shutdown may never start
    slots: dict[int, set[int]] = {}  # by trigger: the grid points run
    for (when, lag, triggers), (name, start) in zip(observed, started, strict=False):
        trigger = triggers[name]
        origin, length = trigger.start_date.timestamp(), trigger.interval_length
        scheduled = when - lag
        step = round((scheduled - origin) / length)
        assert step >= 0, (name, step)
        # Never early: a run started before its time would show a lag of 0 (clamped) and a
        # "scheduled" time off the grid. The tolerance covers a preemption between the
        # executor's clock reading and this one.
        assert lag > 0.0, name
        assert abs(origin + step * length - scheduled) < 0.005, (name, lag)  # on the grid
        assert start >= scheduled - 0.005
        assert when - scheduled < length + 0.1  # the last grid point due, not an older one
        assert step not in slots.setdefault(id(trigger), set()), (name, step)  # never twice
        slots[id(trigger)].add(step)


class _Odd(BaseException):
    """Neither an Exception nor one asyncio re-raises out of the loop."""


@pytest.mark.parametrize("raised", [_Odd, asyncio.CancelledError, GeneratorExit, ValueError])
def test_a_run_raising_any_base_exception_is_uncounted_and_the_target_runs_again(
    raised: type[BaseException],
) -> None:
    """The executor's count (kept without a lock) goes back to zero after a run that raised
    a BaseException that is no Exception (a cancellation from inside the check among them),
    and the job keeps running at its interval, as do the others."""

    async def scenario() -> tuple[dict[str, int], Any]:
        runs = {"bad": 0, "good": 0}

        async def check(name: str) -> None:
            runs[name] += 1
            await asyncio.sleep(0)
            if name == "bad":
                raise raised()

        scheduler = CheckScheduler(check, lambda lag: None)
        scheduler.sync([make_target("bad", interval=0.05), make_target("good", interval=0.05)])
        scheduler.start()
        executor = scheduler._scheduler._executors["default"]
        try:
            for _ in range(300):
                if min(runs.values()) >= 4:
                    break
                await asyncio.sleep(0.01)
        finally:
            scheduler.shutdown()
        await _until_ended(executor)
        return runs, executor

    with asyncio.Runner() as runner:
        runs, executor = runner.run(scenario())
    assert runs["bad"] >= 4
    assert runs["good"] >= 4
    assert not executor._instances
    assert not executor._tasks


def test_runs_cancelled_by_shutdown_are_uncounted_without_an_error_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stop cancels the checks still going (the daemon logs how many, in one line): each is
    uncounted and none is logged as a job that failed; a check that raises a cancellation of
    its own while the scheduler runs is still one."""

    async def scenario() -> Any:
        started: set[str] = set()

        async def check(name: str) -> None:
            started.add(name)
            if name == "self-cancelling":
                raise asyncio.CancelledError
            await asyncio.sleep(60)

        names = ["a", "b", "self-cancelling"]
        scheduler = CheckScheduler(check, lambda lag: None)
        scheduler.sync([make_target(name, interval=0.05) for name in names])
        scheduler.start()
        executor = scheduler._scheduler._executors["default"]
        try:
            for _ in range(300):
                if started == set(names) and "self-cancelling" in caplog.text:
                    break
                await asyncio.sleep(0.01)
            assert "Error running job self-cancelling" in caplog.text
            assert executor._instances == {"a": 1, "b": 1}
            caplog.clear()
        finally:
            scheduler.shutdown()
        await _until_ended(executor)
        return executor

    caplog.set_level(logging.ERROR, logger="apscheduler")
    with asyncio.Runner() as runner:
        executor = runner.run(scenario())
    _assert_stopped_quietly(caplog, executor)


def test_a_run_that_cancelled_itself_just_before_shutdown_is_still_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A run that ended in a cancellation of its own before the stop (its end not yet
    handled when ``shutdown`` came, in the same pass of the loop) was not cancelled by the
    stop: it is logged as a job that failed, as while the scheduler runs."""

    async def scenario() -> Any:
        async def check(name: str) -> None:
            loop = asyncio.get_running_loop()
            woken = loop.create_future()

            def wake() -> None:  # the stop (its call_soon) and our next step: one pass
                loop.call_soon(scheduler.shutdown)  # AsyncIOScheduler defers it once more
                woken.set_result(None)

            loop.call_soon(wake)
            await woken
            raise asyncio.CancelledError

        scheduler = CheckScheduler(check, lambda lag: None)
        scheduler.sync([make_target("self-cancelling", interval=0.05)])
        scheduler.start()
        executor = scheduler._scheduler._executors["default"]
        for _ in range(300):
            if not scheduler.running and not executor._tasks:
                break
            await asyncio.sleep(0.01)
        return executor

    caplog.set_level(logging.ERROR, logger="apscheduler")
    with asyncio.Runner() as runner:
        executor = runner.run(scenario())
    assert [r.getMessage() for r in caplog.records] == ["Error running job self-cancelling"]
    assert not executor._tasks
    assert not executor._shut_down


def test_cancel_runs_cancels_every_running_check_at_once_and_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``CheckScheduler.cancel_runs`` (``Daemon.stop`` when its grace runs out) cancels each
    run still going before it returns, not on the loop's next pass as APScheduler's
    ``shutdown`` does: a run whose next step is already queued (its answer just came) is
    still cancelled as a stop, uncounted and not logged as a failed job."""

    async def scenario() -> Any:
        answers: dict[str, asyncio.Future[None]] = {}

        async def check(name: str) -> None:
            answers[name] = asyncio.get_running_loop().create_future()
            await answers[name]
            await asyncio.sleep(60)

        names = ["a", "b"]
        scheduler = CheckScheduler(check, lambda lag: None)
        scheduler.sync([make_target(name, interval=0.05) for name in names])
        scheduler.start()
        executor = scheduler._scheduler._executors["default"]
        for _ in range(300):
            if set(answers) == set(names):
                break
            await asyncio.sleep(0.01)
        scheduler.pause()
        answers["a"].set_result(None)  # a's next step is queued: it ends only after this
        scheduler.cancel_runs()
        assert all(task.cancelling() for task in executor._tasks)
        await _until_ended(executor)
        scheduler.shutdown()
        return executor

    caplog.set_level(logging.ERROR, logger="apscheduler")
    with asyncio.Runner() as runner:
        executor = runner.run(scenario())
    _assert_stopped_quietly(caplog, executor)
