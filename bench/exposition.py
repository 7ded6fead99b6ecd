"""What the benchmarks read from pingmon's /metrics: check counts, the lag histogram, series.

Works on the text format and on OpenMetrics (``# EOF``, the same sample lines). Values are
summed over every label set of a family, since the benchmarks want totals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CHECKS = re.compile(r'^pingmon_checks_total\{[^}]*error_class="([a-z_]+)"[^}]*\} (\S+)', re.M)
_LAG = re.compile(r'^pingmon_scheduler_lag_seconds_bucket\{le="([^"]+)"\} (\S+)', re.M)

# What Prometheus 2.x sends when it scrapes (scrape.go, scrapeAcceptHeader).
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


@dataclass(frozen=True)
class Reading:
    """One scrape's totals: checks by error class, lag buckets (le -> cumulative count)."""

    checks_by_class: dict[str, float]
    lag_buckets: dict[float, float]
    series: int
    target_series: int

    @property
    def checks(self) -> float:
        return sum(self.checks_by_class.values())

    @property
    def failures(self) -> float:
        return sum(n for error_class, n in self.checks_by_class.items() if error_class != "none")


def read(text: str) -> Reading:
    """Totals of one exposition; ``series``: sample lines, ``target_series``: those with a
    ``target`` label."""
    checks: dict[str, float] = {}
    for error_class, value in _CHECKS.findall(text):
        checks[error_class] = checks.get(error_class, 0.0) + float(value)
    lag = {float(le): float(value) for le, value in _LAG.findall(text)}
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    return Reading(checks, lag, len(samples), sum('target="' in line for line in samples))


def lag_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float | None:
    """``histogram_quantile(q, ...)`` over the bucket deltas (linear within a bucket); None
    when nothing was observed. Above the largest finite bound it answers that bound."""
    deltas = [(le, after.get(le, 0.0) - before.get(le, 0.0)) for le in sorted(after)]
    total = deltas[-1][1] if deltas else 0.0
    if total <= 0:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for le, cumulative in deltas:
        if cumulative >= rank:
            if le == float("inf"):
                return lower
            share = (rank - below) / (cumulative - below) if cumulative > below else 1.0
            return lower + (le - lower) * share
        lower, below = le, cumulative
    return None


def share_above(before: dict[float, float], after: dict[float, float], bound: float) -> float:
    """Share of the window's observations above ``bound`` (a bucket bound), 0..1."""
    total = after.get(float("inf"), 0.0) - before.get(float("inf"), 0.0)
    within = after.get(bound, 0.0) - before.get(bound, 0.0)
    return (total - within) / total if total else 0.0
