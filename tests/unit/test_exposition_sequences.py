"""The pieces kept rendered, after long sequences of results: each recorded result re-renders
only what changed, with templates (``%d`` for counts, ``%r`` for the rest) made when a
target's series change; whatever the sequence, the exposition (and the gzip form, whose runs
are compressed again only when one of their pieces changed) is the same text as one written
from scratch, line by line, for the same states."""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import given, settings, strategies as st
from prometheus_client.parser import text_string_to_metric_families as parse_text

from pingmon import exposition as exposition_module
from pingmon.errors import ErrorClass
from pingmon.exposition import (
    Exposition,
    _Run,
    deflate,
    escape_label_value,
    format_value,
    gzip_member,
    headers,
)
from pingmon.families import Family, TargetView, families, steady
from pingmon.results import LATENCY_BUCKETS, CheckResult, ResultStore, TargetInfo, TargetState

NAMES = ("plain", 'we"ird\\na%s%%me\n', "p%d%r", "ümlaut", "x" * 80)
ODD_DURATIONS = (0.0, -0.0, 0.05, 0.0500001, 10.0, 1e-9, 1e300, 0.1 + 0.2, float("nan"),
                 float("inf"))  # fmt: skip
ODD_TIMES = (0.0, 1e9, float("nan"), 1.7e9 + 0.1)
PROFILES = {"default": families("default"), "no histogram": families("default", False),
            "lean": families("lean")}  # fmt: skip


def from_scratch(
    families: Sequence[Family], states: Sequence[TargetState], backoff: dict[str, float],
    openmetrics: bool,
) -> bytes:  # fmt: skip
    """The per-target exposition written line by line from the states, as the text formats
    spell each sample: the reference for the kept pieces."""
    out = []
    for family, header in zip(families, headers(families, openmetrics), strict=True):
        out.append(header.decode())
        for state in states:
            info = state.info
            view = TargetView(state, backoff.get(info.credential, 0.0))
            provider, name = escape_label_value(info.provider), escape_label_value(info.name)
            labels = f'provider="{provider}",target="{name}"'
            for suffix, extra, value in family.samples(view):
                more = "".join(f',{k}="{escape_label_value(v)}"' for k, v in extra)
                out.append(f"{family.name}{suffix}{{{labels}{more}}} {format_value(value)}\n")
    return "".join(out).encode()


def infos(rng: random.Random) -> list[TargetInfo]:
    """The targets, some left out (a reload), with intervals of either type."""
    chosen = [name for name in NAMES if rng.random() < 0.85]
    return [
        TargetInfo(name, 'pr"ov%', "http", rng.choice((30.0, 10, 0.5)), f"c{i % 2}")
        for i, name in enumerate(chosen)
    ]


def a_result(rng: random.Random, step: int) -> CheckResult:
    """Mostly healthy results, now and then a failure of any class (a class a target has
    not met yet makes a new series) and values that are not finite."""
    error_class = rng.choice(list(ErrorClass)) if rng.random() < 0.3 else ErrorClass.NONE
    odd = rng.random() < 0.1
    duration = rng.choice(ODD_DURATIONS) if odd else rng.expovariate(20)
    finished = rng.choice(ODD_TIMES) if odd else 1.7e9 + step * 0.37 + rng.random()
    status = rng.choice((None, 200, 429, 503))
    attempts = rng.choice((1, 1, 2))
    return CheckResult(rng.choice(NAMES), 'pr"ov%', error_class, status, duration, attempts,
                       "", finished)  # fmt: skip


def gzip_form(exposition: Exposition, openmetrics: bool) -> bytes:
    """The per-target part of the gzip form (runs kept compressed, the changed ones
    compressed again), decompressed."""
    runs = exposition.compressed(openmetrics)
    for run in runs:
        if run.segment is None:
            run.made(deflate(run.join()))
    return gzip.decompress(b"".join(gzip_member([run.done() for run in runs])))


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("seed", range(4))
def test_pieces_kept_through_a_sequence_equal_the_exposition_written_from_scratch(
    profile: str, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exposition_module, "SLICE_BYTES", 400)  # gzip runs of a few targets
    rng = random.Random(seed)
    store, exposition = ResultStore(), Exposition(PROFILES[profile])
    store.watch(exposition)
    store.configure(infos(rng))
    backoff: dict[str, float] = {}
    for step in range(400):
        draw = rng.random()
        if draw < 0.02:
            store.configure(infos(rng))
        elif draw < 0.04:
            backoff = {"c0": rng.choice((1.5, 7, float("inf")))} if rng.random() < 0.7 else {}
            exposition.refresh_backoff(backoff)
        else:
            store.record(a_result(rng, step))
        if step % 10 == 0 or step == 399:
            for openmetrics in (False, True):
                kept = b"".join(exposition.chunks(openmetrics))
                expected = from_scratch(PROFILES[profile], store.snapshot(), backoff, openmetrics)
                assert kept == expected, (profile, seed, step, openmetrics)
                assert gzip_form(exposition, openmetrics) == expected, (profile, seed, step)
    # ... and the same as a new exposition rendering the final states at once
    fresh = Exposition(PROFILES[profile])
    fresh.refresh_backoff(backoff)
    fresh.configured(store.snapshot())
    assert b"".join(fresh.chunks(False)) == b"".join(exposition.chunks(False))


def a_sticky_result(rng: random.Random, step: int, last: dict[str, CheckResult]) -> CheckResult:
    """Mostly a result like the target's last one (its class and status, as a healthy
    target's are): what lets the steady families be skipped and a success's times be
    spelled once; now and then any result (``a_result``)."""
    fresh = a_result(rng, step)
    before = last.get(fresh.target)
    if before is not None and rng.random() < 0.8:
        fresh = fresh._replace(error_class=before.error_class, http_status=before.http_status)
    last[fresh.target] = fresh
    return fresh


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("seed", range(3))
def test_pieces_kept_through_results_like_the_last_equal_the_exposition_written_from_scratch(
    profile: str, seed: int
) -> None:
    """Compared after every step: a piece skipped (``Family.steady``) or copied from its
    twin (a success's last-run and last-success times) is the one written from scratch."""
    rng = random.Random(100 + seed)
    store, exposition = ResultStore(), Exposition(PROFILES[profile])
    store.watch(exposition)
    store.configure(infos(rng))
    last: dict[str, CheckResult] = {}
    backoff: dict[str, float] = {}
    for step in range(300):
        draw = rng.random()
        if draw < 0.01:
            store.configure(infos(rng))
        elif draw < 0.02:
            backoff = {"c1": rng.choice((0.5, 3))} if rng.random() < 0.7 else {}
            exposition.refresh_backoff(backoff)
        else:
            store.record(a_sticky_result(rng, step, last))
        kept = b"".join(exposition.chunks(step % 2 == 0))
        assert kept == from_scratch(PROFILES[profile], store.snapshot(), backoff, step % 2 == 0)


@settings(deadline=None)  # a busy machine: no wall-clock bound
@given(seed=st.integers(0, 2**32), steps=st.integers(1, 12))
def test_a_steady_family_shows_the_same_text_when_steady_says_a_result_changed_nothing(
    seed: int, steps: int
) -> None:
    """``Family.steady`` holds for every family that declares it: whenever ``steady(old,
    new)``, its lines are the same text for both states (so skipping it is exact)."""
    rng = random.Random(seed)
    state = TargetState(TargetInfo(NAMES[0], "p", "http", 10.0, "c"))
    last: dict[str, CheckResult] = {}
    declared = {f for profile in PROFILES.values() for f in profile if f.steady}
    assert {f.name for f in declared} == {
        "pingmon_check_success", "pingmon_check_error_class", "pingmon_check_http_status",
        "pingmon_check_consecutive_failures", "pingmon_rate_limited_total",
    }  # fmt: skip
    for step in range(steps):
        result = a_sticky_result(rng, step, last)
        last = {name: result for name in NAMES}  # one target's results, whatever their names
        old, state = state, state.record(result)
        if steady(old, state):
            for family in declared:
                for openmetrics in (False, True):
                    before = from_scratch([family], [old], {}, openmetrics)
                    assert from_scratch([family], [state], {}, openmetrics) == before


def test_counts_are_written_as_integers_and_the_rest_as_the_number_they_are() -> None:
    store, exposition = ResultStore(), Exposition(families("default"))
    store.watch(exposition)
    store.configure([TargetInfo("t", "p", "http", 10, "c")])
    for duration in (0.01, 0.2, float("nan")):
        store.record(CheckResult("t", "p", ErrorClass.TIMEOUT, None, duration, 2, "", 1.5e9))
    text = b"".join(exposition.chunks(False)).decode()
    assert 'pingmon_check_interval_seconds{provider="p",target="t"} 10\n' in text
    assert 'pingmon_check_attempts_total{provider="p",target="t"} 6\n' in text
    assert 'pingmon_checks_total{provider="p",target="t",error_class="timeout"} 3\n' in text
    assert 'pingmon_checks_total{provider="p",target="t",error_class="none"} 0\n' in text
    # (a NaN duration falls in the first bucket: no comparison with it holds)
    assert 'pingmon_check_latency_seconds_bucket{provider="p",target="t",le="0.05"} 2\n' in text
    assert 'pingmon_check_latency_seconds_bucket{provider="p",target="t",le="+Inf"} 3\n' in text
    assert 'pingmon_check_latency_seconds_count{provider="p",target="t"} 3\n' in text
    assert 'pingmon_check_latency_seconds_sum{provider="p",target="t"} NaN\n' in text
    assert 'pingmon_check_duration_seconds{provider="p",target="t"} NaN\n' in text
    assert 'pingmon_check_http_status{provider="p",target="t"} 0.0\n' in text
    assert 'pingmon_check_success{provider="p",target="t"} 0.0\n' in text
    assert 'pingmon_check_last_run_timestamp_seconds{provider="p",target="t"} 1500000000.0' in text
    assert "pingmon_check_last_success_timestamp_seconds{" not in text  # never succeeded
    assert [f.name for f in parse_text(text)]  # the prometheus parser takes it


def test_a_state_counts_checks_by_class_in_the_order_the_classes_first_came() -> None:
    state = TargetState(TargetInfo("t", "p", "http", 10.0, "c"))
    assert (state.seen_classes, state.checks_per_class) == ((ErrorClass.NONE,), (0,))
    classes = (ErrorClass.TIMEOUT, ErrorClass.NONE, ErrorClass.RATE_LIMITED, ErrorClass.TIMEOUT,
               ErrorClass.DNS, ErrorClass.RATE_LIMITED, ErrorClass.NONE)  # fmt: skip
    for i, error_class in enumerate(classes):
        before = state
        state = state.record(CheckResult("t", "p", error_class, None, 0.3, 2, "", float(i)))
        assert before.checks_per_class != state.checks_per_class  # never mutated: replaced
    assert state.seen_classes == (ErrorClass.NONE, ErrorClass.TIMEOUT, ErrorClass.RATE_LIMITED,
                                  ErrorClass.DNS)  # fmt: skip
    assert state.checks_per_class == (2, 2, 2, 1)
    assert state.attempts_total == 14
    assert state.rate_limited_total == 2
    assert state.consecutive_failures == 0
    assert state.last_success_at == 6.0
    assert state.latency_counts == (0, 0, 0, 7) + (0,) * (len(LATENCY_BUCKETS) - 3)  # 0.25 < 0.3
    assert state.latency_sum == pytest.approx(2.1)


def many_infos(rng: random.Random) -> list[TargetInfo]:
    """Enough targets for a family to come in many slices, some left out (a reload)."""
    names = [f"t{i}" if i % 7 else f"{NAMES[i % len(NAMES)]}{i}" for i in range(40)]
    return [
        TargetInfo(name, "prov", "http", rng.choice((30.0, 10)), f"c{i % 2}")
        for i, name in enumerate(names)
        if rng.random() < 0.9
    ]


def some_result(rng: random.Random, names: Sequence[str], step: int) -> CheckResult:
    error_class = rng.choice(list(ErrorClass)) if rng.random() < 0.2 else ErrorClass.NONE
    duration = rng.choice(ODD_DURATIONS) if rng.random() < 0.05 else rng.expovariate(20)
    return CheckResult(rng.choice(names), "prov", error_class, 200, duration, 1, "",
                       1.7e9 + step)  # fmt: skip


class Scrape:
    """A scrape under way on an ``Exposition`` (as ``Metrics`` makes it): the plain form a
    slice at a time, or the gzip form a run at a time; ``expected`` is the exposition
    written from scratch when it began."""

    def __init__(self, exposition: Exposition, openmetrics: bool, zipped: bool, expected: bytes):
        self.expected = expected
        self.zipped = zipped
        self.made: list[bytes] = []
        self.runs: list[_Run] = []
        self.todo: list[_Run] = []
        self.slices: Iterator[bytes] = iter(())
        if zipped:
            self.runs = exposition.compressed(openmetrics)
            self.todo = [run for run in self.runs if run.segment is None]
        else:
            self.slices = exposition.chunks(openmetrics)

    def step(self) -> bool:
        """One slice or run more; False when all are made."""
        if self.zipped:
            if not self.todo:
                return False
            run = self.todo.pop(0)
            run.made(deflate(run.join()))
            return True
        chunk = next(self.slices, None)
        if chunk is not None:
            self.made.append(chunk)
        return chunk is not None

    def body(self) -> bytes:
        if self.zipped:
            return gzip.decompress(b"".join(gzip_member([run.done() for run in self.runs])))
        return b"".join(self.made)

    def abandon(self) -> None:
        """As ``Metrics`` does when a scrape fails (the plain form: the generator closed)."""
        for run in self.todo:
            run.drop()
        self.todo = []
        self.slices = iter(())


@pytest.mark.parametrize("seed", range(6))
def test_scrapes_under_way_show_the_pieces_as_they_were_when_they_began(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Results, back-off changes and reloads between the slices of scrapes that overlap
    (plain and gzip, both formats): each shows the state at its start, as written from
    scratch (the pieces overwritten meanwhile are kept for it: ``_Take``)."""
    monkeypatch.setattr(exposition_module, "SLICE_BYTES", 2000)  # families in a few slices
    rng = random.Random(seed)
    profile = PROFILES["default"]
    store, exposition = ResultStore(), Exposition(profile)
    store.watch(exposition)
    store.configure(many_infos(rng))
    backoff: dict[str, float] = {}
    for step in range(200):
        store.record(some_result(rng, [s.info.name for s in store.snapshot()], step))
    under_way: list[Scrape] = []
    finished = 0
    for step in range(2000):
        draw = rng.random()
        if draw < 0.03 and len(under_way) < 3:
            openmetrics, zipped = rng.random() < 0.5, rng.random() < 0.5
            expected = from_scratch(profile, store.snapshot(), backoff, openmetrics)
            under_way.append(Scrape(exposition, openmetrics, zipped, expected))
        elif draw < 0.6 and under_way:
            scrape = rng.choice(under_way)
            if not scrape.step():
                under_way.remove(scrape)
                assert scrape.body() == scrape.expected, (seed, step)
                finished += 1
        elif draw < 0.605:
            store.configure(many_infos(rng))
        elif draw < 0.62:
            backoff = {"c0": rng.choice((1.5, 7.0))} if rng.random() < 0.7 else {}
            exposition.refresh_backoff(backoff)
        else:
            names = [s.info.name for s in store.snapshot()]
            store.record(some_result(rng, names, step))
    assert finished > 10
    for openmetrics in (False, True):  # and the pieces kept are the state now
        expected = from_scratch(profile, store.snapshot(), backoff, openmetrics)
        assert b"".join(exposition.chunks(openmetrics)) == expected
        assert gzip_form(exposition, openmetrics) == expected
