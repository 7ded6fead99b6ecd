"""The per-target metric families: names, types, help texts and the series of each, per profile.

One table serves both writers: ``pingmon.exposition`` keeps every target's lines ready as bytes,
and ``metrics.TargetCollector`` builds them through prometheus-client, as the reference the fast
writer is tested against.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from itertools import accumulate
from typing import NamedTuple, cast

from prometheus_client.utils import floatToGoString

from pingmon.errors import ErrorClass
from pingmon.results import LATENCY_BUCKETS, TargetState

# prometheus-client leaves it untyped; its signature, as we use it:
go_float = cast(Callable[[float], str], floatToGoString)
ERROR_CLASSES = tuple(ErrorClass)
PROFILES = ("default", "lean")

Labels = tuple[tuple[str, str], ...]
Sample = tuple[str, Labels, float]  # (name suffix, extra labels, value)


class TargetView(NamedTuple):
    """One target's state plus its credential's back-off, as one scrape sees it (a named
    tuple: one is made for every recorded result, and a frozen dataclass costs 3x)."""

    state: TargetState
    backoff_seconds: float


Series = tuple[str, Labels]  # (name suffix, extra labels)
ONE: tuple[Series, ...] = (("", ()),)


@dataclass(frozen=True, slots=True)
class Family:
    """A per-target metric family: its exposition name, type and help, and its series.

    ``shape(view)`` says which series a target has now (equal shapes, equal series), so that
    a writer can keep a target's lines as a template and only put the ``values`` in;
    ``series(shape)`` names them and ``values(view)`` gives their values, in that order.
    A ``shape`` of None: the series follow the number of values (``len(values)`` is the
    shape; most families have one series once a target was checked, none before), which
    costs a writer no call.
    ``on_result``: the values change when a result is recorded (not only on reconfiguration,
    or for the back-off, when the credential's delay in force changes).
    ``counts``: the values are ints (a histogram's ``_sum`` excepted), which a writer may
    format as integers; the others are written as ``repr`` of whatever number they are.
    ``steady``: the values (and shape) are a function of what ``steady(old, new)`` compares
    only (the last result's error class and HTTP status, the failures in a row, the 429s),
    so a result that leaves those as they were leaves this family's values as they were
    (a healthy target's success, state set, status, failures in a row and 429s): a writer
    may skip it then.
    """

    name: str
    type: str  # "gauge" | "counter" | "histogram"
    help: str
    shape: Callable[[TargetView], Hashable] | None
    series: Callable[[Hashable], tuple[Series, ...]]
    values: Callable[[TargetView], tuple[float, ...]]
    on_result: bool = True
    counts: bool = False
    steady: bool = False

    @property
    def base_name(self) -> str:
        """The family name as metadata carries it (OpenMetrics drops a counter's _total)."""
        return self.name.removesuffix("_total") if self.type == "counter" else self.name

    def shape_of(self, view: TargetView, values: tuple[float, ...]) -> Hashable:
        """The target's shape now, given its ``values(view)``."""
        return len(values) if self.shape is None else self.shape(view)

    def samples(self, view: TargetView) -> Iterator[Sample]:
        """The target's samples, for the generic renderer."""
        values = self.values(view)
        series = self.series(self.shape_of(view, values))
        for (suffix, extra), value in zip(series, values, strict=True):
            yield suffix, extra, value


def steady(old: TargetState, new: TargetState) -> bool:
    """Whether ``new`` (a result recorded on ``old``) leaves every ``Family.steady`` family's
    values as they were: both have a last result, of the same error class and HTTP status,
    and the failures in a row and the 429s counted are the same."""
    before, last = old.last, new.last
    return (
        before is not None
        and last is not None
        and last.error_class is before.error_class
        and last.http_status == before.http_status
        and new.consecutive_failures == old.consecutive_failures
        and new.rate_limited_total == old.rate_limited_total
    )


def _one_or_none(count: Hashable) -> tuple[Series, ...]:
    return ONE if count == 1 else ()


def _last(name: str, help: str, field: str, steady: bool = False) -> Family:
    """A gauge of a field of the last result; absent until the first check."""

    def values(view: TargetView) -> tuple[float, ...]:
        last = view.state.last
        return () if last is None else (float(getattr(last, field) or 0),)

    return Family(name, "gauge", help, None, _one_or_none, values, steady=steady)


def _always(
    name: str,
    type: str,
    help: str,
    values: Callable[[TargetView], tuple[float, ...]],
    on_result: bool = True,
    counts: bool = False,
    steady: bool = False,
) -> Family:
    """One series from the start; ``values`` gives its one value in a tuple."""
    return Family(name, type, help, None, lambda count: ONE, values, on_result, counts, steady)


def _class_series(classes: Hashable) -> tuple[Series, ...]:
    return tuple(("", (("error_class", c.value),)) for c in cast(tuple[ErrorClass, ...], classes))


_STATE_SET = {c: tuple(float(c is other) for other in ERROR_CLASSES) for c in ERROR_CLASSES}
_ALL_CLASSES = _class_series(ERROR_CLASSES)


def _state_set_values(view: TargetView) -> tuple[float, ...]:
    last = view.state.last
    return () if last is None else _STATE_SET[last.error_class]


def _active_class(view: TargetView) -> Hashable:
    last = view.state.last
    return () if last is None else (last.error_class,)


_UP, _DOWN = (1.0,), (0.0,)  # made once: a healthy target's gauge compares by identity


def _success(view: TargetView) -> tuple[float, ...]:
    last = view.state.last
    if last is None:
        return ()
    return _UP if last.error_class is ErrorClass.NONE else _DOWN


def _last_success(view: TargetView) -> tuple[float, ...]:
    at = view.state.last_success_at
    return () if at is None else (at,)


def _seen_classes(view: TargetView) -> Hashable:
    return view.state.seen_classes


def _checks_total(view: TargetView) -> tuple[float, ...]:
    return view.state.checks_per_class


_LATENCY_SERIES: tuple[Series, ...] = (
    *(("_bucket", (("le", go_float(b)),)) for b in LATENCY_BUCKETS),
    ("_bucket", (("le", "+Inf"),)),
    ("_count", ()),
    ("_sum", ()),
)


def _latency(view: TargetView) -> tuple[float, ...]:
    cumulative = tuple(accumulate(view.state.latency_counts))
    return (*cumulative, cumulative[-1], view.state.latency_sum)  # buckets, _count, _sum


# fmt: off
SUCCESS = Family("pingmon_check_success", "gauge", "1 if the last check succeeded, else 0.",
                 None, _one_or_none, _success, steady=True)
DURATION = _last("pingmon_check_duration_seconds",
                 "Duration of the last check, all attempts included.", "duration_seconds")
ERROR_CLASS_HELP = "1 for the last check's error class, 0 for every other class."
ERROR_CLASS = Family("pingmon_check_error_class", "gauge", ERROR_CLASS_HELP, None,
                     lambda count: _ALL_CLASSES if count != 0 else (), _state_set_values,
                     steady=True)
HTTP_STATUS = _last("pingmon_check_http_status",
                    "HTTP status of the last check, 0 when none came.", "http_status",
                    steady=True)
INTERVAL = _always("pingmon_check_interval_seconds", "gauge",
                   "The configured interval between checks.",
                   lambda v: (v.state.info.interval,), on_result=False)
LAST_RUN = _last("pingmon_check_last_run_timestamp_seconds",
                 "When the last check finished (Unix time).", "finished_at")
LAST_SUCCESS = Family("pingmon_check_last_success_timestamp_seconds", "gauge",
                      "When a check last succeeded (Unix time).",
                      None, _one_or_none, _last_success)
CONSECUTIVE_FAILURES = _always("pingmon_check_consecutive_failures", "gauge",
                               "Failed checks in a row, 0 after a success.",
                               lambda v: (v.state.consecutive_failures,), counts=True,
                               steady=True)
CHECKS_TOTAL = Family("pingmon_checks_total", "counter", "Checks by error class (none = success).",
                      _seen_classes, _class_series, _checks_total, counts=True)
ATTEMPTS_TOTAL = _always("pingmon_check_attempts_total", "counter",
                         "Requests sent, retries included.",
                         lambda v: (v.state.attempts_total,), counts=True)
LATENCY = Family("pingmon_check_latency_seconds", "histogram", "Duration of every check.",
                 None, lambda count: _LATENCY_SERIES, _latency, counts=True)
RATE_LIMITED_TOTAL = _always("pingmon_rate_limited_total", "counter",
                             "Checks answered with 429.",
                             lambda v: (v.state.rate_limited_total,), counts=True,
                             steady=True)
BACKOFF = _always("pingmon_backoff_seconds", "gauge",
                  "Back-off delay in force for the target's credential, 0 when none.",
                  lambda v: (v.backoff_seconds,), on_result=False)
# The lean profile's state set: only the last check's class, at 1 (the rules read `== 1`).
ACTIVE_ERROR_CLASS = Family("pingmon_check_error_class", "gauge", ERROR_CLASS_HELP,
                            _active_class, _class_series,
                            lambda v: () if v.state.last is None else (1.0,), steady=True)

FAMILIES: tuple[Family, ...] = (
    SUCCESS, DURATION, ERROR_CLASS, HTTP_STATUS, INTERVAL, LAST_RUN, LAST_SUCCESS,
    CONSECUTIVE_FAILURES, CHECKS_TOTAL, ATTEMPTS_TOTAL, LATENCY, RATE_LIMITED_TOTAL, BACKOFF,
)
# What the shipped rules read, and the dashboard's duration panels (README.md, "Metrics profiles").
LEAN_FAMILIES: tuple[Family, ...] = (
    SUCCESS, DURATION, ACTIVE_ERROR_CLASS, HTTP_STATUS, INTERVAL, LAST_RUN,
    CONSECUTIVE_FAILURES, CHECKS_TOTAL, BACKOFF,
)
# fmt: on


def families(profile: str = "default", latency_histogram: bool = True) -> tuple[Family, ...]:
    """The per-target families of a metrics profile (``default`` or ``lean``); the latency
    histogram is the default profile's, unless ``latency_histogram`` is off."""
    if profile == "lean":
        return LEAN_FAMILIES
    return FAMILIES if latency_histogram else tuple(f for f in FAMILIES if f is not LATENCY)
