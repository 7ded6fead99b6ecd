"""Every metric pingmon exports: names, help texts, and two renderers over one family table.

The per-target families are built from a snapshot of the result store. A custom
Collector serves them through prometheus-client (tests read them with
``get_sample_value``); ``/metrics`` uses ``render_target_chunks``, a direct text writer over
the same table, because the generic renderer costs ~7 us a series (DESIGN.md, "Scale").
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import cast

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics_exposition
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from pingmon import __version__
from pingmon.errors import ErrorClass
from pingmon.results import LATENCY_BUCKETS, ResultStore, TargetState
from pingmon.singleflight import SingleFlight

# prometheus-client leaves these two untyped; their signatures, as we use them:
go_float = cast(Callable[[float], str], floatToGoString)
generate_openmetrics = cast(
    Callable[[CollectorRegistry], bytes], openmetrics_exposition.generate_latest
)

CHUNK_LINES = 4096  # ~3 ms of rendering between two turns of the event loop
# Under sustained scraping, a render is handed to scrapes arriving within this many times
# its cost after it was made (``SingleFlight``).
RENDER_REUSE = 9.0
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
ERROR_CLASSES = tuple(ErrorClass)
EXHAUSTION_ERRNO_NAMES = ("EMFILE", "ENFILE", "ENOBUFS", "ENOMEM")

Labels = tuple[tuple[str, str], ...]
Sample = tuple[str, Labels, float]  # (name suffix, extra labels, value)


@dataclass(frozen=True, slots=True)
class TargetView:
    """One target's state plus its credential's back-off, as one scrape sees it."""

    state: TargetState
    backoff_seconds: float


@dataclass(frozen=True, slots=True)
class Family:
    """A per-target metric family: its exposition name, type, help and samples."""

    name: str
    type: str  # "gauge" | "counter" | "histogram"
    help: str
    samples: Callable[[TargetView], Iterable[Sample]]

    @property
    def base_name(self) -> str:
        """The family name as metadata carries it (OpenMetrics drops a counter's _total)."""
        return self.name.removesuffix("_total") if self.type == "counter" else self.name


def _last(field: str) -> Callable[[TargetView], Iterable[Sample]]:
    """A gauge of a field of the last result; absent until the first check."""

    def samples(view: TargetView) -> Iterable[Sample]:
        last = view.state.last
        return [] if last is None else [("", (), float(getattr(last, field) or 0))]

    return samples


def _error_class(view: TargetView) -> Iterable[Sample]:
    last = view.state.last
    if last is None:
        return []
    return [("", (("error_class", c.value),), float(c is last.error_class)) for c in ERROR_CLASSES]


def _last_success(view: TargetView) -> Iterable[Sample]:
    at = view.state.last_success_at
    return [] if at is None else [("", (), at)]


def _success(view: TargetView) -> Iterable[Sample]:
    last = view.state.last
    return [] if last is None else [("", (), 1.0 if last.success else 0.0)]


def _checks_total(view: TargetView) -> Iterable[Sample]:
    return [("", (("error_class", c.value),), float(n)) for c, n in view.state.checks_by_class]


_LE_LABELS: tuple[Labels, ...] = tuple((("le", go_float(b)),) for b in LATENCY_BUCKETS)


def _latency(view: TargetView) -> Iterator[Sample]:
    cumulative = 0
    for le, count in zip(_LE_LABELS, view.state.latency_counts, strict=False):
        cumulative += count
        yield ("_bucket", le, float(cumulative))
    total = sum(view.state.latency_counts)
    yield ("_bucket", (("le", "+Inf"),), float(total))
    yield ("_count", (), float(total))
    yield ("_sum", (), view.state.latency_sum)


def _one(value: Callable[[TargetView], float]) -> Callable[[TargetView], Iterable[Sample]]:
    return lambda view: [("", (), value(view))]


LATENCY = Family(
    "pingmon_check_latency_seconds", "histogram", "Duration of every check.", _latency
)

FAMILIES: tuple[Family, ...] = (
    Family("pingmon_check_success", "gauge",
           "1 if the last check succeeded, else 0.", _success),
    Family("pingmon_check_duration_seconds", "gauge",
           "Duration of the last check, all attempts included.", _last("duration_seconds")),
    Family("pingmon_check_error_class", "gauge",
           "1 for the last check's error class, 0 for every other class.", _error_class),
    Family("pingmon_check_http_status", "gauge",
           "HTTP status of the last check, 0 when none came.", _last("http_status")),
    Family("pingmon_check_interval_seconds", "gauge",
           "The configured interval between checks.", _one(lambda v: v.state.info.interval)),
    Family("pingmon_check_last_run_timestamp_seconds", "gauge",
           "When the last check finished (Unix time).", _last("finished_at")),
    Family("pingmon_check_last_success_timestamp_seconds", "gauge",
           "When a check last succeeded (Unix time).", _last_success),
    Family("pingmon_check_consecutive_failures", "gauge",
           "Failed checks in a row, 0 after a success.",
           _one(lambda v: float(v.state.consecutive_failures))),
    Family("pingmon_checks_total", "counter",
           "Checks by error class (none = success).", _checks_total),
    Family("pingmon_check_attempts_total", "counter",
           "Requests sent, retries included.", _one(lambda v: float(v.state.attempts_total))),
    LATENCY,
    Family("pingmon_rate_limited_total", "counter",
           "Checks answered with 429.", _one(lambda v: float(v.state.rate_limited_total))),
    Family("pingmon_backoff_seconds", "gauge",
           "Back-off delay in force for the target's credential, 0 when none.",
           _one(lambda v: v.backoff_seconds)),
)  # fmt: skip


def views(store: ResultStore, backoff: Mapping[str, float]) -> list[TargetView]:
    """A consistent snapshot of every target, with its credential's back-off."""
    return [TargetView(s, backoff.get(s.info.credential, 0.0)) for s in store.snapshot()]


def families(latency_histogram: bool) -> tuple[Family, ...]:
    return FAMILIES if latency_histogram else tuple(f for f in FAMILIES if f is not LATENCY)


def _target_labels(view: TargetView) -> dict[str, str]:
    return {"provider": view.state.info.provider, "target": view.state.info.name}


class TargetCollector(Collector):
    """The per-target families, built by prometheus-client from a snapshot at scrape time."""

    def __init__(
        self,
        snapshot: Callable[[], list[TargetView]],
        latency_histogram: Callable[[], bool] = lambda: True,
    ) -> None:
        self._snapshot = snapshot
        self._latency_histogram = latency_histogram

    def collect(self) -> Iterator[Metric]:
        snapshot = self._snapshot()
        for family in families(self._latency_histogram()):
            metric = Metric(family.base_name, family.help, family.type)
            for view in snapshot:
                labels = _target_labels(view)
                for suffix, extra, value in family.samples(view):
                    name = family.name + suffix
                    metric.add_sample(name, {**labels, **dict(extra)}, value)
            yield metric


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def format_value(value: float) -> str:
    """A sample value as the text formats take it; ``repr`` is exact and fast."""
    if math.isfinite(value):
        return repr(value)
    return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")


def render_target_chunks(
    snapshot: list[TargetView],
    latency_histogram: bool,
    openmetrics: bool,
    lines_per_chunk: int = CHUNK_LINES,
) -> Iterator[bytes]:
    """The per-target families in the Prometheus text format (or OpenMetrics), in chunks,
    so a server can yield to the event loop between them while checks go on."""
    prefixes = [
        f'provider="{_escape(v.state.info.provider)}",target="{_escape(v.state.info.name)}"'
        for v in snapshot
    ]
    extra_cache: dict[Labels, str] = {}
    lines: list[str] = []
    for family in families(latency_histogram):
        meta = family.base_name if openmetrics else family.name
        lines.append(f"# HELP {meta} {family.help}\n# TYPE {meta} {family.type}\n")
        for view, prefix in zip(snapshot, prefixes, strict=True):
            for suffix, extra, value in family.samples(view):
                rendered = extra_cache.get(extra)
                if rendered is None:
                    rendered = "".join(f',{k}="{_escape(v)}"' for k, v in extra)
                    extra_cache[extra] = rendered
                lines.append(
                    f"{family.name}{suffix}{{{prefix}{rendered}}} {format_value(value)}\n"
                )
            if len(lines) >= lines_per_chunk:
                yield "".join(lines).encode()
                lines.clear()
    if lines:
        yield "".join(lines).encode()


class Metrics:
    """pingmon's own metrics, plus the target collector, on the project's registry."""

    def __init__(
        self,
        store: ResultStore,
        backoff: Callable[[], Mapping[str, float]],
        latency_histogram: bool = True,
        collectors: Iterable[Collector] = (),
    ) -> None:
        self.store = store
        self._backoff = backoff
        self.latency_histogram = latency_histogram
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
        self.scheduler_lag = Histogram(
            "pingmon_scheduler_lag_seconds",
            "How late checks started against their schedule.",
            buckets=LAG_BUCKETS,
            registry=self.own,
        )
        for collector in collectors:
            self.own.register(collector)
        self.registry = CollectorRegistry()
        self.registry.register(self.own)
        self.registry.register(TargetCollector(self.snapshot, lambda: self.latency_histogram))
        # Scrapes that arrive while one is rendered wait for it and get the same bytes, and so
        # do those right after it: a flood of scrapes keeps rendering to a tenth of the loop.
        self.scrapes: SingleFlight[bool, tuple[bytes, ...]] = SingleFlight(
            self._render_yielding, reuse=RENDER_REUSE
        )

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

    def render_chunks(self, snapshot: list[TargetView], openmetrics: bool) -> Iterator[bytes]:
        """The whole exposition for a snapshot, in chunks: pingmon's own metrics, the
        per-target families, and OpenMetrics' closing ``# EOF``."""
        if openmetrics:
            yield generate_openmetrics(self.own).removesuffix(b"# EOF\n")
        else:
            yield generate_latest(self.own)
        yield from render_target_chunks(snapshot, self.latency_histogram, openmetrics)
        if openmetrics:
            yield b"# EOF\n"

    async def exposition(self, openmetrics: bool) -> tuple[bytes, ...]:
        """The whole exposition of the current state, in chunks, rendered once for every
        scrape that asks meanwhile (``scrapes``)."""
        return await self.scrapes(openmetrics)

    async def _render_yielding(self, openmetrics: bool) -> tuple[bytes, ...]:
        """Rendered a chunk at a time, yielding to the event loop between chunks so that
        checks go on (a worker thread would not help: the rendering holds the GIL)."""
        chunks = []
        for chunk in self.render_chunks(self.snapshot(), openmetrics):
            chunks.append(chunk)
            await asyncio.sleep(0)
        return tuple(chunks)

    def render(self, snapshot: list[TargetView], openmetrics: bool) -> bytes:
        """The whole exposition for a snapshot, at once."""
        return b"".join(self.render_chunks(snapshot, openmetrics))
