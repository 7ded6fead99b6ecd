"""Benchmark of the pingmon daemon against a fast loopback HTTP target; run by hand.

    python bench/bench_daemon.py --targets 1000 --interval 1s --duration 20 --warmup 5

Three processes, all on 127.0.0.1:

- this one runs the daemon through ``serve()`` (HTTP server included) and measures it;
- a target server (this script with ``--target-server``): a minimal ``asyncio.Protocol``
  answering every request ``200 {"status":"ok"}`` on keep-alive connections;
- a scraper (``--scraper``): fetches ``/metrics`` with aiohttp when told to, and reports the
  response time, size and series count, so that reading a large body costs the daemon nothing,
  as with a real Prometheus.

After the warm-up, for ``--duration`` seconds: checks per second and failures (from the result
store), CPU per check (``getrusage`` of this process: the daemon, its scrapes included), scheduler
lag (raw values, see ``LagRecorder``), garbage-collector pauses, RSS, and a few scrapes evenly
spread. Once the daemon has stopped: direct render timings (they block the loop for as long as
they take, the generic one for seconds at 10,000 targets). SIGINT/SIGTERM end the run early.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import json
import logging
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client import generate_latest

from pingmon.config import load_config
from pingmon.daemon import Daemon
from pingmon.errors import ErrorClass
from pingmon.fields import parse_duration
from pingmon.service import serve

RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: 15\r\n"
    b"Connection: keep-alive\r\n"
    b"\r\n"
    b'{"status":"ok"}'
)
CHILD_START_TIMEOUT = 20.0
STARTUP_TIMEOUT = 30.0  # config load and scheduling of 10,000 targets take about 5 s
SCRAPE_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


# --- child processes: target server and scraper ------------------------------------------


class TargetProtocol(asyncio.Protocol):
    """Answers every request with RESPONSE; a request ends at a blank line (GETs, no body)."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        count = self._buffer.count(b"\r\n\r\n")
        if count and self._transport is not None:
            self._buffer = self._buffer.rsplit(b"\r\n\r\n", 1)[1]
            self._transport.write(RESPONSE * count)


async def run_target_server() -> None:
    """Child: serve on 127.0.0.1:0, print the port, run until terminated."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(TargetProtocol, "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


@dataclass
class Scrape:
    """One ``/metrics`` fetch, as the scraper saw it; ``cpu`` is the daemon's CPU meanwhile."""

    seconds: float
    size: int
    series: int
    target_series: int
    cpu: float = 0.0


async def fetch(session: aiohttp.ClientSession, url: str) -> Scrape:
    started = time.perf_counter()
    async with session.get(url) as response:
        response.raise_for_status()
        body = await response.read()
    elapsed = time.perf_counter() - started
    comments = body.count(b"\n#") + body.startswith(b"#")
    series = body.count(b"\n") - comments  # lines not starting with '#'
    return Scrape(elapsed, len(body), series, body.count(b'target="'))


async def run_scraper() -> None:
    """Child: print "ready", then for each URL read on stdin, fetch it and print a JSON line."""
    loop = asyncio.get_running_loop()
    timeout = aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        print("ready", flush=True)
        while url := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
            print(json.dumps(asdict(await fetch(session, url))), flush=True)


class Child:
    """This script in another mode, talking over its stdin/stdout lines."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, mode: str) -> tuple[Child, str]:
        """Start it and read its first line (a port, or "ready")."""
        pipe = asyncio.subprocess.PIPE
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, mode, stdin=pipe, stdout=pipe
        )
        child = cls(proc)
        try:
            return child, await child.read_line(CHILD_START_TIMEOUT)
        except BaseException:
            await child.stop()
            raise

    async def read_line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"child {self.proc.pid} exited early")
        return line.decode().strip()

    async def scrape(self, url: str) -> Scrape:
        assert self.proc.stdin is not None
        cpu = cpu_seconds()
        self.proc.stdin.write(url.encode() + b"\n")
        await self.proc.stdin.drain()
        result = Scrape(**json.loads(await self.read_line(SCRAPE_TIMEOUT)))
        result.cpu = cpu_seconds() - cpu
        return result

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), timeout=5)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


# --- configuration ---------------------------------------------------------------------


def write_config(args: argparse.Namespace, port: int, directory: str) -> Path:
    """N http targets on the loopback server; JSON is YAML, so the file is plain JSON."""
    interval = parse_duration(args.interval)
    targets = [
        {
            "name": f"t{i}",
            "provider": "loop",
            "path": f"/t{i}",
            "expect": {"status": [200], "json": {"status": "ok"}},
        }
        for i in range(args.targets)
    ]
    config = {
        "listen": "127.0.0.1:0",
        "concurrency": args.concurrency,
        "latency_histogram": args.latency_histogram,
        "defaults": {"interval": interval, "timeout": min(5.0, interval / 2), "jitter": 0.1},
        "providers": {"loop": {"type": "http", "base_url": f"http://127.0.0.1:{port}"}},
        "targets": targets,
    }
    path = Path(directory) / "pingmon-bench.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


# --- measurement -----------------------------------------------------------------------


class LagRecorder:
    """Wraps the scheduler's lag observer: keeps raw values while recording, then calls the
    original (the histogram). Installed on ``daemon.scheduler._observe_lag`` (a private
    attribute; the bench's only intrusion) from ``on_started``: values before the window are
    not kept, so installing it after the start loses nothing.
    """

    def __init__(self, original: Callable[[float], None]) -> None:
        self.original = original
        self.values: list[float] = []
        self.recording = False

    def __call__(self, lag: float) -> None:
        if self.recording:
            self.values.append(lag)
        self.original(lag)


class GcRecorder:
    """Pauses of the garbage collector while recording: a full collection of a large heap
    stalls the loop like any other work. Reports (generation, seconds) pairs."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self.recording = False
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self.recording:
            self.pauses.append((info["generation"], time.perf_counter() - self._started))


class LogCounter(logging.Handler):
    """Counts pingmon's warnings and errors by message, and passes the first few of each
    message on to stderr (a flood of identical tracebacks says nothing more)."""

    def __init__(self, shown: int = 3) -> None:
        super().__init__(logging.WARNING)
        self.counts: dict[str, int] = {}
        self._shown = shown
        self._stderr = logging.StreamHandler()

    def emit(self, record: logging.LogRecord) -> None:
        key = f"{record.levelname}: {record.getMessage()}"
        self.counts[key] = self.counts.get(key, 0) + 1
        if self.counts[key] <= self._shown:
            self._stderr.handle(record)


@dataclass
class Counts:
    checks: int
    failures: dict[str, int]


def count_checks(daemon: Daemon) -> Counts:
    total = 0
    failures: dict[str, int] = {}
    for state in daemon.store.snapshot():
        for error_class, n in state.checks_by_class:
            total += n
            if error_class is not ErrorClass.NONE:
                failures[error_class.value] = failures.get(error_class.value, 0) + n
    return Counts(total, failures)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mb() -> float:
    """Current resident set size, from /proc (Linux only, as ``ru_maxrss`` in KiB is)."""
    status = Path("/proc/self/status").read_text(encoding="ascii")
    kb = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(kb) / 1024


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Window:
    seconds: float
    checks: int
    failures: dict[str, int]
    cpu: float
    lags: list[float]
    gc_pauses: list[tuple[int, float]]
    rss_start_mb: float
    peak_rss_mb: float
    scrapes: list[Scrape] = field(default_factory=list)


def difference(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0)}


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived during the run."""


async def sleep_until(deadline: float, stop: asyncio.Event) -> None:
    """Sleep until ``deadline`` (monotonic); the daemon's stop (SIGINT, SIGTERM) aborts the run."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        return
    raise Interrupted("interrupted: the daemon was told to stop")


async def measure(
    daemon: Daemon, url: str, lag: LagRecorder, scraper: Child, args: argparse.Namespace,
    stop: asyncio.Event,
) -> Window:  # fmt: skip
    """The window: counters before and after, scrapes evenly spread in it."""
    rss_start = rss_mb()
    gc_pauses = GcRecorder()
    gc.callbacks.append(gc_pauses)
    before, cpu0, t0 = count_checks(daemon), cpu_seconds(), time.monotonic()
    lag.recording = gc_pauses.recording = True
    scrapes = []
    for k in range(args.scrapes):
        await sleep_until(t0 + args.duration * (k + 0.5) / args.scrapes, stop)
        scrapes.append(await scraper.scrape(url))
    await sleep_until(t0 + args.duration, stop)
    lag.recording = gc_pauses.recording = False
    after, cpu1, t1 = count_checks(daemon), cpu_seconds(), time.monotonic()
    gc.callbacks.remove(gc_pauses)
    failures = difference(after.failures, before.failures)
    return Window(
        t1 - t0, after.checks - before.checks, failures, cpu1 - cpu0, lag.values,
        gc_pauses.pauses, rss_start, peak_rss_mb(), scrapes,
    )  # fmt: skip


def time_renders(daemon: Daemon) -> tuple[float, float]:
    """Median of 5 of the daemon's own renderer, and prometheus-client's generic one (once)."""
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        daemon.metrics.render(False)
        runs.append(time.perf_counter() - started)
    started = time.perf_counter()
    generate_latest(daemon.metrics.registry)
    return statistics.median(runs), time.perf_counter() - started


# --- the run ---------------------------------------------------------------------------


async def run_daemon(
    args: argparse.Namespace, config_path: Path, scraper: Child
) -> dict[str, Any]:
    begun = time.perf_counter()
    config = load_config(config_path)
    stop = asyncio.Event()  # serve() sets it on SIGINT/SIGTERM, and so do we
    started: asyncio.Future[tuple[Daemon, str]] = asyncio.get_running_loop().create_future()

    async def on_started(daemon: Daemon, address: str) -> None:
        started.set_result((daemon, address))

    service = asyncio.create_task(serve(config, on_started=on_started, stop=stop))
    try:
        daemon, address = await wait_started(started, service)
        startup = time.perf_counter() - begun
        lag = LagRecorder(daemon.scheduler._observe_lag)
        daemon.scheduler._observe_lag = lag
        await sleep_until(time.monotonic() + args.warmup, stop)
        window = await measure(daemon, f"http://{address}/metrics", lag, scraper, args, stop)
    finally:
        stop.set()  # what SIGTERM does
        stopping = time.perf_counter()
        await asyncio.wait_for(service, timeout=STOP_TIMEOUT)
    stop_seconds = time.perf_counter() - stopping
    # After the stop: the renders block the loop (the generic one for seconds at 10,000
    # targets) and would otherwise compete with checks; the store outlives the daemon.
    render, generic = time_renders(daemon)
    seconds = {"render": render, "generic": generic, "startup": startup, "stop": stop_seconds}
    return figures(args, window, seconds)


async def wait_started(
    started: asyncio.Future[tuple[Daemon, str]], service: asyncio.Task[None]
) -> tuple[Daemon, str]:
    waiting: set[asyncio.Future[Any]] = {started, service}
    done, _ = await asyncio.wait(
        waiting, timeout=STARTUP_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
    )
    if started in done:
        return started.result()
    if service in done:
        service.result()  # raises what stopped it
    raise RuntimeError("the daemon did not start in time")


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    """Everything, bounded in time; the children are stopped whatever happens."""
    logs = LogCounter()
    logging.getLogger("pingmon").addHandler(logs)
    result = await run_all(args)
    return {**result, "pingmon_warnings_and_errors": logs.counts, "versions": versions()}


async def run_all(args: argparse.Namespace) -> dict[str, Any]:
    bound = 2 * CHILD_START_TIMEOUT + STARTUP_TIMEOUT + args.warmup + args.duration + 30
    children: list[Child] = []
    try:
        async with asyncio.timeout(bound):
            target, port = await Child.start("--target-server")
            children.append(target)
            scraper, _ = await Child.start("--scraper")
            children.append(scraper)
            with tempfile.TemporaryDirectory(prefix="pingmon-bench-") as directory:
                path = write_config(args, int(port), directory)
                return await run_daemon(args, path, scraper)
    finally:
        for child in children:
            await child.stop()


# --- figures ---------------------------------------------------------------------------


def quantile(values: list[float], q: float) -> float | None:
    """Nearest-rank quantile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def ms(seconds: float | None) -> float | None:
    """Milliseconds, rounded; None stays None."""
    return None if seconds is None else round(seconds * 1e3, 2)


def per_check(cpu: float, checks: int) -> float | None:
    return round(cpu / checks * 1e6, 1) if checks else None


def versions() -> dict[str, str]:
    return {
        "python": sys.version.split()[0],
        "aiohttp": aiohttp.__version__,
        "apscheduler": importlib.metadata.version("APScheduler"),
        "prometheus_client": importlib.metadata.version("prometheus-client"),
    }


def figures(args: argparse.Namespace, w: Window, seconds: dict[str, float]) -> dict[str, Any]:
    """Every figure, in table order; None where there was nothing to measure."""
    interval = parse_duration(args.interval)
    return {
        "targets": args.targets,
        "interval_seconds": interval,
        "concurrency": args.concurrency,
        "latency_histogram": args.latency_histogram,
        "window_seconds": round(w.seconds, 2),
        "expected_checks_per_second": round(args.targets / interval, 1),
        **throughput(w, args.targets),
        "lag_samples": len(w.lags),
        "lag_p50_ms": ms(quantile(w.lags, 0.5)),
        "lag_p99_ms": ms(quantile(w.lags, 0.99)),
        "lag_max_ms": ms(max(w.lags, default=None)),
        "gc_collections_gen2": sum(1 for generation, _ in w.gc_pauses if generation == 2),
        "gc_max_pause_ms": ms(max((pause for _, pause in w.gc_pauses), default=None)),
        "rss_at_window_start_mb": round(w.rss_start_mb, 1),
        "peak_rss_mb": round(w.peak_rss_mb, 1),
        **scrape_figures(w.scrapes, args.targets),
        "render_direct_median_ms": ms(seconds["render"]),
        "render_generic_prometheus_client_ms": ms(seconds["generic"]),
        "startup_seconds": round(seconds["startup"], 2),
        "stop_seconds": round(seconds["stop"], 2),
    }


def throughput(w: Window, targets: int) -> dict[str, Any]:
    scrape_cpu = sum(s.cpu for s in w.scrapes)
    rate = w.checks / w.seconds
    return {
        "checks_per_second": round(rate, 1),
        "mean_interval_seconds": round(targets / rate, 3) if rate else None,
        "checks": w.checks,
        "failures": sum(w.failures.values()),
        "failures_by_class": w.failures,
        "cpu_us_per_check": per_check(w.cpu, w.checks),
        "cpu_us_per_check_without_scrapes": per_check(w.cpu - scrape_cpu, w.checks),
        "cpu_percent": round(w.cpu / w.seconds * 100, 1),
    }


def scrape_figures(scrapes: list[Scrape], targets: int) -> dict[str, Any]:
    times = [s.seconds for s in scrapes]
    last = scrapes[-1] if scrapes else None
    return {
        "metrics_scrapes": len(scrapes),
        "metrics_http_median_ms": ms(statistics.median(times)) if times else None,
        "metrics_http_max_ms": ms(max(times, default=None)),
        "metrics_daemon_cpu_ms_per_scrape": ms(statistics.mean(s.cpu for s in scrapes))
        if scrapes
        else None,
        "metrics_bytes": last and last.size,
        "metrics_series": last and last.series,
        "metrics_series_per_target": last and round(last.target_series / targets, 1),
    }


def print_table(result: dict[str, Any]) -> None:
    width = max(len(key) for key in result)
    for key, value in result.items():
        shown = json.dumps(value) if isinstance(value, dict | bool | None) else str(value)
        print(f"{key:<{width}}  {shown}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--interval", default="1s", help="a duration: 500ms, 1s, 10s")
    parser.add_argument("--duration", type=float, default=20.0, help="window, seconds")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before the window")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--latency-histogram", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--scrapes", type=int, default=5, help="/metrics fetches in the window")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--target-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scraper", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    if args.target_server or args.scraper:
        asyncio.run(run_target_server() if args.target_server else run_scraper())
        return
    try:
        result = asyncio.run(main_async(args))
    except Interrupted as error:
        sys.exit(f"bench_daemon: {error}")
    if not args.json:
        print_table(result)
    print(json.dumps(result))
    sys.exit(0 if result["checks"] else 1)


if __name__ == "__main__":
    main()
