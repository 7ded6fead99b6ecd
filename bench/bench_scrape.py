"""Benchmark of one ``/metrics`` scrape: the daemon's CPU, the bytes, the series per target;
a build against another (e.g. main's) in one run; run by hand.

    python bench/bench_scrape.py --targets 1000 10000 --old /work/main

For each build, target count and metrics profile (the old build: ``default`` only, unless it
knows ``metrics.profile``), a real daemon (``python -m pingmon run``, the build's own
interpreter and checkout) checks N ``http`` targets on a minimal keep-alive server in this
process, at most ``--rate`` checks a second. Once every target has a result, ``--scrapes``
times: a plain scrape, then one with ``Accept-Encoding: gzip`` (as Prometheus sends it), each
after an idle moment, and at least ``--gap`` seconds after the one before (e.g. ``--rate 1000
--gap 15`` at 10,000 targets: every target has a new result between two scrapes, as with
Prometheus every 15 s; the default 0 leaves most targets as the last scrape saw them, and the
gzip form compresses only what changed). The daemon's CPU for a scrape is the CPU time of
all its threads (``/proc/PID/task/*/schedstat``, nanoseconds) during the scrape, less the idle
moment's rate (the checks going on) times the scrape's duration. Medians are printed.

Then, in this process (this checkout), what rendering on change costs: CPU per recorded
result with the metrics watching the store, less the same records on a bare store.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n"
    b'Connection: keep-alive\r\n\r\n{"status":"ok"}'
)
HERE = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 120.0
IDLE_SECONDS = 1.0
REUSE_GAP = 10.0


class TargetProtocol(asyncio.Protocol):
    """Answers every request (a GET: it ends at a blank line) with RESPONSE."""

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


@dataclass(frozen=True)
class Build:
    name: str
    python: str
    checkout: Path


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of ``pid`` so far, in nanoseconds."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):  # a thread that just ended
            continue
    return total


def write_config(directory: Path, targets: int, port: int, profile: str, rate: float) -> Path:
    interval = max(5.0, targets / rate)
    config: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "concurrency": 200,
        "defaults": {"interval": interval, "timeout": 2.0, "jitter": 0},
        "providers": {"loop": {"type": "http", "base_url": f"http://127.0.0.1:{port}"}},
        "targets": [
            {"name": f"target-{i:05d}", "provider": "loop", "path": "/healthz",
             "expect": {"status": [200], "json": {"status": "ok"}}}
            for i in range(targets)
        ],
    }  # fmt: skip
    if profile != "default":
        config["metrics"] = {"profile": profile}
    path = directory / f"pingmon-{targets}-{profile}.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def address_in(log: Path) -> str | None:
    """The address of the daemon's JSON log line "listening", once it is there."""
    for line in log.read_text().splitlines():
        if '"listening"' in line:
            address: str = json.loads(line)["address"]
            return address
    return None


async def listening(log: Path, daemon: asyncio.subprocess.Process) -> str:
    """The address the daemon listens on (port 0: the kernel chose it)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline and daemon.returncode is None:
        if address := address_in(log):
            return address
        await asyncio.sleep(0.5)
    raise TimeoutError("the daemon did not start listening")


@dataclass
class Scrape:
    cpu_ms: float
    seconds: float
    size: int
    asked_gzip: bool
    got_gzip: bool
    body: bytes


async def idle_rate(pid: int) -> float:
    """The daemon's CPU per second while nobody scrapes (its checks), in ns/s."""
    start_ns, start = cpu_ns(pid), time.monotonic()
    await asyncio.sleep(IDLE_SECONDS)
    return (cpu_ns(pid) - start_ns) / (time.monotonic() - start)


async def scrape(
    http: aiohttp.ClientSession,
    url: str,
    pid: int,
    gzip: bool,
    previous: Scrape | None,
    gap: float = 0.0,
) -> Scrape:
    """One scrape; its CPU less the checks' (the mean idle rate before and after it).
    Long enough after the previous one that the daemon renders afresh (both builds hand a
    render to scrapes that follow within 9 times its cost), as with scrapes 15 s apart."""
    if previous is not None:
        await asyncio.sleep(max(REUSE_GAP * previous.seconds, gap - IDLE_SECONDS))
    rate_before = await idle_rate(pid)
    before, started = cpu_ns(pid), time.monotonic()
    headers = {"Accept-Encoding": "gzip" if gzip else "identity"}
    async with http.get(url, headers=headers) as response:
        body = await response.read()
        compressed = response.headers.get("Content-Encoding") == "gzip"
    seconds = time.monotonic() - started
    used = cpu_ns(pid) - before
    rate = (rate_before + await idle_rate(pid)) / 2
    return Scrape((used - rate * seconds) / 1e6, seconds, len(body), gzip, compressed, body)


async def wait_all_checked(http: aiohttp.ClientSession, base: str, targets: int) -> None:
    """Until /status shows a result for every target (polled every few seconds)."""
    deadline = time.monotonic() + READY_TIMEOUT + targets / 100
    while time.monotonic() < deadline:
        try:
            async with http.get(base + "/status") as response:
                status = await response.json()
            if sum(1 for t in status["targets"] if t.get("last_run")) >= targets:
                return
        except (aiohttp.ClientError, ValueError, KeyError):
            pass
        await asyncio.sleep(3.0)
    raise TimeoutError("not every target was checked in time")


async def run_one(
    build: Build, targets: int, profile: str, args: argparse.Namespace, directory: Path
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(TargetProtocol, "127.0.0.1", 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    config = write_config(directory, targets, port, profile, args.rate)
    log_path = directory / f"{build.name}-{targets}-{profile}.log"
    log = log_path.open("w")
    env = {**os.environ, "PYTHONPATH": str(build.checkout)}
    daemon = await asyncio.create_subprocess_exec(
        build.python, "-m", "pingmon", "run", "--config", str(config),
        cwd=build.checkout, stdout=log, stderr=log, env=env,
    )  # fmt: skip
    timeout = aiohttp.ClientTimeout(total=120)
    try:
        base = f"http://{await listening(log_path, daemon)}"
        async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as http:
            await wait_all_checked(http, base, targets)
            scrapes: list[Scrape] = []
            for _ in range(args.scrapes):
                for gzip in (False, True):
                    last = scrapes[-1] if scrapes else None
                    url = base + "/metrics"
                    scrapes.append(await scrape(http, url, daemon.pid, gzip, last, args.gap))
    except Exception:
        print(log_path.read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        if daemon.returncode is None:
            daemon.terminate()
            await asyncio.wait_for(daemon.wait(), timeout=30)
        log.close()
        server.close()
    return summarize(build.name, targets, profile, scrapes)


def summarize(name: str, targets: int, profile: str, scrapes: list[Scrape]) -> dict[str, Any]:
    plain = [s for s in scrapes if not s.asked_gzip]
    gzip_scrapes = [s for s in scrapes if s.asked_gzip and s.got_gzip]
    body = plain[-1].body
    lines = [line for line in body.split(b"\n") if line and not line.startswith(b"#")]
    per_target = sum(1 for line in lines if b'target="target-' in line) / targets
    return {
        "build": name,
        "targets": targets,
        "profile": profile,
        "series_per_target": round(per_target, 1),
        "plain_bytes": len(body),
        "plain_cpu_ms": round(statistics.median(s.cpu_ms for s in plain), 1),
        "plain_seconds": round(statistics.median(s.seconds for s in plain), 3),
        "gzip_bytes": gzip_scrapes[-1].size if gzip_scrapes else None,
        "gzip_cpu_ms": round(statistics.median(s.cpu_ms for s in gzip_scrapes), 1)
        if gzip_scrapes
        else None,
        "gzip_served": bool(gzip_scrapes),
    }


def render_on_change_us(targets: int, profile: str, records: int = 20_000) -> float:
    """CPU-µs a recorded result costs for its re-render (this checkout), in the steady
    state: every target has a result already."""
    from pingmon.errors import ErrorClass
    from pingmon.metrics import Metrics
    from pingmon.results import CheckResult, ResultStore, TargetInfo

    infos = [TargetInfo(f"target-{i:05d}", "loop", "http", 10.0, "c") for i in range(targets)]
    classes = (ErrorClass.NONE, ErrorClass.NONE, ErrorClass.NONE, ErrorClass.TIMEOUT)
    results = [
        CheckResult(infos[i % targets].name, "loop", classes[i % 4], 200, 0.001 * (i % 300),
                    1, "", 1.7e9 + i)
        for i in range(records)
    ]  # fmt: skip

    def cost(watched: bool) -> float:
        store = ResultStore()
        store.configure(infos)
        if watched:
            Metrics(store, dict, profile=profile)
        for result in results:  # every target checked: its templates are made
            store.record(result)
        started = time.process_time()
        for result in results:
            store.record(result)
        return time.process_time() - started

    bare = min(cost(False) for _ in range(3))
    watched = min(cost(True) for _ in range(3))
    return round((watched - bare) / records * 1e6, 2)


def builds(args: argparse.Namespace) -> list[Build]:
    found = []
    if args.old:
        old = Path(args.old)
        found.append(Build("old", str(old / ".venv" / "bin" / "python"), old))
    found.append(Build("new", sys.executable, HERE))
    return found


def knows_profiles(build: Build) -> bool:
    code = "import pingmon.config as c; raise SystemExit('metrics' not in c.Settings.model_fields)"
    env = {**os.environ, "PYTHONPATH": str(build.checkout)}
    done = subprocess.run([build.python, "-c", code], cwd=build.checkout, env=env, check=False)
    return done.returncode == 0


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="pingmon-bench-scrape-") as directory:
        for build in builds(args):
            known = ["default", "lean"] if knows_profiles(build) else ["default"]
            profiles = [profile for profile in known if profile in args.profiles]
            for targets in args.targets:
                for profile in profiles:
                    row = await run_one(build, targets, profile, args, Path(directory))
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--old", help="a checkout with its .venv, e.g. /work/main")
    parser.add_argument("--scrapes", type=int, default=3, help="of each kind (plain, gzip)")
    parser.add_argument("--rate", type=float, default=100.0, help="checks a second, at most")
    parser.add_argument("--gap", type=float, default=0.0, help="seconds between scrapes, at least")
    parser.add_argument("--profiles", nargs="+", default=["default", "lean"])
    args = parser.parse_args()
    rows = asyncio.run(main_async(args))
    print()
    print("| build | targets | profile | series/target | plain bytes | plain CPU ms | "
          "gzip bytes | gzip CPU ms |")  # fmt: skip
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        gzip_bytes = f"{r['gzip_bytes']:,}" if r["gzip_served"] else "(not served)"
        gzip_cpu = r["gzip_cpu_ms"] if r["gzip_served"] else "—"
        head = f"| {r['build']} | {r['targets']:,} | {r['profile']} | {r['series_per_target']} "
        print(f"{head}| {r['plain_bytes']:,} | {r['plain_cpu_ms']} | {gzip_bytes} | {gzip_cpu} |")
    print()
    for profile in args.profiles:
        cost = render_on_change_us(max(args.targets), profile)
        print(f"render on change ({profile}): {cost} CPU-µs per recorded result")


if __name__ == "__main__":
    main()
