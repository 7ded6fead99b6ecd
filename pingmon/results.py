"""Check results and the per-target state the metrics and /status are read from."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from pingmon.errors import ErrorClass

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Durations are shown in seconds to the microsecond: finer than the event loop's timing of a
# check means anything, and the same figure in the log line, /status and ``check``.
DURATION_DIGITS = 6
# What a result says about its target, in the order every output shows it: ``check --json``
# shows all of them, /status the outcome (its target and provider come from the
# configuration), a log line all but ``success`` (its message says it).
OUTCOME_FIELDS = (
    "success",
    "error_class",
    "http_status",
    "duration_seconds",
    "attempts",
    "detail",
)
RESULT_FIELDS = ("target", "provider", *OUTCOME_FIELDS)

Scalar = str | int | float | bool | None


class CheckResult(NamedTuple):
    """The outcome of one check (all its attempts). A named tuple: one is made for every
    check, and a frozen dataclass of ten fields costs three times as much to make (an
    ``object.__setattr__`` a field); immutable, equal and shown (``repr``) as one was."""

    target: str
    provider: str
    error_class: ErrorClass
    http_status: int | None
    duration_seconds: float
    # Requests sent, whichever layer sent them (a retry, the keep-alive re-send, aiohttp's
    # re-send of an idempotent request); an attempt that reached no server counts one.
    attempts: int
    detail: str
    finished_at: float  # wall clock, seconds since the epoch
    # When the last attempt's request went out (wall clock), and what it caused at the
    # provider (an event id): a webhook round trip is measured from here.
    sent_at: float = 0.0
    event_id: str | None = None

    @property
    def success(self) -> bool:
        return self.error_class is ErrorClass.NONE


def seconds(duration: float) -> float:
    """A duration as every output shows it (``DURATION_DIGITS``)."""
    return round(duration, DURATION_DIGITS)


def result_fields(result: CheckResult) -> dict[str, Scalar]:
    """A result as fields (``RESULT_FIELDS``), for a log line, /status and ``check``: the one
    place a result becomes text and numbers, so that all three show the same figures."""
    return {
        "target": result.target,
        "provider": result.provider,
        "success": result.success,
        "error_class": result.error_class.value,
        "http_status": result.http_status,
        "duration_seconds": seconds(result.duration_seconds),
        "attempts": result.attempts,
        "detail": result.detail,
    }


@dataclass(frozen=True, slots=True)
class TargetInfo:
    """What the configuration says about a target, for metrics and /status."""

    name: str
    provider: str
    provider_type: str
    interval: float
    credential: str


class TargetState(NamedTuple):
    """Everything known about one target; replaced, never mutated, so a scrape reads a
    consistent snapshot without locks. A named tuple: one is made for every check, and a
    frozen dataclass of ten fields costs 2 µs more to make (an ``object.__setattr__`` a
    field)."""

    info: TargetInfo
    last: CheckResult | None = None
    last_success_at: float | None = None
    consecutive_failures: int = 0
    # Checks by error class, in the order the classes first occurred: ``checks_per_class[i]``
    # of ``seen_classes[i]`` (two tuples, as the metrics read them: series, then values).
    seen_classes: tuple[ErrorClass, ...] = (ErrorClass.NONE,)
    checks_per_class: tuple[int, ...] = (0,)
    attempts_total: int = 0
    rate_limited_total: int = 0
    latency_counts: tuple[int, ...] = (0,) * (len(LATENCY_BUCKETS) + 1)
    latency_sum: float = 0.0

    def record(self, result: CheckResult) -> TargetState:
        error_class, classes = result.error_class, self.seen_classes
        checks = list(self.checks_per_class)
        if error_class in classes:  # by identity first: the usual case costs no comparison
            checks[classes.index(error_class)] += 1
        else:
            classes += (error_class,)
            checks.append(1)
        counts = list(self.latency_counts)
        counts[bisect.bisect_left(LATENCY_BUCKETS, result.duration_seconds)] += 1
        success = error_class is ErrorClass.NONE
        return TargetState(  # not ``_replace``: this runs once per check
            self.info,
            result,
            result.finished_at if success else self.last_success_at,
            _consecutive_failures(self.consecutive_failures, error_class),
            classes,
            tuple(checks),
            self.attempts_total + result.attempts,
            self.rate_limited_total + (error_class is ErrorClass.RATE_LIMITED),
            tuple(counts),
            self.latency_sum + result.duration_seconds,
        )


class StoreWatcher(Protocol):
    """Told of every change of the store, as it happens (the metrics render on change)."""

    def configured(self, states: Sequence[TargetState]) -> None:
        """The whole set of targets, in configuration order, after a (re)configuration."""

    def recorded(self, state: TargetState) -> None:
        """One target's new state, after a result was stored."""


class ResultStore:
    """The latest state of every configured target."""

    def __init__(self) -> None:
        self._states: dict[str, TargetState] = {}
        self._watchers: list[StoreWatcher] = []

    def watch(self, watcher: StoreWatcher) -> None:
        """Tell ``watcher`` of every change from now on, starting with the current targets."""
        self._watchers.append(watcher)
        watcher.configured(self.snapshot())

    def configure(self, infos: list[TargetInfo]) -> None:
        """Adopt a configuration: keep the history of targets that stay the same, drop the
        removed ones (their series leave /metrics), start the new ones empty."""
        states: dict[str, TargetState] = {}
        for info in infos:
            old = self._states.get(info.name)
            same_identity = old is not None and (old.info.provider, old.info.provider_type) == (
                info.provider,
                info.provider_type,
            )
            if old is None or not same_identity:
                states[info.name] = TargetState(info)
            else:  # the same object when nothing changed: a watcher keeps what it made of it
                states[info.name] = old if old.info == info else old._replace(info=info)
        self._states = states
        snapshot = self.snapshot()
        for watcher in self._watchers:
            watcher.configured(snapshot)

    def record(self, result: CheckResult) -> tuple[TargetState, TargetState] | None:
        """Store a result; the old and new state, or None if the target was removed meanwhile."""
        old = self._states.get(result.target)
        if old is None:
            return None
        new = old.record(result)
        self._states[result.target] = new
        for watcher in self._watchers:
            watcher.recorded(new)
        return old, new

    def get(self, name: str) -> TargetState | None:
        return self._states.get(name)

    def snapshot(self) -> tuple[TargetState, ...]:
        return tuple(self._states.values())


def _consecutive_failures(before: int, error_class: ErrorClass) -> int:
    """A 429 neither counts nor resets: it says the provider is throttling us, not that it is
    down, so a 429 storm never pushes a target towards its failing alert, and the one real
    failure after a storm does not page as if every 429 had been a failure too."""
    if error_class is ErrorClass.NONE:
        return 0
    if error_class is ErrorClass.RATE_LIMITED:
        return before
    return before + 1
