"""Side by side on one nginx target: CPU per check of pingmon, blackbox_exporter, bare aiohttp.

    python bench/vs_blackbox.py                        # rate 500/s, 3 rounds, 20 s windows
    python bench/vs_blackbox.py --pingmon /work/main/.venv/bin/pingmon --pingmon .venv/bin/pingmon
    python bench/vs_blackbox.py --quick                # a smoke run of about a minute

nginx (Debian ``nginx-light``, this script's own config, 127.0.0.1) answers ``{"status":"ok"}``
on keep-alive connections. Then, in ``--rounds`` rounds, each variant runs in turn (the order
rotates from round to round) for a warm-up and a window of ``--window`` seconds:

- ``blackbox``: Debian's ``prometheus-blackbox-exporter`` (module ``http_2xx``), driven at
  ``--rate`` probes/s on ``/probe?target=URL&module=http_2xx`` by a driver (this script with
  ``--drive``, in its own process, its CPU not counted). blackbox opens a new connection per
  probe, by design;
- ``pingmon``: ``pingmon run`` with rate x ``--interval`` ``http`` targets on the URL (checks
  counted from ``pingmon_checks_total`` in two scrapes just outside the window), once per
  ``--pingmon`` build;
- ``aiohttp-asyncio`` / ``aiohttp-uvloop``: the driver itself GETting the URL at the rate on one
  keep-alive ``ClientSession``: what the HTTP client alone costs (uvloop when importable);
- ``aiohttp-apscheduler-LOOP`` (uvloop when importable; ``--no-floor`` leaves it out): the floor
  of a scheduled check, the same GETs each started by a job of pingmon's ``CheckScheduler`` as
  the daemon runs it (``scheduled_launch``): what APScheduler and the client cost together,
  with no judging, recording or exposition.

For each: CPU of the measured process over the window (utime + stime from /proc/PID/stat, all
threads) per check, checks/s, failures, RSS; and per pingmon build, its CPU per check divided by
blackbox's in the same round. Prints a markdown table per round and the medians over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import importlib.util
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import exposition
import processes
from bench_dispatch import target
from processes import PATH, Child, ProcessUsage, process_usage, rss_mb

from pingmon.config import Settings
from pingmon.fields import parse_duration
from pingmon.scheduler import CheckScheduler

# Seconds between two launches of the requests due (--driver-tick): pingmon's default
# timer_slack, so that the bare client's wake-ups are batched as pingmon's are.
DRIVER_TICK: float = Settings.model_fields["timer_slack"].default
DRIVER_MAX_IN_FLIGHT = 5000  # beyond this a due request is dropped (counted), not queued
REQUEST_TIMEOUT = 10.0
CONNECTIONS = 100  # the bare client's keep-alive pool, as pingmon's default concurrency
PROBE_CONNECTIONS = 500  # to blackbox: as many probes in flight as a Prometheus would send
SCRAPE_TIMEOUT = 300.0  # pingmon's /metrics of 5,000 targets, on a starved CPU
BLACKBOX_CONFIG = "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n"
NOTE = (
    "blackbox_exporter opens a new TCP connection for every probe, by design; pingmon and the "
    "bare client reuse keep-alive connections."
)


# --- the driver: a fixed rate of GETs, in its own process ---------------------------------


@dataclass
class Tally:
    """answered: got a response (failed: one that says the check failed); errors: no response
    (timeout, connection); dropped: due but not sent, DRIVER_MAX_IN_FLIGHT already in flight."""

    answered: int = 0
    failed: int = 0
    errors: int = 0
    dropped: int = 0
    lag_p50_ms: float | None = None  # scheduled driver: the lag since the last tally
    lag_p99_ms: float | None = None


async def drive(
    url: str, rate: float, probe: bool, scheduled: float | None = None, tick: float = DRIVER_TICK
) -> None:
    """GET ``url`` ``rate`` times a second (open loop) until stdin closes; print the tally
    as a JSON line for every line read on stdin. ``probe``: success is ``probe_success 1``.
    ``scheduled``: an interval in seconds; the GETs are then started by pingmon's scheduler,
    one job per ``rate x scheduled`` targets (``scheduled_launch``), not by a tick loop
    (else launched every ``tick`` seconds)."""
    tally = Tally()
    lags: list[float] = []
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=PROBE_CONNECTIONS if probe else CONNECTIONS)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:

        async def one() -> None:
            try:
                async with http.get(url) as response:
                    body = await response.read()
            except (aiohttp.ClientError, OSError, TimeoutError):
                tally.errors += 1
                return
            tally.answered += 1
            tally.failed += response.status != 200 or (probe and b"\nprobe_success 1" not in body)

        if scheduled is not None:
            stop = scheduled_launch(one, rate, scheduled, lags)
            await report_on_request(tally, lags)
            stop()
            return
        launcher = asyncio.create_task(launch(one, rate, tally, tick))
        await report_on_request(tally, lags)
        launcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await launcher


async def launch(one: Callable[[], Any], rate: float, tally: Tally, tick: float) -> None:
    """Every ``tick`` seconds, start the GETs due at ``rate`` since the start (open loop)."""
    tasks: set[asyncio.Task[None]] = set()
    started, launched = time.monotonic(), 0
    while True:
        due = int((time.monotonic() - started) * rate) - launched
        for _ in range(due):
            if len(tasks) >= DRIVER_MAX_IN_FLIGHT:
                tally.dropped += 1
                continue
            task = asyncio.create_task(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        launched += due
        await asyncio.sleep(tick)


def scheduled_launch(
    one: Callable[[], Any], rate: float, interval: float, lags: list[float]
) -> Callable[[], None]:
    """The floor of a scheduled check (``floor_scheduler``), started. Returns how to stop.

    APScheduler's logger is quieted as ``pingmon.logs.setup_logging`` quiets it: a run
    skipped because the last still goes (``max_instances=1``, every run at saturation)
    is then dropped at a level check, as in the daemon, not formatted and printed to
    stderr by logging's last-resort handler (about 50 µs a skipped run, 1.6 skipped runs
    a check at 3,000/s asked: most of what the floor cost above the bare client)."""
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    scheduler = floor_scheduler(one, rate, interval, lags)
    scheduler.start()
    return scheduler.shutdown


def floor_scheduler(
    one: Callable[[], Any], rate: float, interval: float, lags: list[float]
) -> CheckScheduler:
    """``rate x interval`` jobs in pingmon's own ``CheckScheduler`` (APScheduler, as the
    daemon runs it: max_instances=1, coalesce, the grid's jitter, the default
    ``timer_slack``, whatever ``--driver-tick`` paces the other drivers at), each run
    ``one()`` and nothing else (no judging, no recording, no timeout of pingmon's); each
    run's lag goes to ``lags``. Not started."""

    async def check(name: str) -> None:
        await one()

    scheduler = CheckScheduler(check, lags.append, DRIVER_TICK)
    scheduler.sync(target(f"t{i:06d}", interval) for i in range(round(rate * interval)))
    return scheduler


async def report_on_request(tally: Tally, lags: list[float]) -> None:
    """On each line read: the tally, with the lag quantiles of the runs since the last."""
    loop = asyncio.get_running_loop()
    print("ready", flush=True)
    while await loop.run_in_executor(None, sys.stdin.readline):
        tally.lag_p50_ms, tally.lag_p99_ms = lag_quantiles_ms(lags)
        lags.clear()
        print(json.dumps(tally.__dict__), flush=True)


def lag_quantiles_ms(lags: list[float]) -> tuple[float | None, float | None]:
    """The median and 99th percentile of ``lags`` (seconds) in ms; (None, None) for none."""
    if not lags:
        return None, None
    # statistics.quantiles wants two points at least (Python 3.11)
    cuts = statistics.quantiles(lags, n=100, method="inclusive") if lags[1:] else lags * 99
    return cuts[49] * 1e3, cuts[98] * 1e3


def run_driver(args: argparse.Namespace) -> None:
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if args.loop == "uvloop":
        factory = importlib.import_module("uvloop").new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(drive(args.drive, args.rate, args.probe, args.scheduled, args.driver_tick))


def driver_argv(
    url: str, rate: float, loop: str, probe: bool = False, tick: float = DRIVER_TICK,
    scheduled: float | None = None,
) -> list[str]:  # fmt: skip
    """The command line of a driver child (``drive``): ``scheduled``, an interval in seconds,
    makes it the floor (its GETs started by ``scheduled_launch``)."""
    argv = [sys.executable, __file__, "--drive", url, "--rate", str(rate), "--loop", loop,
            "--driver-tick", repr(tick)]  # fmt: skip
    if scheduled is not None:
        argv += ["--scheduled", repr(scheduled)]
    return argv + (["--probe"] if probe else [])


def bare_name(loop: str, scheduled: bool) -> str:
    """The variant's name of the bare client (``scheduled``: the floor) on ``loop``."""
    return f"aiohttp-apscheduler-{loop}" if scheduled else f"aiohttp-{loop}"


class Driver:
    """The driver child, asked for its tally over stdin."""

    def __init__(self, child: Child) -> None:
        self.child = child

    @classmethod
    async def start(
        cls, url: str, rate: float, loop: str, probe: bool, directory: Path,
        tick: float = DRIVER_TICK, scheduled: float | None = None,
    ) -> Driver:  # fmt: skip
        argv = driver_argv(url, rate, loop, probe, tick, scheduled)
        pipe = subprocess.PIPE
        child = await processes.spawn(f"driver-{loop}", argv, directory, stdin=pipe, stdout=pipe)
        driver = cls(child)
        try:
            await driver.line()
        except BaseException:
            await child.stop()
            raise
        return driver

    async def line(self) -> str:
        assert self.child.proc.stdout is not None
        line = await asyncio.wait_for(self.child.proc.stdout.readline(), 30)
        if not line:
            raise RuntimeError(f"driver exited: {self.child.tail()}")
        return line.decode()

    async def tally(self) -> Tally:
        assert self.child.proc.stdin is not None
        self.child.proc.stdin.write(b"tally\n")
        await self.child.proc.stdin.drain()
        return Tally(**json.loads(await self.line()))

    async def stop(self) -> None:
        if self.child.proc.stdin is not None:
            self.child.proc.stdin.close()
        await self.child.stop()


# --- one variant's window -------------------------------------------------------------------


@dataclass
class Measure:
    """One variant in one round."""

    variant: str
    used: ProcessUsage  # by the measured process in the window
    seconds: float  # the window
    checks: float  # in the window
    failures: float
    rss_mb: float
    not_sent: int = 0  # the driver's backlog (it could not keep the rate)
    lag_p99_ms: float | None = None  # a scheduler's (pingmon, the floor): of the window's runs

    @property
    def cpu_us_per_check(self) -> float | None:
        return self.used.cpu / self.checks * 1e6 if self.checks else None

    @property
    def wakeups_per_check(self) -> float | None:
        return self.used.wakeups / self.checks if self.checks else None

    @property
    def system_share(self) -> float | None:
        """Of the window's CPU, the part the kernel spent for the process (0-1)."""
        return self.used.system / self.used.cpu if self.used.cpu else None

    @property
    def checks_per_second(self) -> float:
        return self.checks / self.seconds


async def window_of_driver(
    variant: str, measured: int, driver: Driver, args: argparse.Namespace
) -> Measure:
    """Warm-up, then CPU of ``measured`` and the driver's tally at both ends of the window."""
    await asyncio.sleep(args.warmup)
    used0, t0, before = process_usage(measured), time.monotonic(), await driver.tally()
    await asyncio.sleep(args.window)
    used1, t1, after = process_usage(measured), time.monotonic(), await driver.tally()
    failures = after.failed - before.failed + after.errors - before.errors
    answered, dropped = after.answered - before.answered, after.dropped - before.dropped
    rss = rss_mb(measured)
    return Measure(
        variant, used1 - used0, t1 - t0, answered, failures, rss, dropped, after.lag_p99_ms
    )


async def run_blackbox(url: str, args: argparse.Namespace, directory: Path) -> Measure:
    config = directory / "blackbox.yml"
    config.write_text(BLACKBOX_CONFIG, encoding="utf-8")
    port = processes.free_port()
    argv = [
        "prometheus-blackbox-exporter", f"--config.file={config}",
        f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
    ]  # fmt: skip
    blackbox = await processes.spawn("blackbox", argv, directory, stdout=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        await processes.wait_ok(blackbox, base + "/-/healthy")
        probe = f"{base}/probe?module=http_2xx&target={quote(url + PATH, safe='')}"
        driver = await Driver.start(probe, args.rate, "asyncio", True, directory, args.driver_tick)
        try:
            return await window_of_driver("blackbox", blackbox.pid, driver, args)
        finally:
            await driver.stop()
    finally:
        await blackbox.stop()


async def run_bare(
    loop: str, url: str, args: argparse.Namespace, directory: Path, scheduled: bool = False
) -> Measure:
    """The bare client; ``scheduled``: its GETs started by pingmon's scheduler (the floor),
    after a warm-up of ``--interval`` more, as pingmon's (a job's first run comes within the
    interval and its jitter, a tenth of it: ``--warmup`` covers that)."""
    interval = args.interval if scheduled else None
    driver = await Driver.start(
        url + PATH, args.rate, loop, False, directory, args.driver_tick, interval
    )
    name = bare_name(loop, scheduled)
    try:
        if interval is not None:
            await asyncio.sleep(interval)
        return await window_of_driver(name, driver.child.pid, driver, args)
    finally:
        await driver.stop()


def pingmon_config(url: str, args: argparse.Namespace, directory: Path) -> Path:
    """rate x interval http targets on the URL, status only (as blackbox's http_2xx)."""
    count = round(args.rate * args.interval)
    config = {
        "watch": {"enabled": False},
        "defaults": {"interval": args.interval, "timeout": min(5.0, args.interval / 2)},
        "providers": {"nginx": {"type": "http", "base_url": url}},
        "targets": [
            {"name": f"t{i:05d}", "provider": "nginx", "path": PATH} for i in range(count)
        ],
    }
    path = directory / "pingmon.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return path


async def scrape(http: aiohttp.ClientSession, url: str) -> exposition.Reading:
    async with http.get(url + "/metrics") as response:
        return exposition.read(await response.text())


async def run_pingmon(
    variant: str, pingmon: str, url: str, args: argparse.Namespace, directory: Path
) -> Measure:
    """Checks: requests nginx answered in the window (only pingmon sends any then); failures:
    from two scrapes of pingmon's /metrics just outside it (their CPU is left out)."""
    config = pingmon_config(url, args, directory)
    daemon, base, _ = await processes.start_pingmon(pingmon, config, directory)
    timeout = aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            await asyncio.sleep(args.interval + args.warmup)  # every target has run once
            before = await scrape(http, base)
            n0 = await processes.nginx_requests(http, url)
            used0, t0 = process_usage(daemon.pid), time.monotonic()
            await asyncio.sleep(args.window)
            used1, t1 = process_usage(daemon.pid), time.monotonic()
            n1 = await processes.nginx_requests(http, url)
            rss = rss_mb(daemon.pid)
            after = await scrape(http, base)
    finally:
        await daemon.stop()
    failures = after.failures - before.failures
    lag = exposition.lag_quantile(before.lag_buckets, after.lag_buckets, 0.99)
    lag_ms = None if lag is None else lag * 1e3
    return Measure(variant, used1 - used0, t1 - t0, n1 - n0, failures, rss, lag_p99_ms=lag_ms)


# --- rounds and the table -------------------------------------------------------------------


def variants(args: argparse.Namespace) -> list[tuple[str, Callable[..., Any]]]:
    """(name, coroutine function of (url, args, directory)) in the first round's order."""
    found: list[tuple[str, Callable[..., Any]]] = [("blackbox", run_blackbox)]
    for pingmon in args.pingmon:
        name = pingmon_label(pingmon, len(args.pingmon) > 1)
        found.append((name, lambda u, a, d, p=pingmon, n=name: run_pingmon(n, p, u, a, d)))
    loop = "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    for bare in sorted({"asyncio", loop}):
        found.append((bare_name(bare, False), lambda u, a, d, lp=bare: run_bare(lp, u, a, d)))
    if not args.no_floor:
        found.append((bare_name(loop, True),
                      lambda u, a, d: run_bare(loop, u, a, d, scheduled=True)))  # fmt: skip
    return found


def pingmon_label(path: str, several: bool) -> str:
    """``pingmon``, or with several builds ``pingmon (main)`` for ``/work/main/.venv/bin/...``."""
    if not several:
        return "pingmon"
    parts = Path(path).resolve().parts
    home = parts[-4] if len(parts) >= 4 and parts[-3] == ".venv" else path
    return f"pingmon ({home})"


async def run_rounds(args: argparse.Namespace) -> list[list[Measure]]:
    order = [(name, lambda url, d, run=run: run(url, args, d)) for name, run in variants(args)]
    return await processes.alternating_rounds(
        "pingmon-vs-blackbox-", args.rounds, order, print_round,
        tolerated=(RuntimeError, OSError, TimeoutError, aiohttp.ClientError),
    )  # fmt: skip


def ratio(measure: Measure, blackbox: Measure | None) -> float | None:
    mine, theirs = measure.cpu_us_per_check, blackbox and blackbox.cpu_us_per_check
    return mine / theirs if mine is not None and theirs else None


def number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def print_round(k: int, measures: list[Measure]) -> None:
    blackbox = next((m for m in measures if m.variant == "blackbox"), None)
    print(f"\n### Round {k}\n")
    print("| variant | CPU µs per check | checks/s | failures | not sent | RSS MB | ÷ blackbox "
          "| wake-ups a check | system CPU | scheduler lag p99, ms |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for m in sorted(measures, key=lambda m: m.variant):
        print(
            f"| {m.variant} | {number(m.cpu_us_per_check)} | {number(m.checks_per_second, 1)} "
            f"| {m.failures:,.0f} | {m.not_sent:,} | {m.rss_mb:,.1f} "
            f"| {number(ratio(m, blackbox), 2)} | {number(m.wakeups_per_check, 2)} "
            f"| {percent(m.system_share)} | {number(m.lag_p99_ms, 1)} |"
        )
    sys.stdout.flush()


def print_summary(rounds: list[list[Measure]], args: argparse.Namespace) -> None:
    print(f"\n### Medians over {len(rounds)} round(s): rate {args.rate:g}/s, window "
          f"{args.window:g} s, pingmon interval {args.interval:g} s\n")  # fmt: skip
    print("| variant | CPU µs per check | checks/s | failures, not sent (sums) | RSS MB "
          "| ÷ blackbox | wake-ups a check | system CPU | scheduler lag p99, ms |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    names = sorted({m.variant for measures in rounds for m in measures})
    for name in names:
        mine = [m for measures in rounds for m in measures if m.variant == name]
        ratios = [ratio(m, next((b for b in r if b.variant == "blackbox"), None))
                  for r in rounds for m in r if m.variant == name]  # fmt: skip
        print(
            f"| {name} | {number(median(m.cpu_us_per_check for m in mine))} "
            f"| {number(median(m.checks_per_second for m in mine), 1)} "
            f"| {sum(m.failures for m in mine):,.0f}, {sum(m.not_sent for m in mine):,} "
            f"| {number(median(m.rss_mb for m in mine), 1)} "
            f"| {number(median(ratios), 2)} "
            f"| {number(median(m.wakeups_per_check for m in mine), 2)} "
            f"| {percent(median(m.system_share for m in mine))} "
            f"| {number(median(m.lag_p99_ms for m in mine), 1)} |"
        )
    print(f"\n{NOTE} CPU: utime + stime of the measured process (all threads) over the window; "
          "pingmon's checks: requests nginx answered in it. Wake-ups: voluntary context "
          "switches (sleeps it woke from); system CPU: the kernel's share; scheduler lag: "
          "pingmon's histogram, the floor's runs.")  # fmt: skip


def percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"


def median(values: Any) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    processes.round_options(parser, rate=500.0, rounds=3, window=20.0)
    parser.add_argument("--interval", type=parse_duration, default=10.0, help="pingmon's: 10s")
    parser.add_argument("--quick", action="store_true", help="rate 50, 1 round, 3 s windows")
    parser.add_argument(
        "--no-floor", action="store_true",
        help="leave out aiohttp-apscheduler-LOOP (the bare GETs started by pingmon's scheduler)",
    )  # fmt: skip
    parser.add_argument(
        "--driver-tick", type=parse_duration, default=DRIVER_TICK,
        help=f"the drivers launch the requests due every this ({DRIVER_TICK * 1e3:g}ms: "
        "pingmon's default timer_slack)",
    )  # fmt: skip
    parser.add_argument("--drive", help=argparse.SUPPRESS)
    parser.add_argument("--loop", default="asyncio", help=argparse.SUPPRESS)
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scheduled", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.rate, args.rounds, args.window, args.warmup, args.interval = 50.0, 1, 3.0, 1.0, 2.0
    args.pingmon = processes.pingmons(args)
    return args


def main() -> None:
    args = parse_args()
    if args.drive:
        run_driver(args)
        return
    if args.nice is not None:  # inherited by every process the run starts
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    missing = [p for p in ("nginx", "prometheus-blackbox-exporter") if not shutil.which(p)]
    if missing:
        sys.exit(f"vs_blackbox: not installed: {', '.join(missing)} (apt-get install -y "
                 "nginx-light prometheus-blackbox-exporter)")  # fmt: skip
    per_variant = 2 * args.warmup + args.window + args.interval + 120
    bound = args.rounds * len(variants(args)) * per_variant + 60
    try:
        rounds = asyncio.run(processes.until_signal(asyncio.wait_for(run_rounds(args), bound)))
    except asyncio.CancelledError:
        sys.exit("vs_blackbox: interrupted")
    print_summary(rounds, args)


if __name__ == "__main__":
    main()
