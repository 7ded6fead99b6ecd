"""Four real ``pingmon run`` shards on this machine, 10,000 targets each: checks/s, lag, RSS.

    python bench/bench_shards_live.py             # 4 shards x 10,000 targets, 60 s interval
    python bench/bench_shards_live.py --quick     # smoke run: 4 x 250 targets, 2 s interval

One configuration file holds every target (``--shards`` x ``--targets-per-shard``, 40,000 by
default); N ``pingmon run`` child processes read it, each with ``PINGMON_SHARDING__SHARDS``,
``__BY`` and a ``PINGMON_SHARDING__SHARD`` and ``PINGMON_LISTEN`` of its own, as the chart's
StatefulSet pods do. Targets are ``http`` targets on a local server in its own process: nginx
(Debian ``nginx-light``) when installed, else the minimal keep-alive server of
bench_daemon.py. They belong to ``--credentials`` credentials (1,000: each a provider entry
of its own, told apart by its base_url), so the default ``sharding.by: credential`` spreads
them evenly enough.

The shards are started together; ``ready`` is the time from the spawn to ``/-/ready`` (each
loads and validates the whole file, then schedules its share). After ``--warmup`` seconds, a
window of ``--duration`` seconds: every shard's ``/metrics`` is fetched at its start, every
``--scrape-interval`` seconds (a Prometheus's load) and at its end; RSS is sampled every
second. Per shard, from the deltas of its own metrics: checks/s (``pingmon_checks_total``)
against the schedule's rate (targets / interval), failed checks, scheduler lag p50/p99
(``pingmon_scheduler_lag_seconds`` buckets, interpolated as ``histogram_quantile`` does, so
no finer than its buckets), CPU share and CPU per check (``/proc/PID/stat``), RSS at the end
and at most. All traffic is on 127.0.0.1; every process started is stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from bench_abuse import Counts, Daemon, free_port
from exposition import lag_quantile, share_above

from pingmon.config import load_config
from pingmon.fields import parse_duration
from pingmon.placement import assignment
from pingmon.sharding import ShardBy

READY_TIMEOUT = 300.0  # 4 processes loading 40,000 targets each on 2 shared cores
STOP_TIMEOUT = 30.0
RSS_EVERY = 1.0
SCRAPE_TIMEOUT = 300.0  # on a starved machine a 10,000-target /metrics can take a minute
BENCH_DAEMON = Path(__file__).with_name("bench_daemon.py")

NGINX_CONF = """\
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp;
    scgi_temp_path {dir}/tmp;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            default_type application/json;
            return 200 '{{"status":"ok"}}';
        }}
    }}
}}
"""


# --- the target server ---------------------------------------------------------------------


@contextlib.asynccontextmanager
async def target_server(directory: Path) -> AsyncIterator[tuple[str, int]]:
    """nginx if installed, else bench_daemon.py's target server: (its name, its port)."""
    nginx = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None
    )
    if nginx is not None:
        port = free_port()
        (directory / "tmp").mkdir()
        conf = directory / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=directory, port=port))
        command = [nginx, "-p", str(directory), "-e", str(directory / "nginx-error.log")]
        command += ["-c", str(conf), "-g", "daemon off;"]
        proc = await asyncio.create_subprocess_exec(*command, stdin=subprocess.DEVNULL)
        name = "nginx"
        await wait_listening(port, proc)
    else:
        pipe = asyncio.subprocess.PIPE
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(BENCH_DAEMON), "--target-server", stdout=pipe
        )
        assert proc.stdout is not None
        port = int(await asyncio.wait_for(proc.stdout.readline(), 30))
        name = "bench_daemon.py --target-server"
    try:
        yield name, port
    finally:
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)


async def wait_listening(port: int, proc: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise RuntimeError(f"the target server exited {proc.returncode}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("the target server does not listen")


# --- the configuration and the shards ------------------------------------------------------


def write_config(directory: Path, args: argparse.Namespace, port: int) -> Path:
    """Every target of every shard in one file (compact JSON, which is YAML)."""
    total = args.shards * args.targets_per_shard
    credentials = min(args.credentials, total)
    base = f"http://127.0.0.1:{port}"
    document = {
        "watch": {"enabled": False},
        "concurrency": args.concurrency,
        "defaults": {"interval": args.interval, "timeout": args.timeout},
        "latency_histogram": not args.no_latency_histogram,
        "providers": {
            f"c{c:04d}": {"type": "http", "base_url": f"{base}/c{c:04d}", "proxy_url": "none"}
            for c in range(credentials)
        },
        "targets": [
            {"name": f"t{i:05d}", "provider": f"c{i % credentials:04d}", "path": f"/t{i}"}
            for i in range(total)
        ],
    }
    path = directory / "pingmon-shards.json"
    path.write_text(json.dumps(document, separators=(",", ":")), encoding="utf-8")
    return path


@dataclass
class Shard:
    """One ``pingmon run`` child process and what was measured of it."""

    index: int
    daemon: Daemon
    spawned: float
    ready_seconds: float | None = None
    rss_mb: list[float] = field(default_factory=list)


async def spawn(
    pingmon: Sequence[str], config: Path, args: argparse.Namespace, index: int, directory: Path
) -> Shard:
    """``pingmon run`` as pod ``index`` of a StatefulSet: its sharding from the environment."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PINGMON_")}
    env |= {
        "PINGMON_SHARDING__SHARDS": str(args.shards),
        "PINGMON_SHARDING__SHARD": str(index),
        "PINGMON_SHARDING__BY": args.by,
        "PINGMON_LISTEN": f"127.0.0.1:{port}",
    }
    stderr = directory / f"shard-{index}.stderr"
    with stderr.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            *pingmon, "run", "--config", str(config),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env,
        )  # fmt: skip
    return Shard(index, Daemon(proc, f"http://127.0.0.1:{port}", stderr), time.monotonic())


async def wait_ready(shard: Shard, http: aiohttp.ClientSession) -> None:
    deadline = shard.spawned + READY_TIMEOUT
    while time.monotonic() < deadline:
        if shard.daemon.proc.returncode is not None:
            tail = shard.daemon.stderr.read_text(errors="replace")[-800:]
            raise RuntimeError(
                f"shard {shard.index} exited {shard.daemon.proc.returncode}: {tail}"
            )
        with contextlib.suppress(aiohttp.ClientError, OSError):
            async with http.get(shard.daemon.url + "/-/ready") as response:
                if response.status == 200:
                    shard.ready_seconds = round(time.monotonic() - shard.spawned, 2)
                    return
        await asyncio.sleep(0.25)
    raise RuntimeError(f"shard {shard.index} not ready within {READY_TIMEOUT:.0f} s")


async def sample_rss(shards: list[Shard], stop: asyncio.Event) -> None:
    while not stop.is_set():
        for shard in shards:
            rss = shard.daemon.rss_mb()
            if rss is not None:
                shard.rss_mb.append(rss)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RSS_EVERY)


@dataclass(frozen=True)
class Reading:
    """One scrape's counts, and when its answer had arrived (monotonic seconds)."""

    counts: Counts
    at: float
    seconds: float


_CHECKS = re.compile(rb'^pingmon_checks_total\{[^}]*error_class="([a-z_]+)"\} (\S+)$', re.M)
_LAG = re.compile(rb'^pingmon_scheduler_lag_seconds_bucket\{le="([^"]+)"\} (\S+)$', re.M)


def parse_counts(body: bytes) -> Counts:
    """Checks by class (every target's summed) and the lag histogram's cumulative buckets."""
    checks: dict[str, float] = {}
    for error_class, value in _CHECKS.findall(body):
        name = error_class.decode()
        checks[name] = checks.get(name, 0.0) + float(value)
    lag = {float(le): float(value) for le, value in _LAG.findall(body)}
    return Counts(checks, lag, 0.0)


OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}


async def read(shard: Shard, http: aiohttp.ClientSession, measure: bool) -> Reading:
    """One scrape of the shard's /metrics; ``at`` is when it was sent: pingmon renders from a
    snapshot taken when the request arrives, however long the rendering then takes.
    Measuring scrapes ask for OpenMetrics and the others for the text format: pingmon hands a
    scrape that follows others closely the render they shared (``RENDER_REUSE``), per format,
    so the two measuring scrapes of a window are always rendered afresh."""
    started = time.monotonic()
    headers = OPENMETRICS if measure else {}
    async with http.get(shard.daemon.url + "/metrics", headers=headers) as response:
        response.raise_for_status()
        body = await response.read()
    return Reading(parse_counts(body), started, time.monotonic() - started)


async def scrape_all(shards: list[Shard], measure: bool = True) -> list[Reading]:
    timeout = aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        return list(await asyncio.gather(*(read(shard, http, measure) for shard in shards)))


async def scrape_every(shards: list[Shard], seconds: float, stop: asyncio.Event) -> list[float]:
    """Fetch every shard's /metrics every ``seconds``, as Prometheus would; their durations."""
    took: list[float] = []
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
        if stop.is_set():
            return took
        took += [reading.seconds for reading in await scrape_all(shards, measure=False)]


async def window(shards: list[Shard], args: argparse.Namespace) -> Window:
    """Readings at the start and end, the CPU seconds each shard used in between, and the
    durations of every scrape."""
    before = await scrape_all(shards)
    progress(
        f"window of {args.duration:.0f} s begins (first scrapes took "
        f"{max(r.seconds for r in before):.1f} s)"
    )
    cpu = [shard.daemon.cpu() for shard in shards]
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(shards, stop))
    scraper = asyncio.create_task(scrape_every(shards, args.scrape_interval, stop))
    await asyncio.sleep(args.duration)
    stop.set()
    took = await scraper
    after = await scrape_all(shards)
    used = [shard.daemon.cpu() - start for shard, start in zip(shards, cpu, strict=True)]
    await sampler
    took += [reading.seconds for reading in (*before, *after)]
    return Window(before, after, used, took)


@dataclass(frozen=True)
class Window:
    before: list[Reading]
    after: list[Reading]
    cpu: list[float]
    scrape_seconds: list[float]


# --- figures -------------------------------------------------------------------------------


def shard_figures(
    shard: Shard, targets: int, interval: float, readings: tuple[Reading, Reading], cpu: float
) -> dict[str, Any]:
    """One shard's figures from the deltas between its first and last reading."""
    before, after = readings[0].counts, readings[1].counts
    elapsed = readings[1].at - readings[0].at
    checks = {
        name: after.checks_by_class.get(name, 0.0) - before.checks_by_class.get(name, 0.0)
        for name in after.checks_by_class
    }
    total = sum(checks.values())
    p50 = lag_quantile(before.lag_buckets, after.lag_buckets, 0.5)
    p99 = lag_quantile(before.lag_buckets, after.lag_buckets, 0.99)
    return {
        "shard": shard.index,
        "targets": targets,
        "ready_seconds": shard.ready_seconds,
        "checks_per_second": round(total / elapsed, 1),
        "scheduled_per_second": round(targets / interval, 1),
        "failed_checks": int(total - checks.get("none", 0.0)),
        "lag_p50_ms": None if p50 is None else round(p50 * 1000, 1),
        "lag_p99_ms": None if p99 is None else round(p99 * 1000, 1),
        "lag_share_over_100ms": round(share_above(before.lag_buckets, after.lag_buckets, 0.1), 4),
        "cpu_percent": round(100 * cpu / elapsed, 1),
        "cpu_us_per_check": round(1e6 * cpu / total) if total else None,
        "rss_mb_end": shard.rss_mb[-1] if shard.rss_mb else None,
        "rss_mb_max": max(shard.rss_mb, default=None),
    }


def print_table(result: dict[str, Any]) -> None:
    run = result["run"]
    print(
        f"{run['shards']} shards, {run['targets']:,} targets, {run['credentials']:,} "
        f"credentials (by {run['by']}), interval {run['interval']}, latency histogram "
        f"{'on' if run['latency_histogram'] else 'off'}, window {run['window_s']} s "
        f"after {run['warmup_s']} s; target server: {run['target_server']}; "
        f"assignment computed in {run['assignment_ms']} ms; {run['scrapes']} scrapes of "
        f"/metrics, the slowest {run['scrape_seconds_max']} s; load average (1 min) "
        f"{run['load_average_1m'][0]} at the start, {run['load_average_1m'][1]} at the end, "
        f"{run['cores']} cores"
    )
    columns = (
        ("shard", "shard"),
        ("targets", "targets"),
        ("ready s", "ready_seconds"),
        ("checks/s", "checks_per_second"),
        ("scheduled/s", "scheduled_per_second"),
        ("failed", "failed_checks"),
        ("lag p50 ms", "lag_p50_ms"),
        ("lag p99 ms", "lag_p99_ms"),
        ("CPU %", "cpu_percent"),
        ("CPU us/check", "cpu_us_per_check"),
        ("RSS MB", "rss_mb_end"),
        ("RSS max MB", "rss_mb_max"),
    )
    print(" | ".join(title for title, _ in columns))
    for row in result["shards"]:
        print(" | ".join(str(row[key]) for _, key in columns))
    totals = result["total"]
    print(
        f"total: {totals['checks_per_second']} checks/s of {totals['scheduled_per_second']} "
        f"scheduled, {totals['failed_checks']} failed, RSS {totals['rss_mb_end']} MB, "
        f"all ready after {totals['ready_seconds_max']} s, exit statuses {totals['exit_statuses']}"
    )


def progress(message: str) -> None:
    """A line on stderr, so a long run shows where it is (stdout is the figures)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pingmon_command(value: str | None) -> list[str]:
    return [value] if value else [sys.executable, "-m", "pingmon"]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    interval = parse_duration(args.interval)
    load_at_start = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="pingmon-shards-") as tmp:
        directory = Path(tmp)
        async with target_server(directory) as (server, port):
            config = write_config(directory, args, port)
            loaded = load_config(config)
            started = time.perf_counter()
            placed = assignment(loaded, args.shards, ShardBy(args.by))
            assignment_ms = round((time.perf_counter() - started) * 1000, 1)
            per_shard = placed.targets_per_shard
            command = pingmon_command(args.pingmon)
            shards = [await spawn(command, config, args, i, directory) for i in range(args.shards)]
            try:
                progress(f"{len(shards)} shards started on {sum(per_shard):,} targets")
                async with aiohttp.ClientSession() as http:
                    await asyncio.gather(*(wait_ready(shard, http) for shard in shards))
                progress(f"all ready; warm-up of {args.warmup:.0f} s")
                await asyncio.sleep(args.warmup)
                measured = await window(shards, args)
                progress("window over; stopping the shards")
            finally:
                statuses = [await shard.daemon.stop() for shard in shards]
    rows = [
        shard_figures(shard, per_shard[shard.index], interval, readings, used)
        for shard, readings, used in zip(
            shards, zip(measured.before, measured.after, strict=True), measured.cpu, strict=True
        )
    ]
    elapsed = measured.after[0].at - measured.before[0].at
    return {
        "run": {
            "shards": args.shards,
            "targets": sum(per_shard),
            "credentials": min(args.credentials, sum(per_shard)),
            "by": args.by,
            "interval": args.interval,
            "latency_histogram": not args.no_latency_histogram,
            "warmup_s": args.warmup,
            "window_s": round(elapsed, 1),
            "target_server": server,
            "assignment_ms": assignment_ms,
            "scrapes": len(measured.scrape_seconds),
            "scrape_seconds_max": round(max(measured.scrape_seconds), 2),
            "load_average_1m": [load_at_start, round(os.getloadavg()[0], 2)],
            "cores": os.cpu_count(),
        },
        "shards": rows,
        "total": {
            "checks_per_second": round(sum(r["checks_per_second"] for r in rows), 1),
            "scheduled_per_second": round(sum(per_shard) / interval, 1),
            "failed_checks": sum(r["failed_checks"] for r in rows),
            "rss_mb_end": round(sum(r["rss_mb_end"] or 0.0 for r in rows), 1),
            "ready_seconds_max": max((r["ready_seconds"] or 0.0) for r in rows),
            "exit_statuses": statuses,
        },
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--targets-per-shard", type=int, default=10_000)
    parser.add_argument("--credentials", type=int, default=1_000)
    parser.add_argument("--by", choices=("credential", "target"), default="credential")
    parser.add_argument("--interval", default="60s", help="every target's interval")
    parser.add_argument("--timeout", default="5s")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds after all ready")
    parser.add_argument("--duration", type=float, default=60.0, help="the window, in seconds")
    parser.add_argument("--scrape-interval", type=float, default=30.0, help="seconds")
    parser.add_argument(
        "--no-latency-histogram",
        action="store_true",
        help="latency_histogram: false (11 series a target fewer, as for large target sets)",
    )
    parser.add_argument("--pingmon", help="a pingmon executable (default: this Python's)")
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)
    if args.quick:
        args.targets_per_shard, args.credentials = 250, 40
        args.interval, args.timeout = "2s", "1s"
        args.warmup, args.duration, args.scrape_interval = 2.0, 5.0, 2.0
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    result = asyncio.run(run(args))
    if not args.json:
        print_table(result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
