"""Every metric pingmon exports: its own on a prometheus-client registry, and the per-target
families (``pingmon.families``), kept rendered by ``pingmon.exposition``.

``/metrics`` joins pingmon's own metrics (generic renderer: few series) with the per-target
pieces that each result rendered when it was recorded, so a scrape costs a join (and a gzip
when asked), not a render of every target (DESIGN.md, "Scale"). A generic Collector over the
same family table is on ``registry``: tests read it with ``get_sample_value`` and check the
fast pieces against it.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from typing import cast

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics_exposition
from prometheus_client.registry import Collector

from pingmon import __version__
from pingmon.exposition import Exposition, deflate, deflate_all, gzip_member
from pingmon.families import FAMILIES, LEAN_FAMILIES, Family, TargetView, families, go_float
from pingmon.heap import collection_paused
from pingmon.results import ResultStore
from pingmon.singleflight import SingleFlight

__all__ = ["FAMILIES", "LEAN_FAMILIES", "Family", "Metrics", "TargetCollector", "TargetView"]

# prometheus-client leaves it untyped; its signature, as we use it:
generate_openmetrics = cast(
    Callable[[CollectorRegistry], bytes], openmetrics_exposition.generate_latest
)

# Under sustained scraping, a render is handed to scrapes arriving within this many times
# its cost after it was made (``SingleFlight``).
RENDER_REUSE = 9.0
# ... and never more than this long after: a render that takes seconds (100,000 targets on a
# busy loop) would otherwise be handed to Prometheus's next scrapes, samples frozen for them.
RENDER_REUSE_MAX_SECONDS = 1.0
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
EXHAUSTION_ERRNO_NAMES = ("EMFILE", "ENFILE", "ENOBUFS", "ENOMEM")
ScrapeKey = tuple[bool, bool]  # (OpenMetrics, gzip)


def views(store: ResultStore, backoff: Mapping[str, float]) -> list[TargetView]:
    """A consistent snapshot of every target, with its credential's back-off."""
    return [TargetView(s, backoff.get(s.info.credential, 0.0)) for s in store.snapshot()]


def _target_labels(view: TargetView) -> dict[str, str]:
    return {"provider": view.state.info.provider, "target": view.state.info.name}


class TargetCollector(Collector):
    """The per-target families, built by prometheus-client from a snapshot at scrape time:
    not served (``/metrics`` joins the pre-rendered ``Exposition``), but the reference it
    is checked against, and what tests read with ``get_sample_value``."""

    def __init__(
        self,
        snapshot: Callable[[], list[TargetView]],
        families: Callable[[], tuple[Family, ...]] = lambda: FAMILIES,
    ) -> None:
        self._snapshot = snapshot
        self._families = families

    def collect(self) -> Iterator[Metric]:
        snapshot = self._snapshot()
        for family in self._families():
            metric = Metric(family.base_name, family.help, family.type)
            for view in snapshot:
                labels = _target_labels(view)
                for suffix, extra, value in family.samples(view):
                    metric.add_sample(family.name + suffix, {**labels, **dict(extra)}, value)
            yield metric


class PlainHistogram(Collector):
    """A histogram without labels, shown as prometheus-client's ``Histogram`` shows one (the
    same samples in the same order, so the same bytes in both text formats), observed with
    no lock: a bucket found by bisection, a count and a sum added to.

    For a histogram observed at every run of a check (the scheduler lag): ``Histogram``'s
    ``observe`` takes a lock for the sum, walks the buckets in Python and takes another for
    the bucket. Observed and collected on one thread (the event loop's), as pingmon does.

    ``buckets``: the finite upper bounds, ascending; ``+Inf`` is added. An amount falls in
    the first bucket whose bound is at least it; a NaN in none (it still makes the sum NaN),
    as ``Histogram`` does.
    """

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self.name = name
        self.documentation = documentation
        self._bounds = (*(float(b) for b in buckets), math.inf)
        self._les = tuple(go_float(b) for b in self._bounds)
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0

    def observe(self, amount: float) -> None:
        """Count ``amount`` (seconds) in its bucket and add it to the sum."""
        self._sum += amount
        if amount <= math.inf:  # not a NaN
            self._counts[bisect.bisect_left(self._bounds, amount)] += 1

    def describe(self) -> Iterator[Metric]:
        yield Metric(self.name, self.documentation, "histogram")

    def collect(self) -> Iterator[Metric]:
        metric = Metric(self.name, self.documentation, "histogram")
        cumulative = 0.0  # a float, as ``Histogram``'s values are
        for le, count in zip(self._les, self._counts, strict=True):
            cumulative += count
            metric.add_sample(f"{self.name}_bucket", {"le": le}, cumulative)
        metric.add_sample(f"{self.name}_count", {}, cumulative)
        metric.add_sample(f"{self.name}_sum", {}, self._sum)
        yield metric


class Metrics:
    """pingmon's own metrics on the project's registry, and the per-target exposition."""

    def __init__(
        self,
        store: ResultStore,
        backoff: Callable[[], Mapping[str, float]],
        latency_histogram: bool = True,
        collectors: Iterable[Collector] = (),
        profile: str = "default",
    ) -> None:
        self.store = store
        self._backoff = backoff
        # _created series double the cost of counters and histograms and no rule uses them.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.own = CollectorRegistry(auto_describe=True)
        self.build_info = Gauge(
            "pingmon_build_info", "pingmon's version; always 1.", ["version"], registry=self.own
        )
        self.build_info.labels(version=__version__).set(1)
        self.shard_info = Gauge(
            "pingmon_shard_info",
            "Which shard of how many this process checks the targets of; always 1.",
            ["shard", "shards"],
            registry=self.own,
        )
        self.sharded(0, 1)
        self.reload_successful = Gauge(
            "pingmon_config_last_reload_successful",
            "1 if the last configuration load succeeded, else 0.",
            registry=self.own,
        )
        self.reload_success_time = Gauge(
            "pingmon_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully (Unix time).",
            registry=self.own,
        )
        self.internal_errors = Counter(
            "pingmon_internal_errors",
            "Checks ended by an unexpected exception in pingmon; each is its target's "
            "bad_response, with its traceback in the log.",
            registry=self.own,
        )
        self.resource_exhaustion = Counter(
            "pingmon_resource_exhaustion",
            "Checks not made because pingmon itself ran out of a resource, by errno (EMFILE, "
            "ENFILE: file descriptors; ENOBUFS, ENOMEM: kernel memory); never a target's "
            "failure.",
            ["errno"],
            registry=self.own,
        )
        for name in EXHAUSTION_ERRNO_NAMES:
            self.resource_exhaustion.labels(errno=name)
        self.scheduler_lag = PlainHistogram(
            "pingmon_scheduler_lag_seconds",
            "How late checks started against their schedule.",
            LAG_BUCKETS,
        )
        self.own.register(self.scheduler_lag)
        for collector in collectors:
            self.own.register(collector)
        self.targets = Exposition(families(profile, latency_histogram))
        store.watch(self.targets)
        self.registry = CollectorRegistry()
        self.registry.register(self.own)
        self.registry.register(TargetCollector(self.snapshot, lambda: self.targets.families))
        # Scrapes that arrive while one is rendered wait for it and get the same bytes, and so
        # do those right after it: a flood of scrapes keeps rendering to a tenth of the loop.
        self.scrapes: SingleFlight[ScrapeKey, tuple[bytes, ...]] = SingleFlight(
            self._render_yielding, reuse=RENDER_REUSE, max_reuse_seconds=RENDER_REUSE_MAX_SECONDS
        )

    def configure(self, profile: str, latency_histogram: bool) -> None:
        """Adopt a metrics profile (``default`` or ``lean``) and the histogram switch."""
        self.targets.set_families(families(profile, latency_histogram))

    def snapshot(self) -> list[TargetView]:
        return views(self.store, self._backoff())

    def sharded(self, shard: int, shards: int) -> None:
        """Say which shard this process is: one ``pingmon_shard_info`` series at a time."""
        self.shard_info.clear()
        self.shard_info.labels(shard=str(shard), shards=str(shards)).set(1)

    def config_loaded(self, success: bool, at: float | None = None) -> None:
        self.scrapes.forget()  # a scrape right after a reload shows it
        self.reload_successful.set(1 if success else 0)
        if success:
            self.reload_success_time.set(time.time() if at is None else at)

    def render_chunks(self, openmetrics: bool) -> Iterator[bytes]:
        """The whole exposition now, in chunks: pingmon's own metrics, each per-target
        family, and OpenMetrics' closing ``# EOF``; the targets taken with pingmon's own
        metrics, in the first chunk's turn (as the gzip form takes them), not a turn later."""
        self.targets.refresh_backoff(self._backoff())
        if openmetrics:
            own = generate_openmetrics(self.own).removesuffix(b"# EOF\n")
        else:
            own = generate_latest(self.own)
        targets = self.targets.chunks(openmetrics)
        yield own
        yield from targets
        if openmetrics:
            yield b"# EOF\n"

    async def exposition(self, openmetrics: bool, gzip: bool = False) -> tuple[bytes, ...]:
        """The whole exposition of the current state, in chunks (gzip-compressed if asked),
        made once for every scrape that asks for the same meanwhile (``scrapes``)."""
        return await self.scrapes((openmetrics, gzip))

    async def _render_yielding(self, key: ScrapeKey) -> tuple[bytes, ...]:
        """Joined a slice of a family at a time (``Exposition.chunks``), yielding to the
        event loop between slices so that checks go on; the gzip form compresses the plain
        one (shared with plain scrapes meanwhile) in a worker thread, since the compressor
        lets go of the GIL.

        The pieces are taken copy-on-write (``exposition._Take``: no reference per piece);
        the collector is paused while each slice is made (its list of pieces lives only in
        that turn), never across a turn of the loop, so scrapes that follow one another,
        however closely, never keep it off."""
        openmetrics, gzip = key
        if gzip:
            return await self._compress_yielding(openmetrics)
        chunks: list[bytes] = []
        slices = self.render_chunks(openmetrics)
        try:
            while True:
                with collection_paused():
                    chunk = next(slices, None)
                if chunk is None:
                    return tuple(chunks)
                chunks.append(chunk)
                await asyncio.sleep(0)
        finally:  # cancelled: the take ends now, not when the traceback that holds it goes
            if isinstance(slices, Generator):
                slices.close()

    async def _compress_yielding(self, openmetrics: bool) -> tuple[bytes, ...]:
        """The gzip form: one gzip member of the same bytes as the plain form, made of the
        per-target runs kept compressed (``Exposition.compressed``, taken at once) with
        pingmon's own metrics and OpenMetrics' ``# EOF`` compressed afresh.

        Each run that changed is joined in a turn of the loop (as the pieces were at the
        take; the collector paused meanwhile, as for the plain form), then compressed in a
        worker thread and kept for the next scrape, before the next run is joined: so a
        run's bytes (about a MiB) are freed before the next is made, and the allocator hands
        the same memory out again. Joined all at once, they were fresh memory every scrape
        (the kernel's page faults: half of the joins' CPU)."""
        self.targets.refresh_backoff(self._backoff())
        with collection_paused():
            own = generate_openmetrics(self.own) if openmetrics else generate_latest(self.own)
            runs = self.targets.compressed(openmetrics)
        todo = [run for run in runs if run.segment is None]  # taken by this scrape
        try:
            end = b"# EOF\n" if openmetrics else b""
            head, tail = await asyncio.to_thread(deflate_all, [own.removesuffix(end), end])
            for run in todo:
                with collection_paused():
                    joined = run.join()
                run.made(await asyncio.to_thread(deflate, joined))
                del joined
        finally:  # an error or a cancel: the runs not joined keep no piece for it
            for run in todo:
                run.drop()
        return gzip_member([head, *(run.done() for run in runs), tail])

    def render(self, openmetrics: bool = False) -> bytes:
        """The whole exposition now, at once (uncompressed)."""
        return b"".join(self.render_chunks(openmetrics))
