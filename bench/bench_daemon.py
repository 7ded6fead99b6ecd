"""Scale runs of ``pingmon run``: 1,000 / 10,000 / 100,000 targets, scraped as Prometheus does.

    python bench/bench_daemon.py                          # the three scales, 60 s windows
    python bench/bench_daemon.py --targets 10000 --duration 30
    python bench/bench_daemon.py --pingmon /work/main/.venv/bin/pingmon --targets 10000
    python bench/bench_daemon.py --quick                  # 1,000 targets / 1 s, about 25 s

For each scale in turn, a fresh ``pingmon run`` (a child process; ``--pingmon`` picks the build)
checks N ``http`` targets on a local server (nginx when installed, its access log off and
keep-alive on; else an aiohttp server in its own process), all on 127.0.0.1. Default intervals:
1,000 at 1 s, 10,000 at 10 s, 100,000 at 60 s (with ``metrics: {profile: lean}`` when the build
accepts it, see ``--profile``). From ``/-/ready`` on, this process scrapes ``/metrics`` every
``--scrape-interval`` seconds (15) with Prometheus' ``Accept`` header and ``Accept-Encoding:
gzip``. The window runs from the end of the first scrape after ``--warmup`` (default: the
interval + 2 s, so that every target has run) to the end of the scrape ``--duration`` seconds of
scrapes later, and gives:

- checks/s, failures, scheduler lag p50/p99 and the share above 50 ms: deltas of
  ``pingmon_checks_total`` and ``pingmon_scheduler_lag_seconds`` between those two scrapes
  (p99 interpolated within the histogram's buckets, as ``histogram_quantile`` does); the
  rate over the time between the two scrapes' sending, when the daemon takes its counts;
- daemon CPU per check: the daemon's CPU (all threads) between the same two moments, the
  scrapes in it included, and without them;
- per scrape: what it cost the daemon (``net``): its CPU while it was served
  (/proc/PID/task/*/schedstat, ns: the event loop's thread and the worker threads apart)
  less what the checks answered meanwhile cost at the rate they cost between scrapes (CPU
  per check, nginx's ``stub_status`` counting the checks; without nginx, CPU per second
  times the scrape's wall time), and its minor page faults counted the same way; the
  median and the range over the window's scrapes; wall time, bytes on the wire and
  uncompressed, series and series per target (sample lines with a ``target`` label);
- RSS at the window's end and peak (VmHWM), and start time: exec to ``/-/ready`` 200.

SIGINT ends the run (every child is stopped by its PID).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import itertools
import json
import os
import shutil
import statistics
import string
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import exposition
import processes
from processes import (
    cpu_seconds,
    cpu_seconds_precise,
    minor_faults,
    peak_rss_mb,
    rss_mb,
    thread_cpu,
)

from pingmon.fields import parse_duration

DEFAULT_INTERVALS = {1000: 1.0, 10000: 10.0, 100000: 60.0}
LEAN_FROM = 100000  # --profile auto: the lean profile from this many targets on
SCRAPE_TIMEOUT = 120.0  # Prometheus gives up after 10 s; here a slow scrape is a figure


# --- configuration ----------------------------------------------------------------------------


def write_config(
    targets: int, interval: float, profile: str | None, url: str, args: argparse.Namespace,
    path: Path,
) -> None:  # fmt: skip
    """N http targets on ``url`` (GET /, status only). Compact JSON (JSON is YAML): 100,000
    targets take 3.3 MB, under pingmon's 4 MiB limit on a configuration file."""
    config: dict[str, Any] = {
        "watch": {"enabled": False},
        "defaults": {"interval": interval, "timeout": min(5.0, interval / 2)},  # seconds
        "providers": {"l": {"type": "http", "base_url": url}},
    }
    if args.concurrency is not None:
        config["concurrency"] = args.concurrency
    if not args.latency_histogram:
        config["latency_histogram"] = False
    if profile is not None:
        config["metrics"] = {"profile": profile}
    text = json.dumps(config, separators=(",", ":"))[:-1]
    names = ",".join(f'{{"name":"t{i:06d}","provider":"l"}}' for i in range(targets))
    path.write_text(f'{text},"targets":[{names}]}}', encoding="utf-8")


async def resolve_profile(
    targets: int, args: argparse.Namespace, url: str, directory: Path
) -> tuple[str | None, str]:
    """The ``metrics.profile`` to write (None: leave it out) and a note for the table."""
    if args.profile == "none":
        return None, "(not set)"
    wanted = args.profile if args.profile != "auto" else "lean" if targets >= LEAN_FROM else None
    if wanted is None:
        return None, "(not set)"
    probe = directory / "profile-probe.yaml"
    write_config(1, 60.0, wanted, url, args, probe)
    if await processes.accepts(args.pingmon, probe):
        return wanted, wanted
    if args.profile == "auto":
        return None, f"(not set: this build refuses metrics.profile {wanted})"
    raise SystemExit(f"bench_daemon: this pingmon refuses metrics: {{profile: {wanted}}}")


# --- scrapes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """The daemon at one moment: CPU seconds of its event loop's thread and of its other
    threads, minor page faults, and the checks answered so far (nginx's count; None without
    nginx)."""

    loop: float
    threads: float
    faults: int
    checks: int | None

    def __sub__(self, before: Usage) -> Usage:
        checks = (
            None if self.checks is None or before.checks is None else self.checks - before.checks
        )
        return Usage(self.loop - before.loop, self.threads - before.threads,
                     self.faults - before.faults, checks)  # fmt: skip


async def usage(pid: int, http: aiohttp.ClientSession, nginx: str | None) -> Usage:
    checks = None if nginx is None else await processes.nginx_requests(http, nginx)
    loop, threads = thread_cpu(pid)
    return Usage(loop, threads, minor_faults(pid), checks)


@dataclass
class Scrape:
    """One /metrics fetch as a Prometheus would make it, and what the daemon spent on it."""

    started: float  # monotonic
    ended: float
    cpu_gross: float  # daemon seconds on the CPU meanwhile (all its work, checks included)
    cpu_at_end: float  # daemon utime + stime when it ended (for the window)
    cpu_at_start: float  # daemon utime + stime when it was sent (for the rate's window)
    wire_bytes: int
    body_bytes: int
    encoding: str
    reading: exposition.Reading
    before: Usage | None = None  # the daemon right before the request was sent
    after: Usage | None = None  # ... and once the whole body was read

    @property
    def wall(self) -> float:
        return self.ended - self.started


async def scrape(
    http: aiohttp.ClientSession, url: str, pid: int, nginx: str | None = None
) -> Scrape:
    headers = {"Accept": exposition.PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"}
    before = await usage(pid, http, nginx)
    cpu, started = cpu_seconds_precise(pid), time.monotonic()
    async with http.get(url + "/metrics", headers=headers) as response:
        response.raise_for_status()
        wire = await response.read()
        encoding = response.headers.get("Content-Encoding", "identity")
    ended, cpu_gross = time.monotonic(), cpu_seconds_precise(pid) - cpu
    after = await usage(pid, http, nginx)
    body = gzip.decompress(wire) if encoding == "gzip" else wire
    reading = exposition.read(body.decode())
    cpu_end = cpu_seconds(pid)
    return Scrape(started, ended, cpu_gross, cpu_end, cpu, len(wire), len(body), encoding,
                  reading, before, after)  # fmt: skip


async def scrape_on_schedule(
    http: aiohttp.ClientSession, url: str, pid: int, args: argparse.Namespace, warmup: float,
    nginx: str | None = None,
) -> list[Scrape]:  # fmt: skip
    """Every ``--scrape-interval`` from now (a tick missed while a scrape ran is skipped, as
    Prometheus does); returns the window's scrapes: the first at or after ``warmup`` and
    those ``--duration`` seconds of ticks after it."""
    every, origin = args.scrape_interval, time.monotonic()
    in_window = max(1, round(args.duration / every))
    window: list[Scrape] = []
    tick = 0
    while len(window) <= in_window:
        await asyncio.sleep(max(0.0, origin + tick * every - time.monotonic()))
        try:
            done = await scrape(http, url, pid, nginx)
        except (aiohttp.ClientError, TimeoutError) as error:  # skipped, as Prometheus would
            print(f"scrape failed: {error!r}", file=sys.stderr, flush=True)
        else:
            print(f"scrape: {done.wall:.2f} s, {done.wire_bytes:,} bytes ({done.encoding}), "
                  f"{done.reading.checks:,.0f} checks", file=sys.stderr, flush=True)  # fmt: skip
            if window or done.started - origin >= warmup:
                window.append(done)
        tick = int((time.monotonic() - origin) // every) + 1
    return window


# --- one scale --------------------------------------------------------------------------------


def interval_for(targets: int, args: argparse.Namespace) -> float:
    """--interval, else the scale's default (targets / 1,000 s, at least 1 s, for others)."""
    return float(args.interval or DEFAULT_INTERVALS.get(targets, max(1.0, targets / 1000)))


async def run_scale(
    targets: int, args: argparse.Namespace, url: str, directory: Path
) -> dict[str, Any]:
    interval = interval_for(targets, args)
    profile, profile_note = await resolve_profile(targets, args, url, directory)
    config = directory / f"pingmon-{targets}.yaml"
    write_config(targets, interval, profile, url, args, config)
    warmup = interval + 2.0 if args.warmup is None else args.warmup
    print(f"{targets} targets / {interval:g} s ...", file=sys.stderr, flush=True)
    daemon, base, start_seconds = await processes.start_pingmon(
        args.pingmon, config, directory, timeout=120 + targets / 500
    )
    scrapes: list[Scrape] = []
    unscraped: dict[str, Any] = {}
    try:
        timeout = aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as http:
            if args.scrape_interval:
                nginx = url if args.nginx else None  # stub_status counts the checks
                scrapes = await scrape_on_schedule(http, base, daemon.pid, args, warmup, nginx)
            else:
                unscraped = await window_without_scrapes(http, url, daemon.pid, args, warmup)
        rss, peak = rss_mb(daemon.pid), peak_rss_mb(daemon.pid)
    finally:
        await daemon.stop()
    log_lines = len(daemon.stderr.read_bytes().splitlines())
    if args.scrape_interval:
        found = figures(targets, interval, scrapes, rss, peak, start_seconds)
    else:
        found = {**unscraped, "targets": targets, "interval_seconds": interval,
                 "expected_checks_per_second": round(targets / interval, 1),
                 "rss_mb": round(rss, 1), "peak_rss_mb": round(peak, 1),
                 "start_seconds_to_ready": round(start_seconds, 2)}  # fmt: skip
    return {**found, "metrics_profile": profile_note, "daemon_log_lines": log_lines}


async def window_without_scrapes(
    http: aiohttp.ClientSession, url: str, pid: int, args: argparse.Namespace, warmup: float
) -> dict[str, Any]:
    """``--scrape-interval 0``: no /metrics at all; checks are the requests nginx answered
    (``stub_status``) in the window, so there is no lag nor failure figure."""
    await asyncio.sleep(warmup)
    n0, cpu0, t0 = await processes.nginx_requests(http, url), cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(args.duration)
    n1, cpu1, t1 = await processes.nginx_requests(http, url), cpu_seconds(pid), time.monotonic()
    seconds, cpu, checks = t1 - t0, cpu1 - cpu0, n1 - n0
    return {
        "window_seconds": round(seconds, 1),
        "checks_per_second": round(checks / seconds, 1),
        "cpu_us_per_check": per_check(cpu, checks),
        "cpu_us_per_check_without_scrapes": per_check(cpu, checks),
        "cpu_percent": round(cpu / seconds * 100, 1),
        "scrapes": 0,
    }


def figures(
    targets: int, interval: float, scrapes: list[Scrape], rss: float, peak: float,
    start_seconds: float,
) -> dict[str, Any]:  # fmt: skip
    """Every figure of one scale, from the window's scrapes (the first opens it).

    A scrape's counts are taken when the daemon reads the request (its first turn), not when
    the body has been read: so checks/s and CPU per check run from one scrape's sending to
    the last's (at 100,000 targets a scrape takes 5-8 s, and windows between their ends
    were off by up to a tenth). The scrapes' own cost runs from end to end."""
    first, last, served = scrapes[0], scrapes[-1], scrapes[1:]
    seconds, cpu = last.ended - first.ended, last.cpu_at_end - first.cpu_at_end
    counted = last.started - first.started
    counted_cpu = last.cpu_at_start - first.cpu_at_start
    a, b = first.reading, last.reading
    checks = b.checks - a.checks
    gross, wall = sum(s.cpu_gross for s in served), sum(s.wall for s in served)
    # The baseline needs time outside scrapes: with less than a quarter of the window, the
    # daemon is scraping all the time and a net figure would be noise (None).
    baseline = (cpu - gross) / (seconds - wall) if seconds > 4 / 3 * wall else None
    net = [s.cpu_gross - baseline * s.wall for s in served] if baseline is not None else []
    # The scrapes that fall in the counted window: all but the last one.
    counted_net = (
        [s.cpu_gross - baseline * s.wall for s in scrapes[:-1]] if baseline is not None else []
    )
    p50 = exposition.lag_quantile(a.lag_buckets, b.lag_buckets, 0.5)
    p99 = exposition.lag_quantile(a.lag_buckets, b.lag_buckets, 0.99)
    return {
        "targets": targets,
        "interval_seconds": interval,
        "window_seconds": round(seconds, 1),
        "checks_per_second": round(checks / counted, 1),
        "expected_checks_per_second": round(targets / interval, 1),
        "failures": round(b.failures - a.failures),
        "cpu_us_per_check": per_check(counted_cpu, checks),
        "cpu_us_per_check_without_scrapes": (
            per_check(counted_cpu - sum(counted_net), checks) if net else None
        ),
        "cpu_percent": round(counted_cpu / counted * 100, 1),
        "lag_p50_ms": ms(p50),
        "lag_p99_ms": ms(p99),
        "lag_share_over_50ms_percent": round(
            exposition.share_above(a.lag_buckets, b.lag_buckets, 0.05) * 100, 2
        ),
        "scrapes": len(served),
        "scrape_cpu_ms_net_median": ms(statistics.median(net)) if net else None,
        "scrape_cpu_ms_gross_median": ms(statistics.median(s.cpu_gross for s in served)),
        "scrape_wall_ms_median": ms(statistics.median(s.wall for s in served)),
        "scrape_wire_bytes": last.wire_bytes,
        "scrape_body_bytes": last.body_bytes,
        "scrape_encoding": last.encoding,
        "series": last.reading.series,
        "series_per_target": round(last.reading.target_series / targets, 1),
        "rss_mb": round(rss, 1),
        "peak_rss_mb": round(peak, 1),
        "start_seconds_to_ready": round(start_seconds, 2),
        "scrape_net_by": "CPU per second",
    } | scrape_costs(scrapes)


def scrape_costs(scrapes: list[Scrape]) -> dict[str, Any]:
    """What each scrape after the first cost the daemon: its ``Usage`` while served, less
    the checks answered meanwhile at what they cost between the scrapes (the gaps from one
    scrape's end to the next one's sending: no scrape under way), per check when nginx
    counted them, else per second of wall time. Empty without the readings (or gaps)."""
    read = [(s, s.before, s.after) for s in scrapes if s.before and s.after]
    if len(scrapes) < 2 or len(read) < len(scrapes):
        return {}
    gaps = [(b0 - a1, b.started - a.ended) for (a, _, a1), (b, b0, _) in itertools.pairwise(read)]
    during = [(s1 - s0, s.wall) for s, s0, s1 in read[1:]]
    by_checks = all(gap.checks is not None for gap, _ in gaps + during)
    gap_units: float
    if by_checks:
        gap_units = sum(gap.checks or 0 for gap, _ in gaps)
        units = [float(use.checks or 0) for use, _ in during]
    else:
        gap_units = sum(seconds for _, seconds in gaps)
        units = [seconds for _, seconds in during]
    if gap_units <= 0:
        return {}
    rate = {  # the checks' cost per unit (a check, or a second) between scrapes
        "loop": sum(gap.loop for gap, _ in gaps) / gap_units,
        "threads": sum(gap.threads for gap, _ in gaps) / gap_units,
        "faults": sum(gap.faults for gap, _ in gaps) / gap_units,
    }
    loop = [use.loop - rate["loop"] * n for (use, _), n in zip(during, units, strict=True)]
    threads = [
        use.threads - rate["threads"] * n for (use, _), n in zip(during, units, strict=True)
    ]
    faults = [use.faults - rate["faults"] * n for (use, _), n in zip(during, units, strict=True)]
    net = [a + b for a, b in zip(loop, threads, strict=True)]
    return {
        "scrape_cpu_ms_net_median": ms(statistics.median(net)),
        "scrape_cpu_ms_net_min": ms(min(net)),
        "scrape_cpu_ms_net_max": ms(max(net)),
        "scrape_cpu_ms_loop_median": ms(statistics.median(loop)),
        "scrape_cpu_ms_threads_median": ms(statistics.median(threads)),
        "scrape_faults_median": round(statistics.median(faults)),
        "scrape_net_by": "CPU per check" if by_checks else "CPU per second",
    }


def per_check(cpu: float, checks: float) -> float | None:
    return round(cpu / checks * 1e6, 1) if checks > 0 else None


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1e3, 1)


# --- the table --------------------------------------------------------------------------------

NET_GROSS = (
    "{scrape_cpu_ms_net_median} ({scrape_cpu_ms_net_min}-{scrape_cpu_ms_net_max}); "
    "{scrape_cpu_ms_gross_median}"
)
BYTES = "{scrape_wire_bytes:,} ({scrape_encoding}); {scrape_body_bytes:,}"
ROWS = (
    ("checks/s (expected)", "{checks_per_second:,} ({expected_checks_per_second:,})"),
    ("failures", "{failures:,}"),
    ("daemon CPU µs per check, scrapes included", "{cpu_us_per_check:,}"),
    ("daemon CPU µs per check, without scrapes", "{cpu_us_per_check_without_scrapes:,}"),
    ("daemon CPU %", "{cpu_percent}"),
    ("scheduler lag p50 / p99, ms", "{lag_p50_ms} / {lag_p99_ms}"),
    ("checks started > 50 ms late, %", "{lag_share_over_50ms_percent}"),
    ("/metrics daemon CPU per scrape, ms: net median (range); gross", NET_GROSS),
    (
        "/metrics net CPU, ms: event loop's thread; other threads",
        "{scrape_cpu_ms_loop_median}; {scrape_cpu_ms_threads_median}",
    ),
    ("/metrics minor page faults per scrape, net", "{scrape_faults_median}"),
    ("/metrics net: the checks meanwhile counted at", "{scrape_net_by}"),
    ("/metrics wall per scrape, ms", "{scrape_wall_ms_median}"),
    ("/metrics bytes on the wire (encoding); uncompressed", BYTES),
    ("series; per target", "{series:,}; {series_per_target}"),
    ("RSS at the end / peak, MB", "{rss_mb} / {peak_rss_mb}"),
    ("start: exec to /-/ready 200, s", "{start_seconds_to_ready}"),
    ("metrics profile", "{metrics_profile}"),
    ("window s; scrapes in it", "{window_seconds}; {scrapes}"),
    ("daemon log lines", "{daemon_log_lines}"),
)


class DashFormatter(string.Formatter):
    """str.format where a missing or None figure shows as "-"."""

    def get_value(self, key: int | str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        return kwargs.get(str(key))

    def format_field(self, value: Any, format_spec: str) -> str:
        return "-" if value is None else super().format_field(value, format_spec)


def print_table(results: list[dict[str, Any]]) -> None:
    heads = [f"{r['targets']:,} / {r['interval_seconds']:g} s" for r in results]
    print("\n| figure | " + " | ".join(heads) + " |")
    print("| --- |" + " ---: |" * len(results))
    dash = DashFormatter()
    for label, form in ROWS:
        print(f"| {label} | " + " | ".join(dash.format(form, **r) for r in results) + " |")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--targets", default="1000,10000,100000", help="comma-separated scales, run in turn"
    )
    parser.add_argument(
        "--interval", type=parse_duration,
        help="for every scale: 1s, 500ms (default 1,000: 1s, 10,000: 10s, 100,000: 60s)",
    )  # fmt: skip
    parser.add_argument("--duration", type=float, default=60.0, help="window, seconds")
    parser.add_argument("--warmup", type=float, help="seconds before it (interval + 2)")
    parser.add_argument(
        "--scrape-interval", type=float, default=15.0,
        help="seconds; 0: no scrape at all, checks counted by nginx (no lag, no failures)",
    )  # fmt: skip
    parser.add_argument(
        "--profile", choices=("auto", "none", "default", "lean"), default="auto",
        help="metrics.profile to write; auto: lean from 100,000 targets if the build has it",
    )  # fmt: skip
    parser.add_argument("--concurrency", type=int, help="written only when given")
    parser.add_argument("--latency-histogram", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--pingmon", help="the pingmon executable (default: beside this Python)")
    parser.add_argument("--no-nginx", action="store_true", help="the aiohttp target server")
    parser.add_argument("--json", action="store_true", help="print one JSON line per scale too")
    parser.add_argument("--nice", type=int, help="niceness of every process of the run (-10)")
    parser.add_argument("--quick", action="store_true", help="1,000 targets, 10 s window")
    args = parser.parse_args(argv)
    if args.quick:
        args.targets, args.duration, args.scrape_interval = "1000", 10.0, 5.0
    args.scales = [int(n) for n in args.targets.split(",")]
    args.pingmon = args.pingmon or str(Path(sys.executable).with_name("pingmon"))
    return args


async def run_all(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[str]]:
    """Every scale in turn; (results, one line per scale that failed)."""
    results, failed = [], []
    with tempfile.TemporaryDirectory(prefix="pingmon-bench-daemon-") as name:
        directory = Path(name)
        server, url = await processes.start_target(directory, use_nginx=not args.no_nginx)
        args.nginx = server.name == "nginx"
        try:
            for targets in args.scales:
                interval = interval_for(targets, args)
                bound = 300 + targets / 500 + 2 * interval + args.duration + 8 * SCRAPE_TIMEOUT
                try:
                    result = await asyncio.wait_for(
                        run_scale(targets, args, url, directory), bound
                    )
                except (RuntimeError, TimeoutError, OSError, aiohttp.ClientError) as error:
                    failed.append(f"{targets:,} / {interval:g} s: failed: {error!r}")
                    print(failed[-1], file=sys.stderr, flush=True)
                    continue
                result["target_server"] = server.name
                results.append(result)
                if args.json:
                    print(json.dumps(result), flush=True)
        finally:
            await server.stop()
    return results, failed


def main() -> None:
    args = parse_args()
    if not shutil.which(args.pingmon):
        sys.exit(f"bench_daemon: no pingmon at {args.pingmon}")
    if args.nice is not None:  # inherited by every process the run starts
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    if not args.scrape_interval and (args.no_nginx or not shutil.which("nginx")):
        sys.exit("bench_daemon: --scrape-interval 0 counts checks with nginx's stub_status")
    try:
        results, failed = asyncio.run(processes.until_signal(run_all(args)))
    except asyncio.CancelledError:
        sys.exit("bench_daemon: interrupted")
    if results:
        print_table(results)
    for line in failed:
        print(f"\n- {line}")
    server = "nginx" if args.no_nginx is False and shutil.which("nginx") else "aiohttp"
    print(f"\nTarget server: {server}; pingmon: {args.pingmon}.")
    sys.exit(1 if failed or not all(r["checks_per_second"] for r in results) else 0)


if __name__ == "__main__":
    main()
