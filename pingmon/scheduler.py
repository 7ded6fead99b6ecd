"""One APScheduler interval job per target, spread by a hash of its name."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from pingmon.config import Target


class GridIntervalTrigger(IntervalTrigger):  # type: ignore[misc]  # APScheduler is untyped
    """An interval trigger whose jitter does not accumulate.

    APScheduler 3 adds the interval to the previous *jittered* run, so a 1 s interval with
    jitter 0.1 runs every 1.1 s on average. This one goes back to the previous run's grid
    point first, so runs stay on ``start_date + k * interval`` plus a fresh jitter each.
    """

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        if previous_fire_time is not None and self.jitter:
            elapsed = (previous_fire_time - self.start_date).total_seconds()
            steps = math.floor(elapsed / self.interval_length + 1e-9)  # float noise at k*L
            previous_fire_time = self.start_date + timedelta(seconds=steps * self.interval_length)
        next_fire_time: datetime | None = super().get_next_fire_time(previous_fire_time, now)
        return next_fire_time


def spread_offset(name: str, interval: float) -> float:
    """A stable offset in [0, interval): restarts do not bunch every check at one instant."""
    fraction = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") / 2**64
    return fraction * interval


@dataclass(frozen=True, slots=True)
class _Cadence:
    interval: float
    jitter: float
    failure_interval: float | None


class CheckScheduler:
    """Runs ``check(name)`` for every target on its own timer.

    ``max_instances=1`` and ``coalesce=True``: a slow target never piles up and never
    delays another; ``misfire_grace_time=None``: a late run still runs, once.
    """

    def __init__(
        self,
        check: Callable[[str], Awaitable[None]],
        observe_lag: Callable[[float], None],
    ) -> None:
        self._check = check
        self._observe_lag = observe_lag
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED)
        self._cadences: dict[str, _Cadence] = {}
        self._failing: set[str] = set()

    def start(self) -> None:
        self._scheduler.start()

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def pause(self) -> None:
        """Start no more checks; those running go on (shutdown would cancel them)."""
        if self._scheduler.running:
            self._scheduler.pause()

    def shutdown(self) -> None:
        """Stop the scheduler; APScheduler cancels any check still running."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def sync(self, targets: Iterable[Target]) -> None:
        """Adopt a configuration: unchanged targets keep their timers, the rest are replaced."""
        wanted = {t.name: _Cadence(t.interval, t.jitter, t.failure_interval) for t in targets}
        for name in set(self._cadences) - set(wanted):
            self._scheduler.remove_job(name)
            del self._cadences[name]
            self._failing.discard(name)
        for name, cadence in wanted.items():
            if self._cadences.get(name) == cadence:
                continue
            if name in self._cadences:
                self._scheduler.remove_job(name)
            self._failing.discard(name)
            self._cadences[name] = cadence
            self._scheduler.add_job(
                self._check,
                trigger=self._trigger(cadence, cadence.interval, first=name),
                args=[name],
                id=name,
                name=name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )

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
        self._scheduler.reschedule_job(name, trigger=self._trigger(cadence, seconds))

    def next_run(self, name: str) -> datetime | None:
        job = self._scheduler.get_job(name)
        return None if job is None else job.next_run_time

    @staticmethod
    def _trigger(cadence: _Cadence, seconds: float, first: str | None = None) -> IntervalTrigger:
        """Every ``seconds``, each run moved by up to +-jitter.

        APScheduler only adds jitter (0..j), so the grid starts j early and the jitter is 2j.
        """
        spread = cadence.jitter * seconds
        first_in = spread_offset(first, seconds) if first is not None else seconds
        start = datetime.now(UTC) + timedelta(seconds=first_in - spread)
        return GridIntervalTrigger(seconds=seconds, start_date=start, jitter=2 * spread or None)

    def _on_submitted(self, event: Any) -> None:
        if isinstance(event, JobSubmissionEvent) and event.scheduled_run_times:
            scheduled = event.scheduled_run_times[-1]
            self._observe_lag(max(0.0, (datetime.now(UTC) - scheduled).total_seconds()))
