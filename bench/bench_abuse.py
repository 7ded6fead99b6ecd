"""Benchmark of pingmon's own server under four abuses, and what they cost the checks.

    python bench/bench_abuse.py                      # this checkout's pingmon
    python bench/bench_abuse.py --pingmon /work/main/.venv/bin/pingmon   # another build

Each scenario starts a fresh ``pingmon run`` for each ``--pingmon`` build in turn (so that
builds are compared under the same load of the machine): a child process with ``--targets``
http targets (1,000) at ``--interval`` (1 s), timeout ``--timeout`` (800 ms), on a minimal
keep-alive target server (a child process) that closes a connection after every
``--close-every`` (100) answers, as servers do, so pingmon opens a socket now and then.
It waits ``--warmup``
seconds, then abuses the daemon's server for ``--duration`` seconds while a prober asks
``/-/healthy`` every 0.25 s (a new connection each time, as a kubelet does):

- ``quiet``: no abuse, the noise floor of the machine;
- ``slowloris``: ``--slowloris`` connections (1,100) each send half a request, then one
  byte every 5 s; the daemon runs under ``RLIMIT_NOFILE`` ``--nofile`` (1,024);
- ``scrape-flood``: ``--scrapers`` (50) clients fetch ``/metrics`` in a loop (``wrk`` when
  installed, else aiohttp in a child process);
- ``slow-readers``: ``--readers`` (500) clients ask for ``/metrics`` with a 4 KiB receive
  buffer and never read;
- ``status-flood``: ``--status-clients`` (10) clients fetch ``/status`` in a loop (the same).

Then the abusers leave, and after 2 s the daemon's own metrics say what the checks paid:
checks and failures by class (deltas of ``pingmon_checks_total``), scheduler lag (deltas of
``pingmon_scheduler_lag_seconds``: p99 interpolated within its buckets as
``histogram_quantile`` does, and the share above 50 ms). RSS and open descriptors come from
``/proc``, log bytes from the daemon's stderr. All traffic is on 127.0.0.1; every process
started is stopped by its PID; SIGINT ends the run early.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from exposition import lag_quantile, share_above

START_TIMEOUT = 60.0
SETTLE_SECONDS = 2.0
PROBE_EVERY = 0.25
PROBE_TIMEOUT = 5.0
SLOWLORIS_BYTE_EVERY = 5.0
LAG_BOUNDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, float("inf"))
SCENARIOS = ("quiet", "slowloris", "scrape-flood", "slow-readers", "status-flood")


# --- the daemon ------------------------------------------------------------------------


@dataclass
class Daemon:
    """``pingmon run`` in a child process, its stderr in a file."""

    proc: asyncio.subprocess.Process
    url: str
    stderr: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_mb(self) -> float | None:
        try:
            status = Path(f"/proc/{self.pid}/status").read_text(encoding="ascii")
        except OSError:
            return None
        kb = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
        return round(int(kb) / 1024, 1)

    def fds(self) -> int | None:
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return None

    def cpu(self) -> float:
        """CPU seconds (user + system) the daemon has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_bytes(self) -> int:
        return self.stderr.stat().st_size

    async def stop(self) -> int | None:
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        return self.proc.returncode


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(
    directory: Path, args: argparse.Namespace, target_port: int, listen_port: int
) -> Path:
    """N http targets on the target server; JSON is YAML. No ``server:`` section, so that
    any build reads it (each uses its defaults)."""
    config = {
        "listen": f"127.0.0.1:{listen_port}",
        "watch": {"enabled": False},
        "defaults": {"interval": args.interval, "timeout": args.timeout},
        "providers": {"loop": {"type": "http", "base_url": f"http://127.0.0.1:{target_port}"}},
        "targets": [
            {"name": f"t{i:05d}", "provider": "loop", "path": f"/t{i}"}
            for i in range(args.targets)
        ],
    }
    path = directory / "pingmon-abuse.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


async def start_daemon(
    pingmon: str, config: Path, port: int, nofile: int | None, directory: Path
) -> Daemon:
    stderr = directory / "pingmon.stderr"

    def limit() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    with stderr.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            *(pingmon, "run", "--config", str(config)),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            preexec_fn=limit,
        )
    daemon = Daemon(proc, f"http://127.0.0.1:{port}", stderr)
    deadline = time.monotonic() + START_TIMEOUT
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                tail = stderr.read_text()[-500:]
                raise RuntimeError(f"pingmon exited {proc.returncode}: {tail}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(daemon.url + "/-/ready") as response:
                    if response.status == 200:
                        return daemon
            await asyncio.sleep(0.2)
    await daemon.stop()
    raise RuntimeError("pingmon did not become ready")


# --- what the daemon says about its checks ---------------------------------------------


@dataclass
class Counts:
    checks_by_class: dict[str, float]
    lag_buckets: dict[float, float]  # le -> cumulative count
    exhaustion: float


_CHECKS = re.compile(r'^pingmon_checks_total\{[^}]*error_class="([a-z_]+)"\} (\S+)$', re.M)
_LAG = re.compile(r'^pingmon_scheduler_lag_seconds_bucket\{le="([^"]+)"\} (\S+)$', re.M)
_EXHAUSTION = re.compile(r"^pingmon_resource_exhaustion_total\{[^}]*\} (\S+)$", re.M)


async def read_counts(url: str, patience: float = 60.0) -> Counts:
    """From one scrape of /metrics; retried while pingmon cannot answer (it may be flooded)."""
    text = await scrape(url + "/metrics", patience)
    checks: dict[str, float] = {}
    for error_class, value in _CHECKS.findall(text):
        checks[error_class] = checks.get(error_class, 0.0) + float(value)
    lag = {float(le): float(value) for le, value in _LAG.findall(text)}
    return Counts(checks, lag, sum(float(v) for v in _EXHAUSTION.findall(text)))


async def scrape(url: str, patience: float) -> str:
    deadline = time.monotonic() + patience
    timeout = aiohttp.ClientTimeout(total=30)
    while True:
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.get(url) as response,
            ):
                return await response.text()
        except (aiohttp.ClientError, OSError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


# --- probes and samples while the abuse goes on ----------------------------------------


@dataclass
class Watch:
    """/-/healthy probes, RSS and descriptors sampled while the abuse runs."""

    probes: list[float | None] = field(default_factory=list)  # seconds, None: failed
    rss: list[float] = field(default_factory=list)
    fds: list[int] = field(default_factory=list)


async def watch(daemon: Daemon, seconds: float) -> Watch:
    seen = Watch()
    deadline = time.monotonic() + seconds
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT)
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:  # a fresh connection each time, as a kubelet probe
            async with (
                aiohttp.ClientSession(
                    timeout=timeout, connector=aiohttp.TCPConnector(force_close=True)
                ) as http,
                http.get(daemon.url + "/-/healthy") as response,
            ):
                await response.read()
                ok = response.status == 200
            seen.probes.append(time.perf_counter() - started if ok else None)
        except (aiohttp.ClientError, OSError, TimeoutError):
            seen.probes.append(None)
        if (rss := daemon.rss_mb()) is not None:
            seen.rss.append(rss)
        if (fds := daemon.fds()) is not None:
            seen.fds.append(fds)
        await asyncio.sleep(max(0.0, PROBE_EVERY - (time.perf_counter() - started)))
    return seen


# --- the abuses ------------------------------------------------------------------------


def raise_own_nofile() -> None:
    """This process holds one socket per abusive client."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def open_sockets(
    port: int, count: int, first_bytes: bytes, rcvbuf: int | None = None
) -> list[socket.socket]:
    loop = asyncio.get_running_loop()
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), 5)
            await asyncio.wait_for(loop.sock_sendall(sock, first_bytes), 5)
        except (OSError, TimeoutError):
            sock.close()
            break
        sockets.append(sock)
    return sockets


def closed_by_server(sock: socket.socket) -> bool:
    """Drain what is readable; True if the server closed or reset the connection."""
    try:
        while True:
            if not sock.recv(65536):
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


async def slowloris(daemon: Daemon, port: int, args: argparse.Namespace) -> dict[str, Any]:
    sockets = await open_sockets(port, args.slowloris, b"GET /metrics HTTP/1.1\r\nHost: x\r\n")

    async def trickle() -> None:
        while True:
            await asyncio.sleep(SLOWLORIS_BYTE_EVERY)
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.send(b"X")

    trickling = asyncio.create_task(trickle())
    try:
        seen = await watch(daemon, args.duration)
    finally:
        trickling.cancel()
    closed = sum(closed_by_server(sock) for sock in sockets)
    for sock in sockets:
        sock.close()
    return {"opened": len(sockets), "closed_by_pingmon": closed, "watch": seen}


async def slow_readers(daemon: Daemon, port: int, args: argparse.Namespace) -> dict[str, Any]:
    request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
    sockets = await open_sockets(port, args.readers, request, rcvbuf=4096)
    seen = await watch(daemon, args.duration)
    closed = sum(closed_by_server(sock) for sock in sockets)
    for sock in sockets:
        sock.close()
    await asyncio.sleep(SETTLE_SECONDS)
    return {
        "opened": len(sockets),
        "closed_by_pingmon": closed,
        "rss_mb_after_they_left": daemon.rss_mb(),
        "watch": seen,
    }


async def flood(
    daemon: Daemon, path: str, clients: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Clients in a child process fetching ``path`` in a loop: ``wrk`` (C, one thread, so
    the clients take little of the CPU the daemon needs), else this script's ``--flooder``."""
    url, seconds = daemon.url + path, args.duration
    if args.wrk:
        command = ["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--latency", "--timeout",
                   "30s", url]  # fmt: skip
    else:
        command = [sys.executable, __file__, "--flooder", url, str(clients), str(seconds)]
    child = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
    try:
        seen, output = await asyncio.gather(watch(daemon, seconds), child.communicate())
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    text = output[0].decode()
    report = wrk_report(text, seconds) if args.wrk else json.loads(text.strip().splitlines()[-1])
    return {"client": "wrk" if args.wrk else "aiohttp", **report, "watch": seen}


_WRK_PERCENTILE = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_WRK_REQUESTS = re.compile(r"^\s+(\d+) requests in", re.M)
_WRK_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_WRK_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def wrk_report(text: str, seconds: float) -> dict[str, Any]:
    """The figures of ``wrk --latency``'s report, named as the aiohttp flooder names them."""
    percentiles = {q: float(v) * _UNITS[u] for q, v, u in _WRK_PERCENTILE.findall(text)}
    requests = _WRK_REQUESTS.search(text)
    errors = _WRK_ERRORS.search(text)
    non_2xx = _WRK_NON_2XX.search(text)
    failed = sum(map(int, errors.groups())) if errors else 0
    done = int(requests.group(1)) if requests else 0
    return {
        "requests": done,
        "requests_failed": failed + (int(non_2xx.group(1)) if non_2xx else 0),
        "requests_per_second": round(done / seconds, 1),
        "response_p50_ms": ms(percentiles.get("50")),
        "response_p99_ms": ms(percentiles.get("99")),
    }


async def run_flooder(url: str, clients: int, seconds: float) -> None:
    """Child: ``clients`` loops fetching ``url`` for ``seconds``; print one JSON line."""
    times: list[float] = []
    failures = 0
    deadline = time.monotonic() + seconds
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:

        async def loop() -> None:
            nonlocal failures
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    async with http.get(url) as response:
                        await response.read()
                        if response.status != 200:
                            raise aiohttp.ClientError(f"status {response.status}")
                    times.append(time.perf_counter() - started)
                except (aiohttp.ClientError, OSError, TimeoutError):
                    failures += 1
                    await asyncio.sleep(0.1)

        await asyncio.gather(*(loop() for _ in range(clients)))
    print(
        json.dumps(
            {
                "requests": len(times),
                "requests_failed": failures,
                "requests_per_second": round(len(times) / seconds, 1),
                "response_p50_ms": ms(quantile(times, 0.5)),
                "response_p99_ms": ms(quantile(times, 0.99)),
            }
        ),
        flush=True,
    )


# --- one scenario, and the figures -----------------------------------------------------


Abuse = Callable[[Daemon, int, argparse.Namespace], Awaitable[dict[str, Any]]]


async def quiet(daemon: Daemon, port: int, args: argparse.Namespace) -> dict[str, Any]:
    """No abuse: what this machine's load alone costs the checks (the noise floor)."""
    return {"watch": await watch(daemon, args.duration)}


def abuse_for(name: str) -> Abuse:
    if name == "quiet":
        return quiet
    if name == "slowloris":
        return slowloris
    if name == "slow-readers":
        return slow_readers

    async def flooding(daemon: Daemon, port: int, args: argparse.Namespace) -> dict[str, Any]:
        if name == "scrape-flood":
            return await flood(daemon, "/metrics", args.scrapers, args)
        return await flood(daemon, "/status", args.status_clients, args)

    return flooding


async def scenario(
    name: str, pingmon: str, args: argparse.Namespace, target_port: int
) -> dict[str, Any]:
    abuse = abuse_for(name)
    nofile = args.nofile if name == "slowloris" else None
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="pingmon-abuse-") as tmp:
        directory = Path(tmp)
        config = write_config(directory, args, target_port, port)
        daemon = await start_daemon(pingmon, config, port, nofile, directory)
        try:
            await asyncio.sleep(args.warmup)
            before, rss_before = await read_counts(daemon.url), daemon.rss_mb()
            logs_before, cpu_before, started = daemon.log_bytes(), daemon.cpu(), time.monotonic()
            found = await abuse(daemon, port, args)
            cpu = (daemon.cpu() - cpu_before) / (time.monotonic() - started)
            await asyncio.sleep(SETTLE_SECONDS)
            after = await read_counts(daemon.url)
            logs = daemon.log_bytes() - logs_before
        finally:
            await daemon.stop()
    seen: Watch = found.pop("watch")
    return {
        "scenario": name,
        "daemon_nofile_limit": nofile,
        **found,
        **check_figures(before, after),
        **watch_figures(seen),
        "rss_mb_before": rss_before,
        "daemon_cpu_percent": round(cpu * 100, 1),
        "log_bytes_written": logs,
    }


def check_figures(before: Counts, after: Counts) -> dict[str, Any]:
    deltas = {
        c: after.checks_by_class[c] - before.checks_by_class.get(c, 0.0)
        for c in after.checks_by_class
    }
    failed = {c: int(n) for c, n in deltas.items() if c != "none" and n}
    p99 = lag_quantile(before.lag_buckets, after.lag_buckets, 0.99)
    return {
        "checks": int(sum(deltas.values())),
        "checks_failed": sum(failed.values()),
        "checks_failed_by_class": failed,
        "checks_skipped_resource_exhaustion": int(after.exhaustion - before.exhaustion),
        "lag_p99_ms": ms(p99),
        "lag_share_over_50ms": round(share_above(before.lag_buckets, after.lag_buckets, 0.05), 4),
        "lag_share_over_250ms": round(share_above(before.lag_buckets, after.lag_buckets, 0.25), 4),
    }


def watch_figures(seen: Watch) -> dict[str, Any]:
    answered = [p for p in seen.probes if p is not None]
    return {
        "healthy_probes": len(seen.probes),
        "healthy_probes_failed": len(seen.probes) - len(answered),
        "healthy_p50_ms": ms(quantile(answered, 0.5)),
        "healthy_max_ms": ms(max(answered, default=None)),
        "rss_mb_max": max(seen.rss, default=None),
        "open_fds_max": max(seen.fds, default=None),
    }


def quantile(values: list[float], q: float) -> float | None:
    """Nearest-rank quantile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1e3, 1)


# --- the run ---------------------------------------------------------------------------


class Target(asyncio.Protocol):
    """Answers every request ``200 {"status":"ok"}`` on a keep-alive connection, and closes
    the connection after every ``close_every`` answers, as servers do (nginx's
    ``keepalive_requests``): pingmon then needs a new socket, a file descriptor, now and
    then. A request ends at a blank line (pingmon's http checks are GETs)."""

    def __init__(self, close_every: int) -> None:
        self._close_every = close_every
        self._answered = 0
        self._transport: asyncio.Transport | None = None
        self._buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while self._transport is not None and b"\r\n\r\n" in self._buffer:
            self._buffer = self._buffer.split(b"\r\n\r\n", 1)[1]
            self._answered += 1
            last = self._answered % self._close_every == 0
            self._transport.write(OK_CLOSE if last else OK)
            if last:
                self._transport.close()
                self._transport = None


OK = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n"
    b'{"status":"ok"}'
)
OK_CLOSE = OK.replace(b"Content-Length: 15\r\n", b"Content-Length: 15\r\nConnection: close\r\n")


async def run_target(close_every: int) -> None:
    """Child: serve on 127.0.0.1:0, print the port, run until terminated."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Target(close_every), "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


@contextlib.contextmanager
def target_server(close_every: int) -> Iterator[int]:
    """This script's ``--target`` in a child process; its port."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--target", str(close_every)],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(10)


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every scenario, each with every build in turn: builds compared under the same load."""
    raise_own_nofile()
    if args.nice is not None:  # inherited by every process the run starts
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    results = []
    with target_server(args.close_every) as port:
        for name in args.scenarios:
            for pingmon in args.pingmon:
                result = {"build": pingmon, **await scenario(name, pingmon, args, port)}
                results.append(result)
                if not args.json:
                    print_table(result)
    return results


def print_table(result: dict[str, Any]) -> None:
    width = max(len(key) for key in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {json.dumps(value)}")
    print(flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pingmon", action="append",
                        help="a pingmon executable (repeat to compare builds; default: this "
                        "venv's)")  # fmt: skip
    parser.add_argument("--wrk", action=argparse.BooleanOptionalAction,
                        default=shutil.which("wrk") is not None,
                        help="flood with wrk (default when installed)")  # fmt: skip
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--interval", default="1s", help="the targets' interval")
    parser.add_argument("--timeout", default="800ms", help="the targets' timeout")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before the abuse")
    parser.add_argument("--duration", type=float, default=20.0, help="abuse, seconds")
    parser.add_argument("--scenarios", type=lambda s: s.split(","), default=list(SCENARIOS))
    parser.add_argument("--slowloris", type=int, default=1100, help="half-sent requests")
    parser.add_argument("--nofile", type=int, default=1024, help="daemon RLIMIT_NOFILE")
    parser.add_argument("--scrapers", type=int, default=50)
    parser.add_argument("--readers", type=int, default=500)
    parser.add_argument("--status-clients", type=int, default=10)
    parser.add_argument("--nice", type=int, help="run everything at this niceness (e.g. -10 "
                        "as root on a shared machine: less noise from other work)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print only the JSON lines")
    parser.add_argument("--close-every", type=int, default=100,
                        help="the target closes a connection after this many answers")  # fmt: skip
    parser.add_argument("--target", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--flooder", nargs=3, metavar=("URL", "CLIENTS", "SECONDS"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args(argv)
    args.pingmon = args.pingmon or [str(Path(sys.executable).parent / "pingmon")]
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(sorted(unknown))}; known: {SCENARIOS}")
    return args


def main() -> None:
    args = parse_args()
    if args.target is not None:
        asyncio.run(run_target(args.target))
        return
    if args.flooder:
        url, clients, seconds = args.flooder
        asyncio.run(run_flooder(url, int(clients), float(seconds)))
        return
    for result in asyncio.run(run(args)):
        print(json.dumps(result))


if __name__ == "__main__":
    main()
