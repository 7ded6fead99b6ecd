"""The copy-on-write takes of scrapes (``exposition._Take``) attacked: scrapes that fail, are
cancelled or are dropped half-way, scrapes when nothing changes, and any interleaving of
results, back-off changes, reloads (targets added, removed, renamed; the profile switched)
with overlapping scrapes of both forms and both formats. Each scrape shows the state at its
take; once no scrape is under way, a result keeps nothing for any."""

from __future__ import annotations

import asyncio
import gc
import zlib
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from pingmon import exposition as exposition_module, metrics as metrics_module
from pingmon.errors import ErrorClass
from pingmon.exposition import Exposition, Segment, deflate
from pingmon.metrics import Metrics
from pingmon.results import CheckResult, ResultStore, TargetInfo
from tests.unit.test_exposition_sequences import PROFILES, Scrape, from_scratch


def kept(exposition: Exposition) -> tuple[int, int]:
    """(takes still kept up to date, pieces they keep)."""
    live = [take for ref in exposition._takes if (take := ref()) is not None and take.pending]
    pieces = sum(
        len(piece) for take in live for family in take.before for piece in family.values()
    )
    return len(live), pieces


def a_result(name: str, step: int, error_class: ErrorClass = ErrorClass.NONE) -> CheckResult:
    return CheckResult(name, "p", error_class, 200, 0.01 * (step % 50), 1, "", 1.7e9 + step)


def record_all(metrics: Metrics, step: int) -> None:
    for state in metrics.store.snapshot():
        metrics.store.record(a_result(state.info.name, step))


def checked(count: int) -> Metrics:
    metrics = Metrics(ResultStore(), dict)
    metrics.store.configure([TargetInfo(f"t{i}", "p", "http", 30.0, "c") for i in range(count)])
    record_all(metrics, 0)
    return metrics


def one_member(body: Sequence[bytes]) -> bytes:
    decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
    data = decompressor.decompress(b"".join(body))
    assert decompressor.eof
    assert decompressor.unused_data == b""
    return data


@pytest.mark.parametrize("targets", [0, 3])
async def test_scrapes_that_no_result_follows_leave_no_trace(targets: int) -> None:
    """No target (a shard with none), or targets not checked again: nothing else lets go of
    the takes that ended, so each scrape must (it was a weak reference more per scrape)."""
    metrics = Metrics(ResultStore(), dict)
    metrics.store.configure([TargetInfo(f"t{i}", "p", "http", 30.0, "c") for i in range(targets)])
    for _ in range(300):
        for openmetrics in (False, True):
            for zipped in (False, True):
                metrics.scrapes.forget()
                await metrics.exposition(openmetrics, zipped)
    assert len(metrics.targets._takes) <= 1
    assert kept(metrics.targets) == (0, 0)


@pytest.mark.parametrize("failing", [1, 2, 5, 9])
async def test_a_gzip_scrape_that_fails_half_way_keeps_nothing_for_later_results(
    monkeypatch: pytest.MonkeyPatch, failing: int
) -> None:
    """The runs a failed scrape did not join were left holding its take: every result then
    kept the piece it overwrote, until a gzip scrape came again (none, with plain-only
    scrapers)."""
    monkeypatch.setattr(exposition_module, "SLICE_BYTES", 300)  # many runs
    metrics = checked(30)
    calls = 0

    def deflating(data: bytes, level: int = exposition_module.GZIP_LEVEL) -> Segment:
        nonlocal calls
        calls += 1
        if calls == failing:
            raise MemoryError("no memory for a run")
        return deflate(data, level)

    monkeypatch.setattr(metrics_module, "deflate", deflating)
    with pytest.raises(MemoryError):
        await metrics.exposition(False, gzip=True)
    monkeypatch.setattr(metrics_module, "deflate", deflate)
    for step in range(1, 4):
        record_all(metrics, step)
    assert kept(metrics.targets) == (0, 0)
    for openmetrics in (False, True):  # and the next scrapes are whole and up to date
        metrics.scrapes.forget()
        body = one_member(await metrics.exposition(openmetrics, gzip=True))
        assert body == metrics.render(openmetrics)


@pytest.mark.parametrize("zipped", [False, True])
async def test_a_scrape_cancelled_half_way_keeps_nothing_for_later_results(
    monkeypatch: pytest.MonkeyPatch, zipped: bool
) -> None:
    """A render cancelled (the daemon stopping) between two slices or runs."""
    monkeypatch.setattr(exposition_module, "SLICE_BYTES", 300)
    metrics = checked(30)
    scrape = asyncio.ensure_future(metrics._render_yielding((False, zipped)))
    for _ in range(6):  # a few slices or runs made
        await asyncio.sleep(0)
    record_all(metrics, 1)
    assert kept(metrics.targets)[1] > 0  # under way: it keeps what it has not joined yet
    scrape.cancel()
    with pytest.raises(asyncio.CancelledError):
        await scrape
    del scrape
    gc.collect()
    record_all(metrics, 2)
    assert kept(metrics.targets) == (0, 0)
    metrics.scrapes.forget()
    assert one_member(await metrics.exposition(False, gzip=True)) == metrics.render()


@pytest.mark.parametrize("zipped", [False, True])
async def test_a_join_that_fails_half_way_keeps_nothing_and_the_next_scrape_is_whole(
    monkeypatch: pytest.MonkeyPatch, zipped: bool
) -> None:
    monkeypatch.setattr(exposition_module, "SLICE_BYTES", 300)
    metrics = checked(30)
    join, calls = exposition_module._Take.join, 0

    def joining(take: exposition_module._Take, *args: Any) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 4:
            raise MemoryError("no memory for a slice")
        return join(take, *args)

    monkeypatch.setattr(exposition_module._Take, "join", joining)
    with pytest.raises(MemoryError):
        await metrics.exposition(False, zipped)
    record_all(metrics, 1)
    assert kept(metrics.targets) == (0, 0)
    metrics.scrapes.forget()
    body = await metrics.exposition(False, zipped)
    assert (one_member(body) if zipped else b"".join(body)) == metrics.render()


def test_a_plain_scrape_dropped_half_way_keeps_nothing() -> None:
    metrics = checked(30)
    chunks = metrics.targets.chunks(False)
    next(chunks)
    record_all(metrics, 1)
    del chunks  # the client went away; the generator is closed
    record_all(metrics, 2)
    assert kept(metrics.targets) == (0, 0)


NAMES = [f"t{i}" for i in range(12)] + ['o"dd%s\\n', "ümlaut"]


class Takes(RuleBasedStateMachine):
    """Any interleaving of results, back-off changes, reloads and scrapes (at most five
    under way) on one exposition: each scrape that ends shows the state at its take."""

    scrapes = Bundle("scrapes")

    @initialize(
        profile=st.sampled_from(sorted(PROFILES)), slice_bytes=st.sampled_from([1, 300, 2000])
    )
    def start(self, profile: str, slice_bytes: int) -> None:
        self.old_slice, exposition_module.SLICE_BYTES = exposition_module.SLICE_BYTES, slice_bytes
        self.profile = profile
        self.store = ResultStore()
        self.exposition = Exposition(PROFILES[profile])
        self.store.watch(self.exposition)
        self.backoff: dict[str, float] = {}
        self.step = 0
        self.under_way = 0
        self.store.configure(self.infos(NAMES[:8]))

    def teardown(self) -> None:
        if hasattr(self, "old_slice"):
            exposition_module.SLICE_BYTES = self.old_slice

    def infos(self, names: Sequence[str]) -> list[TargetInfo]:
        return [TargetInfo(n, "p", "http", 30.0, f"c{i % 2}") for i, n in enumerate(names)]

    def expected(self, openmetrics: bool) -> bytes:
        families = PROFILES[self.profile]
        return from_scratch(families, self.store.snapshot(), self.backoff, openmetrics)

    @rule(data=st.data(), error=st.sampled_from(list(ErrorClass)), duration=st.sampled_from(
        [0.0, 0.02, 0.3, 7.0, float("nan"), float("inf")]))  # fmt: skip
    def record(self, data: st.DataObject, error: ErrorClass, duration: float) -> None:
        names = [s.info.name for s in self.store.snapshot()]
        if not names:
            return
        name = data.draw(st.sampled_from(names))
        self.step += 1
        self.store.record(CheckResult(name, "p", error, 200, duration, 1, "", 1.7e9 + self.step))

    @rule(
        delay=st.sampled_from([0.0, 1.5, 7.0, float("inf")]),
        credential=st.sampled_from(["c0", "c1"]),
    )
    def backoff_changes(self, delay: float, credential: str) -> None:
        self.backoff = {**self.backoff, credential: delay}
        self.backoff = {c: d for c, d in self.backoff.items() if d}
        self.exposition.refresh_backoff(self.backoff)

    @rule(names=st.lists(st.sampled_from(NAMES), unique=True, max_size=len(NAMES)))
    def reload(self, names: list[str]) -> None:
        """Targets added, removed, renamed (one name gone, another come) or reordered."""
        self.store.configure(self.infos(names))

    @rule(profile=st.sampled_from(sorted(PROFILES)))
    def switch_profile(self, profile: str) -> None:
        self.profile = profile
        self.exposition.set_families(PROFILES[profile])

    @precondition(lambda self: self.under_way < 5)
    @rule(target=scrapes, openmetrics=st.booleans(), zipped=st.booleans())
    def begin(self, openmetrics: bool, zipped: bool) -> Scrape:
        self.under_way += 1
        return Scrape(self.exposition, openmetrics, zipped, self.expected(openmetrics))

    @rule(scrape=scrapes, steps=st.integers(1, 4))
    def advance(self, scrape: Scrape, steps: int) -> None:
        for _ in range(steps):
            scrape.step()

    @rule(scrape=consumes(scrapes))
    def finish(self, scrape: Scrape) -> None:
        while scrape.step():
            pass
        self.under_way -= 1
        assert scrape.body() == scrape.expected

    @rule(scrape=consumes(scrapes))
    def abandon(self, scrape: Scrape) -> None:
        scrape.abandon()
        self.under_way -= 1

    @invariant()
    def nothing_kept_without_a_scrape(self) -> None:
        """Once no scrape is under way, a result keeps nothing (and the takes are let go)."""
        names = [s.info.name for s in self.store.snapshot()] if hasattr(self, "store") else []
        if names and self.under_way == 0:
            self.step += 1
            self.store.record(CheckResult(names[0], "p", ErrorClass.NONE, 200,
                                          float(self.step), 1, "", 1.7e9))  # fmt: skip
            assert kept(self.exposition) == (0, 0)


Takes.TestCase.settings = settings(
    max_examples=150, stateful_step_count=60, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
test_scrapes_under_any_interleaving_show_the_state_at_their_take = Takes.TestCase


@pytest.mark.parametrize("zipped", [False, True])
async def test_pingmons_own_metrics_and_the_targets_are_taken_in_one_turn(zipped: bool) -> None:
    """A reload in the turn after the scrape began (a new shard and its targets) is in
    neither part of it: pingmon's own metrics and the targets show one moment (the plain
    form took the targets a turn after its own metrics)."""
    metrics = checked(3)
    scrape = asyncio.ensure_future(metrics._render_yielding((False, zipped)))
    await asyncio.sleep(0)  # the scrape's first turn
    metrics.sharded(1, 2)
    metrics.store.configure([TargetInfo("other", "p", "http", 30.0, "c")])
    body = await scrape
    text = (one_member(body) if zipped else b"".join(body)).decode()
    assert 'pingmon_shard_info{shard="0",shards="1"} 1.0' in text
    assert 'target="t0"' in text
    assert 'target="other"' not in text


@pytest.mark.parametrize("zipped", [False, True])
async def test_a_scrape_after_a_reload_shows_it_though_one_was_under_way(zipped: bool) -> None:
    """A scrape that comes after a reload does not join the one under way since before it
    (nor get its result kept): it shows the targets the reload configured."""
    metrics = checked(3)
    before = asyncio.ensure_future(metrics.exposition(False, zipped))
    for _ in range(3):
        await asyncio.sleep(0)
    assert metrics.targets._takes  # under way: taken, not done
    assert not before.done()
    metrics.store.configure([TargetInfo("other", "p", "http", 30.0, "c")])
    metrics.config_loaded(True)
    after = await metrics.exposition(False, zipped)
    for body, shown, gone in ((await before, "t0", "other"), (after, "other", "t0")):
        text = (one_member(body) if zipped else b"".join(body)).decode()
        assert f'target="{shown}"' in text
        assert f'target="{gone}"' not in text
