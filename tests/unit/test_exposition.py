"""Per-target pieces rendered when a result is recorded: a scrape joins them, the back-off
gauge follows the delay in force, and the lean profile matches the generic renderer."""

from __future__ import annotations

import asyncio
import gc
import gzip
import zlib
from collections.abc import Iterable, Iterator, Sequence

import pytest
from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families as parse_text

from pingmon import exposition, metrics as metrics_module
from pingmon.backoff import RateLimitGate
from pingmon.config import BackoffSettings
from pingmon.errors import ErrorClass
from pingmon.exposition import SLICE_BYTES, Exposition, Segment, _sliced, gzip_chunks
from pingmon.families import INTERVAL, LEAN_FAMILIES, Family, TargetView
from pingmon.metrics import Metrics
from pingmon.results import CheckResult, ResultStore, TargetInfo
from pingmon.server import accepts_gzip

CREDENTIAL = "c0ffee"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def result(target: str, error_class: ErrorClass, duration: float = 0.2) -> CheckResult:
    status = {ErrorClass.NONE: 200, ErrorClass.RATE_LIMITED: 429}.get(error_class, 500)
    return CheckResult(target, "prov", error_class, status, duration, 1, "", 1e9)


def make_metrics(backoff: RateLimitGate | None = None, profile: str = "default") -> Metrics:
    store = ResultStore()
    store.configure(
        [
            TargetInfo("alpha", "prov", "http", 30.0, CREDENTIAL),
            TargetInfo("beta", "prov", "http", 60.0, "other"),
        ]
    )
    delays = backoff.delays if backoff is not None else dict
    return Metrics(store, delays, profile=profile)


def samples(families: Iterable[Metric]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in families
        for s in family.samples
        if s.labels.get("target")
    }


def value(metrics: Metrics, name: str, target: str, **extra: str) -> float | None:
    found = samples(parse_text(metrics.render().decode()))
    labels = tuple(sorted({"provider": "prov", "target": target, **extra}.items()))
    return found.get((name, labels))


def test_a_recorded_result_is_rendered_then_and_a_scrape_renders_no_target() -> None:
    calls: list[str] = []

    def counted(view: TargetView) -> tuple[float, ...]:
        calls.append(view.state.info.name)
        return (float(view.state.attempts_total),)

    attempts = Family("pingmon_check_attempts_total", "counter", "Requests sent.",
                      lambda v: None, lambda shape: (("", ()),), counted)  # fmt: skip
    metrics = make_metrics()
    metrics.targets.set_families((attempts,))
    calls.clear()
    metrics.store.record(result("alpha", ErrorClass.NONE))
    assert calls == ["alpha"]
    for _ in range(3):
        assert value(metrics, "pingmon_check_attempts_total", "alpha") == 1
    assert calls == ["alpha"]


def test_a_reload_renders_only_the_targets_it_changed_and_reorders_the_rest() -> None:
    calls: list[str] = []

    def counted(view: TargetView) -> tuple[float, ...]:
        calls.append(view.state.info.name)
        return (float(view.state.attempts_total), view.state.info.interval)

    two = Family("pingmon_two", "gauge", "Attempts and interval.", lambda v: None,
                 lambda shape: (("", (("of", "attempts"),)), ("", (("of", "interval"),))),
                 counted)  # fmt: skip
    metrics = make_metrics()
    metrics.targets.set_families((two,))
    metrics.store.record(result("alpha", ErrorClass.NONE))
    calls.clear()
    metrics.store.configure(
        [
            TargetInfo("gamma", "prov", "http", 10.0, "other"),
            TargetInfo("beta", "prov", "http", 90.0, "other"),  # a new interval
            TargetInfo("alpha", "prov", "http", 30.0, CREDENTIAL),  # as it was
        ]
    )
    assert sorted(calls) == ["beta", "gamma"]
    body = metrics.render().decode()
    assert value(metrics, "pingmon_two", "alpha", of="attempts") == 1
    assert value(metrics, "pingmon_two", "alpha", of="interval") == 30
    assert value(metrics, "pingmon_two", "beta", of="interval") == 90
    assert value(metrics, "pingmon_two", "gamma", of="attempts") == 0
    assert body.index('target="gamma"') < body.index('target="beta"') < body.index('"alpha"')
    metrics.store.record(result("alpha", ErrorClass.NONE))
    assert value(metrics, "pingmon_two", "alpha", of="attempts") == 2


def test_backoff_gauge_shows_the_delay_in_force_while_it_lasts_and_0_after() -> None:
    clock = Clock()
    gate = RateLimitGate(BackoffSettings(initial=30.0, max=60.0), clock=clock)
    metrics = make_metrics(gate)
    assert value(metrics, "pingmon_backoff_seconds", "alpha") == 0
    decision = gate.on_rate_limited(CREDENTIAL, "20")
    assert value(metrics, "pingmon_backoff_seconds", "alpha") == decision.delay
    assert value(metrics, "pingmon_backoff_seconds", "beta") == 0
    clock.now += decision.delay + 1  # it ends by itself, with no event
    assert value(metrics, "pingmon_backoff_seconds", "alpha") == 0


def test_backoff_gauge_drops_to_0_when_a_success_clears_it() -> None:
    gate = RateLimitGate(BackoffSettings(initial=30.0, max=60.0), clock=Clock())
    metrics = make_metrics(gate)
    gate.on_rate_limited(CREDENTIAL, None)
    assert (value(metrics, "pingmon_backoff_seconds", "alpha") or 0) > 0
    gate.on_success(CREDENTIAL)
    assert value(metrics, "pingmon_backoff_seconds", "alpha") == 0


async def test_the_gzip_form_follows_the_backoff_gauge_too() -> None:
    clock = Clock()
    gate = RateLimitGate(BackoffSettings(initial=30.0, max=60.0), clock=clock)
    metrics = make_metrics(gate)

    async def shown() -> float | None:
        metrics.scrapes.forget()
        body = one_member(await metrics.exposition(openmetrics=False, gzip=True))
        assert body == metrics.render()
        return value(metrics, "pingmon_backoff_seconds", "alpha")

    assert await shown() == 0
    decision = gate.on_rate_limited(CREDENTIAL, "20")
    assert await shown() == decision.delay
    clock.now += decision.delay + 1
    assert await shown() == 0


def busy(profile: str) -> Metrics:
    gate = RateLimitGate(BackoffSettings(initial=5.0, max=60.0), clock=Clock())
    gate.on_rate_limited(CREDENTIAL, "5")
    metrics = make_metrics(gate, profile)
    for error_class, duration in (
        (ErrorClass.NONE, 0.01),
        (ErrorClass.AUTH, 3.0),
        (ErrorClass.RATE_LIMITED, 0.7),
    ):
        metrics.store.record(result("alpha", error_class, duration))
    metrics.store.record(result("beta", ErrorClass.NONE, 11.0))
    return metrics


@pytest.mark.parametrize("profile", ["default", "lean"])
def test_the_pieces_match_the_generic_renderer(profile: str) -> None:
    metrics = busy(profile)
    fast = samples(parse_text(metrics.render().decode()))
    assert fast == samples(parse_text(generate_latest(metrics.registry).decode()))
    assert len(fast) > 15


def test_the_lean_profile_keeps_only_the_active_error_class_at_1() -> None:
    metrics = busy("lean")
    found = samples(parse_text(metrics.render().decode()))
    classes = {k: v for k, v in found.items() if k[0] == "pingmon_check_error_class"}
    alpha = (("error_class", "rate_limited"), ("provider", "prov"), ("target", "alpha"))
    beta = (("error_class", "none"), ("provider", "prov"), ("target", "beta"))
    assert classes == {("pingmon_check_error_class", alpha): 1.0,
                       ("pingmon_check_error_class", beta): 1.0}  # fmt: skip
    assert not any(name.startswith("pingmon_check_latency") for name, _ in found)


def test_a_profile_change_renders_every_target_again() -> None:
    metrics = busy("default")
    assert b"pingmon_check_latency_seconds" in metrics.render()
    metrics.configure("lean", latency_histogram=True)
    assert b"pingmon_check_latency_seconds" not in metrics.render()
    assert metrics.targets.families == LEAN_FAMILIES
    metrics.configure("default", latency_histogram=False)
    assert b"pingmon_check_latency_seconds" not in metrics.render()
    assert b"pingmon_check_attempts_total" in metrics.render()


def test_label_values_are_escaped_and_a_percent_sign_is_kept() -> None:
    exposition = Exposition((INTERVAL,))
    store = ResultStore()
    store.watch(exposition)
    name = 'we"ird\\na%s%%me'
    store.configure([TargetInfo(name, "p%d", "http", 30.0, CREDENTIAL)])
    text = b"".join(exposition.chunks(openmetrics=False)).decode()
    [sample] = [s for f in parse_text(text) for s in f.samples]
    assert sample.labels == {"provider": "p%d", "target": name}
    assert sample.value == 30


def test_a_value_that_is_not_finite_is_written_as_the_formats_spell_it() -> None:
    clock = Clock()
    gate = RateLimitGate(BackoffSettings(), clock=clock)
    metrics = make_metrics(gate)
    metrics.targets.refresh_backoff({CREDENTIAL: float("inf")})
    assert b'pingmon_backoff_seconds{provider="prov",target="alpha"} +Inf\n' in b"".join(
        metrics.targets.chunks(openmetrics=False)
    )


def test_gzip_chunks_is_one_gzip_member_of_the_joined_chunks() -> None:
    chunks = [b"# HELP a b\n", b"a 1.0\n" * 1000, b"", b"# EOF\n"]
    compressed = gzip_chunks(chunks)
    assert gzip.decompress(b"".join(compressed)) == b"".join(chunks)
    assert len(b"".join(compressed)) < len(b"".join(chunks)) / 2


@pytest.mark.parametrize(
    ("accept_encoding", "expected"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("deflate, GZIP;q=0.5", True),
        ("*", True),
        ("x-gzip", True),
        ("", False),
        ("identity", False),
        ("gzip;q=0", False),
        ("gzip;q=0.0, identity", False),
        ("*;q=0", False),
        ("br, *;q=0", False),
        ("gzip;q=zero", False),
    ],
)
def test_accept_encoding_takes_gzip_only_with_a_weight_above_0(
    accept_encoding: str, expected: bool
) -> None:
    assert accepts_gzip(accept_encoding) is expected


def many_targets(count: int) -> Metrics:
    store = ResultStore()
    store.configure([TargetInfo(f"t{i}", "prov", "http", 30.0, CREDENTIAL) for i in range(count)])
    return Metrics(store, dict, profile="lean")


def test_a_family_of_many_large_pieces_comes_in_slices_and_one_of_small_pieces_whole() -> None:
    large = [b"x" * 999 + b"\n"] * (2 * SLICE_BYTES // 1000 + 10)
    small = [b"y\n"] * 1000
    chunks = list(_sliced([b"# L\n", b"# S\n"], [large, small]))
    assert len(chunks) == 4  # the large family in 3 slices, the small one whole
    assert max(len(chunk) for chunk in chunks) <= SLICE_BYTES + len(b"# L\n")
    assert b"".join(chunks) == b"# L\n" + b"".join(large) + b"# S\n" + b"".join(small)
    assert list(_sliced([b"# E\n"], [[]])) == [b"# E\n"]


def test_a_scrape_shows_the_pieces_as_they_were_when_it_began() -> None:
    metrics = many_targets(100)
    last = "t99"
    chunks = metrics.targets.chunks(openmetrics=False)
    first = next(chunks)
    metrics.store.record(result(last, ErrorClass.TIMEOUT))  # after the scrape began
    text = (first + b"".join(chunks)).decode()
    assert f'target="{last}",error_class="timeout"' not in text
    assert f'target="{last}",error_class="timeout"' in metrics.render().decode()


async def test_the_collector_is_paused_while_a_slice_is_made_and_only_then() -> None:
    metrics = many_targets(3)
    render = metrics.render_chunks
    made: list[bool] = []  # the collector's state while each slice was made
    between: list[bool] = []  # ... and while the loop ran other work between slices

    def observed(openmetrics: bool) -> Iterator[bytes]:
        for chunk in render(openmetrics):
            made.append(gc.isenabled())
            yield chunk

    async def watch() -> None:
        while True:
            between.append(gc.isenabled())
            await asyncio.sleep(0)

    metrics.render_chunks = observed  # type: ignore[method-assign]
    assert gc.isenabled()
    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0)
    body = await metrics.exposition(openmetrics=False)
    watcher.cancel()
    assert len(made) > 1
    assert not any(made)
    assert len(between) > 1
    assert all(between)  # overlapping scrapes can never keep it off
    assert gc.isenabled()
    assert b'target="t2"' in b"".join(body)


async def test_the_collector_is_paused_while_the_gzip_form_takes_or_joins_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(exposition, "SLICE_BYTES", 300)  # many runs, many turns of the loop
    metrics = many_targets(30)
    made: list[bool] = []  # the collector's state while the runs were taken or joined
    between: list[bool] = []  # ... and while the loop ran other work meanwhile
    take, join = Exposition.compressed, exposition._Run.join

    def taking(self: Exposition, openmetrics: bool) -> list[exposition._Run]:
        made.append(gc.isenabled())
        return take(self, openmetrics)

    def joining(self: exposition._Run) -> bytes:
        made.append(gc.isenabled())
        return join(self)

    async def watch() -> None:
        while True:
            between.append(gc.isenabled())
            await asyncio.sleep(0)

    monkeypatch.setattr(Exposition, "compressed", taking)
    monkeypatch.setattr(exposition._Run, "join", joining)
    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0)
    body = await metrics.exposition(openmetrics=False, gzip=True)
    watcher.cancel()
    assert len(made) > 2
    assert not any(made)
    assert len(between) > 2
    assert all(between)
    assert gzip.decompress(b"".join(body)) == metrics.render()


def record_all(metrics: Metrics, count: int, duration: float) -> None:
    for i in range(count):
        metrics.store.record(result(f"t{i}", ErrorClass.NONE, duration))


def one_member(body: Sequence[bytes]) -> bytes:
    """The bytes of ``body``, which must be exactly one gzip member."""
    decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
    data = decompressor.decompress(b"".join(body))
    assert decompressor.eof
    assert decompressor.unused_data == b""
    return data


@pytest.mark.parametrize("openmetrics", [False, True])
async def test_the_gzip_form_is_one_member_of_the_plain_form_and_compresses_what_changed(
    monkeypatch: pytest.MonkeyPatch, openmetrics: bool
) -> None:
    monkeypatch.setattr(exposition, "SLICE_BYTES", 2000)  # each family in many runs
    metrics = Metrics(ResultStore(), dict)  # the default profile
    metrics.store.configure(
        [TargetInfo(f"t{i}", "prov", "http", 30.0, CREDENTIAL) for i in range(60)]
    )
    deflated: list[int] = []  # the bytes of runs compressed, by scrape
    compress = exposition.deflate

    def counted(data: bytes, level: int = exposition.GZIP_LEVEL) -> Segment:
        deflated[-1] += len(data)
        return compress(data, level)

    async def scrape() -> bytes:
        metrics.scrapes.forget()
        deflated.append(0)
        body = one_member(await metrics.exposition(openmetrics, gzip=True))
        assert body == metrics.render(openmetrics)
        return body

    monkeypatch.setattr(metrics_module, "deflate", counted)
    for duration in (0.2, 0.2, 0.3):  # the first result, the same again, a new duration
        record_all(metrics, 60, duration)
        await scrape()
    # twice the same result: only the counters' and timestamps' runs again; a new duration
    # adds its gauge and histogram; never the error classes (a third of the bytes)
    plain = len(metrics.render(openmetrics))
    first, same, new = deflated
    assert first > plain * 0.9  # everything but the headers and pingmon's own metrics
    assert same < new < plain * 2 / 3
    assert await scrape()
    assert deflated[-1] == 0  # nothing changed
    metrics.store.record(result("t59", ErrorClass.TIMEOUT))
    body = await scrape()
    assert 0 < deflated[-1] < same  # one target's runs
    assert 'target="t59",error_class="timeout"} 1.0' in body.decode()


async def test_a_gzip_scrape_shows_the_runs_as_they_were_when_it_began(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(exposition, "SLICE_BYTES", 300)
    metrics = many_targets(30)
    record_all(metrics, 30, 0.2)
    before = metrics.render()
    taken = asyncio.Event()
    take = Exposition.compressed

    def taking(self: Exposition, openmetrics: bool) -> list[exposition._Run]:
        taken.set()
        return take(self, openmetrics)

    monkeypatch.setattr(Exposition, "compressed", taking)
    scrape = asyncio.create_task(metrics.exposition(openmetrics=False, gzip=True))
    await taken.wait()  # the runs are taken: what follows is for the next scrape
    record_all(metrics, 30, 0.4)
    metrics.store.record(result("t7", ErrorClass.TIMEOUT))
    assert one_member(await scrape) == before
    metrics.scrapes.forget()
    overlapping = [metrics.exposition(om, gzip=True) for om in (False, True, False)]
    first, openmetrics, again = await asyncio.gather(*overlapping)
    assert one_member(first) == one_member(again) == metrics.render()
    assert one_member(openmetrics) == metrics.render(openmetrics=True)
    assert 'target="t7",error_class="timeout"} 1.0' in one_member(first).decode()
