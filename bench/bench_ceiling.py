"""How many checks a second one core sustains: pingmon against the bare aiohttp client, pinned.

    python bench/bench_ceiling.py                       # 3,000/s asked, 2 rounds, 15 s windows
    python bench/bench_ceiling.py --rate 4000 --loop uvloop --loop asyncio \
        --pingmon /work/main/.venv/bin/pingmon --pingmon .venv/bin/pingmon

nginx (``processes.start_nginx``) is pinned to CPU 0 and every measured process to CPU 1
(``taskset``, so each of its threads is on that core), so "one core" means exactly one core,
and the target never takes the measured process's CPU. Variants, in turn in each round:

- ``aiohttp-LOOP``: ``vs_blackbox.py``'s driver: one keep-alive ``ClientSession`` GETting the
  URL at ``--rate`` a second, open loop (what the client alone can do);
- ``aiohttp-apscheduler-LOOP``, the floor of a scheduled check: the same driver's GETs, each
  started by a job of pingmon's own ``CheckScheduler`` (APScheduler as the daemon runs it,
  ``rate x --interval`` jobs) and nothing else: no judging, recording or pingmon timeout.
  What the two parts the issue fixes (APScheduler, aiohttp) cost together; its lag is the
  driver's own, from every run in the window;
- ``pingmon-LOOP``: ``pingmon run`` (each ``--pingmon``) with ``rate x --interval`` ``http``
  targets on the URL (``vs_blackbox.pingmon_config``), ``PINGMON_EVENT_LOOP=LOOP``; its
  scheduler lag p50/p99 over the window from two scrapes of ``/metrics`` just outside it.

It prints per round and variant: checks/s reached (requests nginx answered in the window), the
share of the core used, CPU µs per check, and pingmon's lag; then medians over the rounds.
Reaching the rate asked with the core below 100 % means the ceiling is above it; a variant at
~100 % of the core below the rate has met its ceiling: that figure is what one core sustains.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import exposition
import processes
import vs_blackbox
from processes import cpu_seconds

TARGET_CPU, MEASURED_CPU = 0, 1
SCRAPE_TIMEOUT = 30.0


@dataclass
class Reach:
    """One variant in one round: what it reached on its one core."""

    variant: str
    checks_per_second: float
    core_share: float  # CPU seconds / window seconds
    lag_p50_ms: float | None = None
    lag_p99_ms: float | None = None

    @property
    def cpu_us_per_check(self) -> float | None:
        if not self.checks_per_second:
            return None
        return self.core_share / self.checks_per_second * 1e6


def pinned(argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(MEASURED_CPU), *argv]


async def window(
    http: aiohttp.ClientSession, url: str, pid: int, args: argparse.Namespace
) -> tuple[float, float]:
    """(checks/s nginx answered, share of a core ``pid`` used) over one window."""
    n0, cpu0, t0 = await processes.nginx_requests(http, url), cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(args.window)
    n1, cpu1, t1 = await processes.nginx_requests(http, url), cpu_seconds(pid), time.monotonic()
    return (n1 - n0) / (t1 - t0), (cpu1 - cpu0) / (t1 - t0)


async def run_bare(
    loop: str, url: str, args: argparse.Namespace, directory: Path, scheduled: bool = False
) -> Reach:
    """The bare client (``scheduled``: its GETs started by pingmon's scheduler, the floor)."""
    interval = args.interval if scheduled else None
    argv = vs_blackbox.driver_argv(url + processes.PATH, args.rate, loop, scheduled=interval)
    child = await processes.spawn(
        f"driver-{loop}", pinned(argv), directory, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    driver = vs_blackbox.Driver(child)
    try:
        await driver.line()  # "ready"
        async with aiohttp.ClientSession() as http:
            await asyncio.sleep(args.warmup + (args.interval if scheduled else 0.0))
            await driver.tally()  # the lags from here on
            rate, share = await window(http, url, child.pid, args)
            tally = await driver.tally()
    finally:
        await driver.stop()
    return Reach(
        vs_blackbox.bare_name(loop, scheduled), rate, share, tally.lag_p50_ms, tally.lag_p99_ms
    )


async def run_pingmon(
    label: str, pingmon: str, loop: str, url: str, args: argparse.Namespace, directory: Path
) -> Reach:
    config = vs_blackbox.pingmon_config(url, args, directory)
    port = processes.free_port()
    argv = [pingmon, "run", "--config", str(config), f"--web.listen-address=127.0.0.1:{port}"]
    env = {**os.environ, "PINGMON_EVENT_LOOP": loop}
    child = await processes.spawn(
        "pingmon", pinned(argv), directory, stdout=subprocess.DEVNULL, env=env
    )
    base = f"http://127.0.0.1:{port}"
    timeout = aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT)
    try:
        await processes.wait_ok(child, base + "/-/ready", 2 * processes.START_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            await asyncio.sleep(args.interval + args.warmup)  # every target has run
            before = await vs_blackbox.scrape(http, base)
            rate, share = await window(http, url, child.pid, args)
            after = await vs_blackbox.scrape(http, base)
    finally:
        await child.stop()
    p50 = exposition.lag_quantile(before.lag_buckets, after.lag_buckets, 0.5)
    p99 = exposition.lag_quantile(before.lag_buckets, after.lag_buckets, 0.99)
    ms = [None if q is None else round(q * 1000, 1) for q in (p50, p99)]
    return Reach(f"{label}-{loop}", rate, share, ms[0], ms[1])


def variants(args: argparse.Namespace) -> list[tuple[str, object]]:
    """(name, a function of (url, args, directory)) in the first round's order."""
    found: list[tuple[str, object]] = []
    several = len(args.pingmon) > 1
    for loop in args.loop:
        bare = vs_blackbox.bare_name(loop, False)
        found.append((bare, lambda u, a, d, lp=loop: run_bare(lp, u, a, d)))
        if args.floor:
            found.append(
                (vs_blackbox.bare_name(loop, True),
                 lambda u, a, d, lp=loop: run_bare(lp, u, a, d, scheduled=True))
            )  # fmt: skip
        for pingmon in args.pingmon:
            label = vs_blackbox.pingmon_label(pingmon, several)
            found.append(
                (f"{label}-{loop}",
                 lambda u, a, d, p=pingmon, lb=label, lp=loop: run_pingmon(lb, p, lp, u, a, d))
            )  # fmt: skip
    return found


def pin_target(pid: int) -> None:
    os.sched_setaffinity(pid, {TARGET_CPU})


async def run_rounds(args: argparse.Namespace) -> list[list[Reach]]:
    order = [(name, lambda url, d, run=run: run(url, args, d)) for name, run in variants(args)]
    return await processes.alternating_rounds(
        "pingmon-ceiling-", args.rounds, order,
        lambda k, reached: print_table(f"Round {k}", reached), started=lambda n: pin_target(n.pid),
    )  # fmt: skip


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def print_table(title: str, reached: list[Reach]) -> None:
    print(f"\n### {title}\n")
    print("| variant | checks/s reached | core used, % | CPU µs per check | lag p50 / p99, ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in sorted(reached, key=lambda r: r.variant):
        lag = "" if r.lag_p99_ms is None else f"{fmt(r.lag_p50_ms, 1)} / {fmt(r.lag_p99_ms, 1)}"
        print(f"| {r.variant} | {fmt(r.checks_per_second)} | {fmt(r.core_share * 100)} | "
              f"{fmt(r.cpu_us_per_check)} | {lag} |")  # fmt: skip


def median_of(rounds: list[list[Reach]]) -> list[Reach]:
    by_variant: dict[str, list[Reach]] = {}
    for reached in rounds:
        for r in reached:
            by_variant.setdefault(r.variant, []).append(r)

    def med(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return statistics.median(present) if present else None

    return [
        Reach(
            variant,
            med([r.checks_per_second for r in rs]) or 0.0,
            med([r.core_share for r in rs]) or 0.0,
            med([r.lag_p50_ms for r in rs]),
            med([r.lag_p99_ms for r in rs]),
        )
        for variant, rs in by_variant.items()
    ]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    processes.round_options(parser, rate=3000.0, rounds=2, window=15.0)
    parser.add_argument("--interval", type=float, default=1.0, help="pingmon's, seconds")
    parser.add_argument("--loop", action="append", choices=("asyncio", "uvloop"),
                        help="event loops (repeatable; default both)")  # fmt: skip
    parser.add_argument("--no-floor", dest="floor", action="store_false",
                        help="leave out aiohttp-apscheduler-LOOP (the bare GETs started by "
                        "pingmon's scheduler)")  # fmt: skip
    args = parser.parse_args(argv)
    args.loop = args.loop or ["asyncio", "uvloop"]
    args.pingmon = processes.pingmons(args)
    return args


def main() -> None:
    args = parse_args()
    if (os.cpu_count() or 1) < 2:
        sys.exit("bench_ceiling: needs two CPUs (the target on one, the measured on the other)")
    if args.nice is not None:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    try:
        rounds = asyncio.run(processes.until_signal(run_rounds(args)))
    except asyncio.CancelledError:
        sys.exit("bench_ceiling: interrupted")
    print_table(
        f"Medians over {len(rounds)} round(s): {args.rate:,.0f}/s asked, one core each",
        median_of(rounds),
    )


if __name__ == "__main__":
    main()
