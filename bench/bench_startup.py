"""Configuration load, start and reload times of ``pingmon`` builds side by side, at 10,000 and
100,000 targets.

    python bench/bench_startup.py --pingmon /work/main/.venv/bin/pingmon \
        --pingmon .venv/bin/pingmon
    python bench/bench_startup.py --targets 10000 --rounds 3 --pingmon ...
    python bench/bench_startup.py --quick          # 1,000 targets, this build, one round

For each scale, the file ``bench_daemon.py`` writes (N ``http`` targets on one provider, compact
JSON; 10,000 at 10 s, 100,000 at 60 s), and for each round, every build in turn (the order
alternates between rounds, so neither always runs on the warmer machine):

- ``config validate``: wall seconds of ``pingmon config validate --config FILE``, and its CPU
  seconds (user + system of the child);
- start: wall seconds from exec of ``pingmon run`` to ``/-/ready`` answering 200, and the
  daemon's CPU seconds by then (``/proc/PID/stat``);
- reload: SIGHUP to the daemon's "configuration reloaded" log line, wall seconds and the
  daemon's CPU seconds meanwhile (the same file again: every target is validated and
  prepared again, no timer changes); "refused" when pingmon gave the load up (30 s);
- RSS once ready, MB.

The targets point at a closed port on 127.0.0.1 (the checks fail at once; what is measured
ends before most of them run). Medians over ``--rounds`` per build and scale. The machine
is shared and noisy: compare builds within one run, and CPU seconds rather than wall.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_daemon
import processes
from processes import cpu_seconds, free_port, rss_mb

DEFAULT_SCALES = "10000,100000"
RELOAD_TIMEOUT = 300.0


def write_config(targets: int, directory: Path) -> Path:
    """bench_daemon's file for ``targets`` (its interval for that scale), targets on a port
    nothing listens on."""
    args = bench_daemon.parse_args([])
    interval = bench_daemon.interval_for(targets, args)
    path = directory / f"pingmon-{targets}.yaml"
    url = f"http://127.0.0.1:{free_port()}"
    bench_daemon.write_config(targets, interval, None, url, args, path)
    return path


async def validate(pingmon: str, config: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of ``config validate``; RuntimeError if it refuses the file."""
    before = os.times()
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        pingmon, "config", "validate", "--config", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await proc.communicate()
    wall = time.monotonic() - started
    after = os.times()
    if proc.returncode != 0:
        raise RuntimeError(f"config validate failed: {stderr.decode(errors='replace')[-400:]}")
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return wall, cpu


async def reloaded(daemon: processes.Child, timeout: float) -> float:
    """SIGHUP, then wait for the log line of a reload; wall seconds, NaN when the reload was
    refused (a load past pingmon's 30 s deadline is given up: the figure is then "refused")."""
    log = daemon.stderr
    seen = len(log.read_bytes().splitlines())
    started = time.monotonic()
    daemon.proc.send_signal(signal.SIGHUP)
    while time.monotonic() - started < timeout:
        for line in log.read_bytes().splitlines()[seen:]:
            if b"configuration reloaded" in line or b"reload refused" in line:
                if b"reload refused" in line:
                    print(f"  reload refused: {line.decode(errors='replace')}", file=sys.stderr)
                    return math.nan
                return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise RuntimeError(f"no reload within {timeout} s")


async def one_round(pingmon: str, config: Path, directory: Path, targets: int) -> dict[str, Any]:
    validate_wall, validate_cpu = await validate(pingmon, config)
    daemon, _, start_wall = await processes.start_pingmon(
        pingmon, config, directory, timeout=120 + targets / 200
    )
    try:
        start_cpu, rss = cpu_seconds(daemon.pid), rss_mb(daemon.pid)
        reload_wall = await reloaded(daemon, RELOAD_TIMEOUT)
        reload_cpu = cpu_seconds(daemon.pid) - start_cpu
    finally:
        await daemon.stop()
    return {
        "validate_s": validate_wall,
        "validate_cpu_s": validate_cpu,
        "start_s": start_wall,
        "start_cpu_s": start_cpu,
        "reload_s": reload_wall,
        "reload_cpu_s": reload_cpu,
        "rss_mb": rss,
    }


ROWS = (
    ("config validate, s (CPU s)", "validate_s", "validate_cpu_s"),
    ("start: exec to /-/ready 200, s (CPU s)", "start_s", "start_cpu_s"),
    ("reload: SIGHUP to reloaded, s (CPU s)", "reload_s", "reload_cpu_s"),
    ("RSS when ready, MB", "rss_mb", None),
)


def medians(runs: list[dict[str, Any]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def print_table(results: dict[tuple[int, str], dict[str, float]], builds: list[str]) -> None:
    scales = sorted({targets for targets, _ in results})
    heads = [f"{targets:,}: {build}" for targets in scales for build in builds]
    print("\n| figure | " + " | ".join(heads) + " |")
    print("| --- |" + " ---: |" * len(heads))
    for label, key, cpu in ROWS:
        cells = []
        for targets in scales:
            for build in builds:
                found = results.get((targets, build))
                if found is None:
                    cells.append("-")
                elif math.isnan(found[key]):
                    cells.append(f"refused ({found[cpu]:.2f})" if cpu else "refused")
                elif cpu is None:
                    cells.append(f"{found[key]:.0f}")
                else:
                    cells.append(f"{found[key]:.2f} ({found[cpu]:.2f})")
        print(f"| {label} | " + " | ".join(cells) + " |")


async def run(args: argparse.Namespace) -> dict[tuple[int, str], dict[str, float]]:
    results: dict[tuple[int, str], dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="pingmon-bench-startup-") as name:
        directory = Path(name)
        for targets in args.scales:
            config = write_config(targets, directory)
            runs: dict[str, list[dict[str, Any]]] = {build: [] for build in args.pingmon}
            for round_number in range(args.rounds):
                order = args.pingmon if round_number % 2 == 0 else args.pingmon[::-1]
                for build in order:
                    print(f"{targets:,} targets, round {round_number + 1}: {build} ...",
                          file=sys.stderr, flush=True)  # fmt: skip
                    found = await one_round(build, config, directory, targets)
                    print("  " + json.dumps({k: round(v, 2) for k, v in found.items()}),
                          file=sys.stderr, flush=True)  # fmt: skip
                    runs[build].append(found)
            for build, found_runs in runs.items():
                results[(targets, build)] = medians(found_runs)
                if args.json:
                    print(json.dumps({"targets": targets, "pingmon": build,
                                      **results[(targets, build)]}), flush=True)  # fmt: skip
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--pingmon", action="append",
        help="a pingmon executable; repeat to compare builds (default: beside this Python)",
    )  # fmt: skip
    parser.add_argument("--targets", default=DEFAULT_SCALES, help="comma-separated scales")
    parser.add_argument("--rounds", type=int, default=1, help="runs of every build per scale")
    parser.add_argument("--json", action="store_true", help="one JSON line per build and scale")
    parser.add_argument("--quick", action="store_true", help="1,000 targets, one round")
    args = parser.parse_args(argv)
    if args.quick:
        args.targets, args.rounds = "1000", 1
    args.scales = [int(n) for n in args.targets.split(",")]
    args.pingmon = args.pingmon or [str(Path(sys.executable).with_name("pingmon"))]
    return args


def main() -> None:
    args = parse_args()
    for build in args.pingmon:
        if not shutil.which(build):
            sys.exit(f"bench_startup: no pingmon at {build}")
    try:
        results = asyncio.run(processes.until_signal(run(args)))
    except asyncio.CancelledError:
        sys.exit("bench_startup: interrupted")
    print_table(results, args.pingmon)


if __name__ == "__main__":
    main()
