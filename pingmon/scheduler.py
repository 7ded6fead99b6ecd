"""One APScheduler interval job per target, spread by a hash of its name."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import inspect
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from threading import TIMEOUT_MAX
from typing import Any

from apscheduler.executors.base import BaseExecutor, MaxInstancesReachedError
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.interval import IntervalTrigger

from pingmon.fields import format_duration
from pingmon.jobstore import HeapJobStore
from pingmon.targets import Target

# The alias of pingmon's one job store (APScheduler's default alias).
STORE = "default"


# Seconds: how far past a point of the slack's grid a time may lie and still be taken for
# that point. A run placed on a grid point is stored as a datetime (whole microseconds) and
# read back as an epoch timestamp, 2.4e-7 s coarse near 1.7e9: within a fraction of a
# microsecond of its point, on either side, and the timer must not take it for the next.
GRID_TOLERANCE = 1e-6

# The finest grid: 10 µs, ten times the tolerance (a slack capped below it, by intervals of a
# millisecond or a million runs a second, is none).
MIN_GRID_MICROS = 10


class SlackGrid:
    """The timer slack's grid on the epoch-seconds clock: points every ``micros``
    microseconds since the epoch (0: no grid), shared by ``CheckScheduler``'s triggers
    (each run is placed on a point) and its timer (set for the next run's point).

    Whole microseconds, so every point is exactly a time a ``datetime`` holds: a run placed
    on one is stored without rounding, and the timer's grid and the runs' are one. A
    spacing under ``MIN_GRID_MICROS`` is none (0): far below any loop's timer resolution,
    and too fine to tell a point from the next within ``GRID_TOLERANCE``.
    """

    __slots__ = ("micros",)

    def __init__(self, seconds: float = 0.0) -> None:
        self.micros = 0
        self.seconds = seconds

    @property
    def seconds(self) -> float:
        """The spacing in seconds (0: none), ``micros`` as set."""
        return self.micros / 1e6

    @seconds.setter
    def seconds(self, seconds: float) -> None:
        """Round ``seconds`` (>= 0) to whole microseconds; 0 under ``MIN_GRID_MICROS``."""
        micros = round(seconds * 1e6)
        self.micros = micros if micros >= MIN_GRID_MICROS else 0


def grid_point(timestamp: float, slack: float) -> float:
    """The first multiple of ``slack`` (seconds, > 0) at or after ``timestamp`` (epoch
    seconds), a time within ``GRID_TOLERANCE`` past a multiple counting as on it."""
    return math.ceil((timestamp - GRID_TOLERANCE) / slack) * slack


class GridIntervalTrigger(IntervalTrigger):  # type: ignore[misc]  # APScheduler is untyped
    """An interval trigger whose jitter does not accumulate, its runs on the slack's grid.

    APScheduler 3 adds the interval to the previous *jittered* run, so a 1 s interval with
    jitter 0.1 runs every 1.1 s on average. This one goes back to the previous run's grid
    point first, so runs stay on ``start_date + k * interval`` plus a fresh jitter each.

    With a ``SlackGrid`` of non-zero spacing, every run time (the first too, jittered or
    not) is that time rounded up to the grid's next point (``_placed``): the timer is set
    for the next run's point anyway, so the run's scheduled time is the moment the timer
    starts it, and the lag measured from it is what the loop adds, not the slack. The grid
    is read at each run's computation: after the slack changes, the next run computed is on
    the new grid. Spacing 0 (or no grid): the times APScheduler's computation gives.

    APScheduler asks for a run's successor twice (once to find the runs due, once to store
    the next), so the last answer is kept and given again for the same run: one jitter draw
    and one computation per run, not two.
    """

    _last: tuple[datetime, datetime | None] | None = None  # (a run, its successor)
    _start: float | None = None  # start_date.timestamp(), once computed
    grid: SlackGrid | None = None  # the slack's grid the runs are placed on (None: none)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        if previous_fire_time is None:
            return self._successor(None, now)
        last = self._last
        if last is not None and last[0] == previous_fire_time:
            return last[1]
        next_fire_time = self._successor(previous_fire_time, now)
        self._last = (previous_fire_time, next_fire_time)
        return next_fire_time

    def _successor(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        """The grid point after ``previous_fire_time``'s plus a fresh jitter, computed in
        epoch seconds as ``IntervalTrigger`` computes its own; on the slack's grid when
        there is one (``_placed``).

        The run's grid step comes from the exact microseconds since ``start_date`` (a
        ``timedelta``), not from two float timestamps: at today's epoch those are 2.4e-7 s
        coarse, so a run whose jitter rounded to its grid point gave the step before and
        came again (at the same microsecond, APScheduler's run-time loop never ended). The
        microsecond of slack covers a run time rounded to the microsecond below its point.
        """
        grid = self.grid
        if grid is not None and grid.micros:
            return self._placed(self._step(previous_fire_time, now), grid.micros)
        if previous_fire_time is None or not self.jitter:
            next_fire_time: datetime | None = super().get_next_fire_time(previous_fire_time, now)
            return next_fire_time
        timestamp = self._point(self._step(previous_fire_time, now))
        timestamp += random.uniform(0, self.jitter)
        if self.end_date and timestamp > self.end_date.timestamp():
            return None
        return datetime.fromtimestamp(timestamp, self.timezone)  # positional: a third cheaper

    def _step(self, previous_fire_time: datetime | None, now: datetime) -> int:
        """The interval step (``k`` of ``start_date + k * interval``) of the run after
        ``previous_fire_time`` (None: the first run, as ``IntervalTrigger`` finds it: the
        start, or the first step at or after ``now``)."""
        length: float = self.interval_length
        start: datetime = self.start_date
        if previous_fire_time is None:
            if start > now:
                return 0
            return math.ceil((now - start).total_seconds() / length)
        elapsed = (previous_fire_time - start).total_seconds()  # exact microseconds
        return math.floor((elapsed + 1e-6) / length) + 1

    def _point(self, step: int) -> float:
        """``start_date + step * interval`` in epoch seconds."""
        start = self._start
        if start is None:  # start_date never changes: converted once, not per run
            start = self._start = self.start_date.timestamp()
        length: float = self.interval_length
        return start + step * length

    def _placed(self, step: int, micros: int) -> datetime | None:
        """Run ``step``: its point plus a fresh jitter, rounded up to the next multiple of
        ``micros`` microseconds since the epoch; rounded down instead where rounding up
        would reach the next step's point (a jitter of up to the whole interval, 0.5, and
        the slack together: read back as that step, it would skip a run). Down is still
        after the point: the slack is at most ``SLACK_SHARE`` of the interval, so the
        jittered time was most of an interval past it."""
        point = self._point(step)
        timestamp = point + random.uniform(0, self.jitter) if self.jitter else point
        place = math.ceil(timestamp * 1e6 / micros) * micros
        if place > (point + self.interval_length) * 1e6 - 2:  # within 2 µs of the next step
            place -= micros
        return self._at(place)

    def _at(self, micros: int) -> datetime | None:
        """The datetime ``micros`` microseconds after the epoch (None: past ``end_date``):
        exact, as ``micros / 1e6`` is within 1.2e-7 s of it and ``fromtimestamp`` rounds
        to the nearest microsecond."""
        timestamp = micros / 1e6
        if self.end_date and timestamp > self.end_date.timestamp():
            return None
        return datetime.fromtimestamp(timestamp, self.timezone)


def spread_offset(name: str, interval: float) -> float:
    """A stable offset in [0, interval): restarts do not bunch every check at one instant."""
    fraction = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") / 2**64
    return fraction * interval


@dataclass(frozen=True, slots=True)
class Cadence:
    """How often a target runs: seconds between runs, +-fraction of jitter, seconds between
    runs while it fails (None: as when it passes)."""

    interval: float
    jitter: float
    failure_interval: float | None


class ScheduleError(Exception):
    """A target's cadence cannot be put on a timer (its run times overflow a datetime)."""

    def __init__(self, target: str, field: str, reason: str) -> None:
        self.target = target
        self.field = field
        self.reason = reason
        super().__init__(f"{target}: {field}: {reason}")


@dataclass(frozen=True, slots=True)
class SchedulePlan:
    """Every target's cadence, each already shown to be schedulable: what
    ``CheckScheduler.apply`` adopts without a failure halfway."""

    cadences: Mapping[str, Cadence]


def plan_schedule(targets: Iterable[Target]) -> SchedulePlan:
    """Every target's cadence, checked; ScheduleError names the first that cannot run.

    Pure (no scheduler is touched), so a configuration is refused before anything changes.
    """
    cadences: dict[str, Cadence] = {}
    checked: set[Cadence] = set()
    for target in targets:
        schedule = target.schedule
        cadence = Cadence(schedule.interval, schedule.jitter, schedule.failure_interval)
        if cadence not in checked:
            _check_cadence(target.name, cadence)
            checked.add(cadence)
        cadences[target.name] = cadence
    return SchedulePlan(cadences)


def _check_cadence(name: str, cadence: Cadence) -> None:
    """Build the triggers a cadence will get and compute their first two run times, from the
    latest first run a target name can give, as ``add_job`` and every later run will."""
    for field, seconds in (("interval", cadence.interval),
                           ("failure_interval", cadence.failure_interval)):  # fmt: skip
        if seconds is None:
            continue
        try:
            trigger = _trigger(cadence, seconds, first_in=seconds)
            now = datetime.now(UTC)
            first = trigger.get_next_fire_time(None, now)
            if first is None or trigger.get_next_fire_time(first, first) is None:
                raise ValueError("no next run time")
        except (ArithmeticError, ValueError, OSError) as error:
            reason = (
                f"cannot be scheduled: runs {format_duration(seconds)} apart would fall past "
                f"the last date a timer can hold ({type(error).__name__}: {error})"
            )
            raise ScheduleError(name, field, reason) from None


def _trigger(
    cadence: Cadence, seconds: float, first_in: float, grid: SlackGrid | None = None
) -> IntervalTrigger:
    """Every ``seconds``, the first run in ``first_in``, each run moved by up to +-jitter,
    and on ``grid``'s points when it has a spacing (rounded up: later, never earlier).

    APScheduler only adds jitter (0..j), so the grid starts j early and the jitter is 2j.
    """
    spread = cadence.jitter * seconds
    start = datetime.now(UTC) + timedelta(seconds=first_in - spread)
    trigger = GridIntervalTrigger(seconds=seconds, start_date=start, jitter=2 * spread or None)
    trigger.grid = grid
    return trigger


def presigned(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` as a job's callable that APScheduler checks at no cost per job.

    ``add_job`` checks a job's arguments against its callable's signature, and
    ``inspect.signature`` of a bound method is rebuilt on every call (about 0.3 ms: a third
    of a start's time at 100,000 targets); a partial that carries its signature is read at
    once (``inspect`` looks for ``__signature__`` first). Calling it calls ``function``.
    """
    wrapped = functools.partial(function)
    wrapped.__signature__ = inspect.signature(function)  # type: ignore[attr-defined]
    return wrapped


# The largest share of the shortest interval in use that the timer slack may take: a target
# run every 50 ms waits at most 5 ms for its grid point, and two of its runs (or a run and the
# next, jittered closer) never fall into one slack window through the slack alone.
SLACK_SHARE = 0.1

# The most runs one slack window may hold on average (the targets' runs a second times the
# slack): one wake-up starts them all, holding the loop for each (a scrape, the other checks'
# replies wait), and past a few dozen a window the wake-up's cost is already a small share of
# a check's. A 1 s slack at 100,000 targets every 60 s would start 1,667 runs in one
# wake-up; capped, a window holds 50 (a 30 ms slack), and the default 10 ms holds 17.
RUNS_PER_WINDOW = 50

# Seconds: libuv (under uvloop) keeps its clock in whole milliseconds and rounds a timer's
# delay to them, so a timer fires up to this much before its time (a wait under half of it
# at once); asyncio's own loop rounds up and never fires early.
TIMER_TICK = 0.001


class LoopScheduler(AsyncIOScheduler):  # type: ignore[misc]  # APScheduler is untyped
    """APScheduler's asyncio scheduler, woken by its timer directly.

    ``AsyncIOScheduler`` wakes through ``call_soon_threadsafe`` (its ``wakeup`` may be called
    from any thread): every timer then costs a write to the loop's self-pipe, a read and a
    loop iteration more. The timer runs on the loop's own thread, so it processes the jobs
    at once; calls from elsewhere (adding a job) still go through ``wakeup``.
    """

    _woke_early = False  # the last wake-up on pingmon's path found nothing due
    _fires_early = False  # a timer of this loop fired before its grid point (uvloop's do)
    timer_slack = 0.0  # seconds; the timer is set for the next run rounded up to a multiple
    _deadline = 0.0  # epoch seconds the timer was last set for (a multiple of the slack)
    _next_at: float | None = None  # the next run's time as stored (epoch seconds), if known
    _due = 0.0  # time.monotonic() the timer was last set to fire at (the loop's own clock)

    def _start_timer(self, wait_seconds: float | None, early: bool = False) -> None:
        """Set the timer for the next run in ``wait_seconds``, rounded up to the slack's grid
        (``_slacked``); ``early``: the last wake-up came before its time (uvloop's), so the
        wait is rounded up to whole ticks too (``_wake_on_loop``).

        On a loop whose timers have fired before their grid point (uvloop's, up to about a
        tick early), the wait is a tick longer: the runs are on the grid point itself, so a
        timer that fires before it finds none of them due, and every such window cost a
        second wake-up (0.29 wake-ups a check at 500 checks/s against 0.22 before runs were
        on the grid). A tick later, the timer fires after the point: one wake-up a window,
        each run started about a millisecond after its time (half a slack before)."""
        self._stop_timer()
        if wait_seconds is not None:
            wait = self._slacked(wait_seconds, self._next_at)
            if self._fires_early and wait > 0 and self.timer_slack:
                wait += TIMER_TICK
            if early:
                wait = math.ceil(wait / TIMER_TICK) * TIMER_TICK
            self._due = time.monotonic() + wait
            self._timeout = self._eventloop.call_later(wait, self._wake_on_loop)

    def _slacked(self, wait: float, at: float | None = None) -> float:
        """``wait`` (seconds from now to the next run) made to end at the next multiple of
        ``timer_slack`` in epoch seconds (the job store's clock) at or after the run's time
        (``at``, epoch seconds, when known; else now plus ``wait``): every run due within
        one slack starts in one wake-up, at most a slack late, never early (a timer that
        fires before a run's time finds it not due). A run on the grid (``CheckScheduler``
        places every run on it) is recognised as on it within ``GRID_TOLERANCE``, from its
        stored time rather than from a wait that a second reading of the clock would have
        moved past the point: the timer is set for the run's own time. 0: ``wait`` as
        given, every run at its own time."""
        slack = self.timer_slack
        if not slack:
            return wait
        now = time.time()
        deadline = self._deadline = grid_point(now + wait if at is None else at, slack)
        return min(max(deadline - now, 0.0), TIMEOUT_MAX)

    def _wake_on_loop(self) -> None:
        """Start the due jobs and set the timer for the next.

        A timer that fired before its time (uvloop's fire up to ``TIMER_TICK`` early, and at
        once for a wait under half a tick) is set again for the wait rounded up to whole
        ticks: it fires at most a tick late, after at most two such wake-ups, instead of the
        loop waking at once over and over until the time came (about seven wake-ups a run on
        uvloop before). Before its time: nothing was due or, with a slack, the grid point the
        timer was set for has not come (runs due before it started, those due in the
        remaining fraction of a tick not yet). asyncio's loop never fires early: unchanged
        there.
        """
        self._timeout = None  # it has fired: nothing to cancel
        early = bool(self.timer_slack) and time.time() < self._deadline
        if early and time.monotonic() < self._due:  # early on the loop's clock, not a step
            self._fires_early = True  # of the wall clock's (which asyncio's timers ignore)
        wait = self._process_jobs()
        self._start_timer(wait, early or self._woke_early)

    def _process_jobs(self) -> float | None:
        """Start the due jobs and say how long to sleep: ``BaseScheduler._process_jobs`` for
        the configuration pingmon runs (one job store, no listeners, jobs whose next run
        time is always an aware datetime), without what that configuration never needs per
        run: a submission event for nobody, ``Job._modify``'s validation of a run time the
        trigger made, conversions through ``astimezone``. Any other configuration (a
        listener, another job store, a paused scheduler) goes through APScheduler's own.

        The clock is read once (epoch seconds), and a wake-up that finds nothing due (a
        timer that fired early) answers from the store's next timestamp alone: the
        datetime ``now`` that APScheduler's calls take is built only when a job is due.
        """
        store = self._jobstores.get(STORE)
        if (
            self.state != STATE_RUNNING
            or self._listeners
            or len(self._jobstores) != 1
            or not isinstance(store, HeapJobStore)
        ):
            self._woke_early = False
            self._next_at = None
            return super()._process_jobs()  # type: ignore[no-any-return]
        stamp = time.time()
        with self._jobstores_lock:
            due = store.take_due_jobs(stamp)
            if due:
                now = datetime.fromtimestamp(stamp, self.timezone)
                for job, scheduled in due:
                    self._run_due(job, scheduled, store, now)
            next_run = store.get_next_timestamp()
        self._woke_early = not due
        self._next_at = next_run
        if next_run is None or self.state != STATE_RUNNING:
            return None
        return min(max(next_run - time.time(), 0.0), TIMEOUT_MAX)

    def _run_due(self, job: Any, scheduled: float, store: HeapJobStore, now: datetime) -> None:
        """Submit one due job (its last missed run only, when it coalesces) and store its
        next run time, or remove it when its trigger has none; as APScheduler does. The
        job's entry was taken out of ``store``: every path updates or removes it.
        ``scheduled``: the job's next run time as the store keeps it (epoch seconds), what
        the lag is measured from when that run is the one submitted."""
        executor = self._executors.get(job.executor)
        if executor is None:
            self._logger.error(
                'Executor lookup ("%s") failed for job "%s" -- removing it from the job store',
                job.executor,
                job,
            )
            self.remove_job(job.id, STORE)
            return
        run_times, next_run = _run_times(job, now)
        if not run_times:  # not due after all (the store's clock and the job's agree): put back
            store.update_job(job)
            return
        if len(run_times) > 1:  # missed runs: the lag is the last one's
            scheduled = run_times[-1].timestamp()
            if job.coalesce:
                run_times = run_times[-1:]
        self._submit(executor, job, run_times, scheduled)
        if next_run:
            job.next_run_time = next_run  # the trigger's own aware datetime: nothing to convert
            store.update_job(job)
        else:
            self.remove_job(job.id, STORE)

    def _submit(
        self, executor: Any, job: Any, run_times: list[datetime], scheduled: float
    ) -> None:
        """Start one run of ``job``, or log why not as APScheduler does: a run skipped
        (``max_instances`` already going) with its warning, a submission that raised with
        its traceback. A run that pingmon's ``CheckExecutor`` has no room for is skipped
        on its answer (``has_room``), before ``submit_job`` would raise
        ``MaxInstancesReachedError``: at saturation most due runs are skipped (their last
        still waits for a connection), and the exception (its message formatted, raised
        and caught) was a tenth of a skipped run's instructions."""
        if (  # a run going (rare below saturation) is looked at; else straight to submit
            job.id in executor._instances
            and isinstance(executor, CheckExecutor)
            and not executor.has_room(job)
        ):
            self._skipped(job)
            return
        try:
            executor.submit_job(job, run_times, scheduled)
        except MaxInstancesReachedError:
            self._skipped(job)
        except BaseException:
            self._logger.exception('Error submitting job "%s" to executor "%s"', job, job.executor)

    def _skipped(self, job: Any) -> None:
        """APScheduler's warning for a run skipped: ``job`` already runs ``max_instances``."""
        self._logger.warning(
            'Execution of job "%s" skipped: maximum number of running instances reached (%d)',
            job,
            job.max_instances,
        )


def effective_slack(slack: float, cadences: Iterable[Cadence]) -> float:
    """``slack`` (seconds), but at most ``SLACK_SHARE`` of the shortest interval or failure
    interval among ``cadences``, and at most the time in which the targets, each at the
    shorter of the two, are due ``RUNS_PER_WINDOW`` times on average (none: ``slack`` as
    given)."""
    shortest = math.inf
    rate = 0.0  # runs a second, every target at its shorter interval (all failing)
    for cadence in cadences:
        seconds = cadence.interval
        if cadence.failure_interval is not None and cadence.failure_interval < seconds:
            seconds = cadence.failure_interval
        shortest = min(shortest, seconds)
        rate += 1.0 / seconds
    return min(slack, shortest * SLACK_SHARE, RUNS_PER_WINDOW / rate if rate else math.inf)


def _run_times(job: Any, now: datetime) -> tuple[list[datetime], datetime | None]:
    """``job``'s run times up to ``now`` (inclusive) and the first after it, from one call of
    its trigger per run: ``Job._get_run_times`` and then the trigger again for the run after
    the last, as APScheduler's ``_process_jobs`` asks (the same times: the trigger is asked
    the same questions in the same order, bar the repeated last one, which
    ``GridIntervalTrigger`` answers from memory). Times are compared in UTC, as APScheduler
    compares them: two datetimes of one zone compare by wall clock, which in a DST fold
    would take a run an hour ahead as due; ``now`` in UTC (pingmon's, at no cost) makes
    every comparison an instant's."""
    limit = now if now.tzinfo is UTC else now.astimezone(UTC)
    run_times: list[datetime] = []
    next_run: datetime | None = job.next_run_time
    trigger = job.trigger
    while next_run is not None and next_run <= limit:
        run_times.append(next_run)
        next_run = trigger.get_next_fire_time(next_run, now)
    return run_times, next_run


class CheckExecutor(BaseExecutor):  # type: ignore[misc]  # APScheduler is untyped
    """Starts a job's coroutine as a task of its own, and observes how late it started.

    APScheduler's ``AsyncIOExecutor`` wraps every run in ``run_coroutine_job`` (misfire
    checks, an INFO log call, execution events for listeners) and inspects the function on
    every run; pingmon's jobs have none of those needs (``misfire_grace_time=None``, no
    listeners). It still counts instances in ``BaseExecutor``'s ``_instances``, so
    ``max_instances`` holds, and a run that raises or is cancelled is logged as APScheduler
    logs it. The count is kept without ``BaseExecutor``'s lock: every call comes on the
    loop's thread (the scheduler's ``wakeup`` runs there, and so do the tasks' done
    callbacks).
    """

    def __init__(self, observe_lag: Callable[[float], None]) -> None:
        super().__init__()
        self._observe_lag = observe_lag
        self._tasks: dict[asyncio.Task[None], str] = {}  # running -> its job's id
        self._shut_down: set[asyncio.Task[None]] = set()  # cancelled by ``shutdown``

    def start(self, scheduler: Any, alias: str) -> None:
        super().start(scheduler, alias)
        self._loop: asyncio.AbstractEventLoop = scheduler._eventloop

    def shutdown(self, wait: bool = True) -> None:
        """Cancel every run still going (APScheduler's asyncio executor does the same); each
        is forgotten when it ends, as any run is, but not logged as an error: the daemon
        says how many checks it cancelled, in one line (``Daemon.stop``)."""
        for task in self._tasks:
            if task.cancel():  # False: it had ended already, its end not yet handled
                self._shut_down.add(task)

    def submit_job(
        self, job: Any, run_times: list[datetime], scheduled: float | None = None
    ) -> None:
        """``BaseExecutor.submit_job``: a job already running ``max_instances`` times raises
        ``MaxInstancesReachedError``, else its run starts and is counted. ``scheduled``:
        ``run_times[-1]`` in epoch seconds, when the caller has it (APScheduler's own
        ``_process_jobs`` does not pass it: it is computed)."""
        instances = self._instances
        running = instances.get(job.id, 0)
        if running >= job.max_instances:
            raise MaxInstancesReachedError(job)
        if scheduled is None:
            scheduled = run_times[-1].timestamp()
        self._observe_lag(max(0.0, time.time() - scheduled))
        self._do_submit_job(job, run_times)
        instances[job.id] = running + 1

    def has_room(self, job: Any) -> bool:
        """Whether ``job`` may start a run now: fewer than ``max_instances`` of its runs
        going (``submit_job`` raises ``MaxInstancesReachedError`` otherwise)."""
        return bool(self._instances.get(job.id, 0) < job.max_instances)

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        """Start the run as a task of its own (``BaseExecutor``'s hook, its signature)."""
        task = self._loop.create_task(job.func(*job.args, **job.kwargs))
        self._tasks[task] = job.id
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        """A run ended: uncounted (``BaseExecutor._run_job_success``'s bookkeeping, in line
        and without its lock), or logged as APScheduler logs a run that raised, but for a
        run that ``shutdown`` cancelled (uncounted, quietly: a stop, not a failure)."""
        job_id = self._tasks.pop(task)
        stopped = task in self._shut_down
        if stopped:
            self._shut_down.discard(task)
        try:
            task.result()
        except BaseException as error:  # noqa: BLE001 - logged as APScheduler logs it
            if not (stopped and task.cancelled()):
                self._run_job_error(job_id, error, error.__traceback__)
                return
        instances = self._instances
        left = instances[job_id] - 1
        if left:
            instances[job_id] = left
        else:
            del instances[job_id]


class CheckScheduler:
    """Runs ``check(name)`` for every target on its own timer.

    ``max_instances=1`` and ``coalesce=True``: a slow target never piles up and never
    delays another; ``misfire_grace_time=None``: a late run still runs, once. Each run is
    dispatched as cheaply as APScheduler allows (``LoopScheduler``, ``CheckExecutor``,
    ``HeapJobStore``).
    """

    def __init__(
        self,
        check: Callable[[str], Awaitable[None]],
        observe_lag: Callable[[float], None],
        timer_slack: float = 0.0,
    ) -> None:
        self._check = check
        self._job_function = presigned(check)
        self._executor = CheckExecutor(observe_lag)
        self._scheduler = LoopScheduler(
            timezone=UTC,
            executors={"default": self._executor},
            jobstores={STORE: HeapJobStore()},
        )
        self._cadences: dict[str, Cadence] = {}
        self._failing: set[str] = set()
        self._grid = SlackGrid()  # every trigger's: the effective slack, whole microseconds
        self.timer_slack = timer_slack  # the setter keeps it and gives the timer its share

    @property
    def timer_slack(self) -> float:
        """Seconds (0: none): every run is placed on the epoch-seconds grid of its multiples
        (rounded up), and the runs due at one point start in one wake-up, then. The grid
        takes at most ``SLACK_SHARE`` of the shortest interval (or failure interval)
        scheduled (``effective_slack``), in whole microseconds (``SlackGrid``)."""
        return self._timer_slack

    @timer_slack.setter
    def timer_slack(self, seconds: float) -> None:
        """Keep ``seconds`` and give the grid and the timer its share. When that changes, a
        timer already set on the old grid is set again at once (``wakeup``: on the loop,
        after this call), or a reload from 1 s to 0 would leave the next run up to 1 s late.

        The runs already stored stay where they are: each target's next run may be off the
        new grid (its timer rounds it up: up to one new slack late, as every run was before
        runs were placed on the grid), and every run after it is on it. Moving them all
        onto the new grid at once held the loop 1.2 to 1.8 s at 100,000 targets (a pass that
        rebuilds each run's datetime and heap entry), at every reload that moves a capped
        slack by a target added or removed."""
        self._adopt_slack(seconds, effective_slack(seconds, self._cadences.values()))

    def _adopt_slack(self, seconds: float, effective: float) -> None:
        """Keep ``seconds`` (the setting) and put the grid and the timer on ``effective``
        (its share for the schedule, ``effective_slack``); a timer set on another grid is
        set again (``wakeup``)."""
        self._timer_slack = seconds
        self._grid.seconds = effective
        changed = self._grid.seconds != self._scheduler.timer_slack
        self._scheduler.timer_slack = self._grid.seconds
        if changed and self._scheduler.state == STATE_RUNNING:
            self._scheduler.wakeup()

    @property
    def _observe_lag(self) -> Callable[[float], None]:
        """What observes each run's lag (seconds); a benchmark replaces it (with a wrapper
        of the histogram's ``observe``), and the executor calls the new one from then on."""
        return self._executor._observe_lag

    @_observe_lag.setter
    def _observe_lag(self, observe_lag: Callable[[float], None]) -> None:
        self._executor._observe_lag = observe_lag

    def start(self) -> None:
        self._scheduler.start()

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def pause(self) -> None:
        """Start no more checks; those running go on (shutdown would cancel them)."""
        if self._scheduler.running:
            self._scheduler.pause()

    def cancel_runs(self) -> None:
        """Cancel every check the scheduler started that is still running, now (as a stop:
        each uncounted, none logged as a failed job, ``CheckExecutor.shutdown``); the
        scheduler's own ``shutdown`` does it only on the loop's next pass."""
        self._executor.shutdown()

    def shutdown(self) -> None:
        """Stop the scheduler; APScheduler cancels any check still running."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def sync(self, targets: Iterable[Target]) -> None:
        """Plan and adopt in one step; ScheduleError before any timer changes."""
        self.apply(plan_schedule(targets))

    def apply(self, schedule: SchedulePlan, timer_slack: float | None = None) -> None:
        """Adopt a planned schedule: unchanged targets keep their timers, the rest are replaced;
        and ``timer_slack`` (seconds; None: the one kept), its share taken once, for the
        intervals now scheduled, before the jobs are added: a new target's first run is on
        the grid the reload ends with.

        Every trigger was shown to work when the schedule was planned, and a job missing
        from APScheduler (removed when its trigger ran out) is tolerated and added again, so
        the timers always end up matching ``schedule``.
        """
        wanted = schedule.cadences
        slack = self._timer_slack if timer_slack is None else timer_slack
        effective = effective_slack(slack, wanted.values())
        self._grid.seconds = effective  # the timer follows below, once the jobs are in
        for name in set(self._cadences) - set(wanted):
            self._remove_job(name)
            del self._cadences[name]
            self._failing.discard(name)
        for name, cadence in wanted.items():
            if self._cadences.get(name) == cadence and self._scheduler.get_job(name) is not None:
                continue
            self._failing.discard(name)
            self._scheduler.add_job(
                self._job_function,
                trigger=_trigger(
                    cadence, cadence.interval, spread_offset(name, cadence.interval), self._grid
                ),
                args=[name],
                id=name,
                name=name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                replace_existing=True,
            )
            self._cadences[name] = cadence
        self._adopt_slack(slack, effective)

    def _remove_job(self, name: str) -> None:
        with contextlib.suppress(JobLookupError):  # gone: the timers still end up as planned
            self._scheduler.remove_job(name)

    def set_failing(self, name: str, failing: bool) -> None:
        """Recheck a failing target at its ``failure_interval``; back to normal on recovery."""
        cadence = self._cadences.get(name)
        if cadence is None or cadence.failure_interval is None:
            return
        if failing == (name in self._failing):
            return
        if failing:
            self._failing.add(name)
            seconds = cadence.failure_interval
        else:
            self._failing.discard(name)
            seconds = cadence.interval
        self._scheduler.reschedule_job(
            name, trigger=_trigger(cadence, seconds, seconds, self._grid)
        )

    def next_run(self, name: str) -> datetime | None:
        job = self._scheduler.get_job(name)
        return None if job is None else job.next_run_time

    def next_runs(self) -> dict[str, datetime]:
        """Every target's next run time (UTC), read at once: a snapshot for /status."""
        return {
            job.id: job.next_run_time
            for job in self._scheduler.get_jobs()
            if job.next_run_time is not None
        }
