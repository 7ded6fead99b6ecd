"""The benchmarks' child processes (nginx, a fallback server, ``pingmon run``) and /proc readings.

Every process listens on 127.0.0.1 on a port chosen at run time and is stopped by its PID
(``Child.stop``). CPU and memory are read from ``/proc`` (Linux only):

- ``cpu_seconds``: utime + stime of ``/proc/PID/stat``: every thread, ended ones included, in
  clock ticks (10 ms), for windows of seconds;
- ``cpu_seconds_precise``: the sum over ``/proc/PID/task/*/schedstat`` (nanoseconds on the CPU,
  live threads only), for windows of milliseconds such as one scrape.

Run as a script (``python bench/processes.py --serve``), it is the fallback target server: aiohttp
answering ``200 {"status":"ok"}`` on every path with keep-alive, its port on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

BODY = '{"status":"ok"}'
PATH = "/health"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
NGINX_CONFIG = """\
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        default_type application/json;
        location / {{ return 200 '{body}'; }}
        location = /nginx_status {{ stub_status; }}
    }}
}}
"""


T = TypeVar("T")
M = TypeVar("M")


async def until_signal(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work``; SIGINT and SIGTERM cancel it, so that its ``finally`` blocks stop every
    child (a shell starts a background job with SIGINT ignored: SIGTERM is the way then)."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    return await task


def rotated(order: Sequence[T], k: int) -> list[T]:
    """``order`` started at its ``k``-th item (round ``k`` of alternating rounds), so that no
    variant always runs first, on a machine still settling, or last."""
    shift = k % len(order) if order else 0
    return [*order[shift:], *order[:shift]]


async def alternating_rounds(
    prefix: str,
    rounds: int,
    order: Sequence[tuple[str, Callable[[str, Path], Awaitable[M]]]],
    report: Callable[[int, list[M]], None],
    started: Callable[[Child], None] = lambda nginx: None,
    tolerated: tuple[type[BaseException], ...] = (),
) -> list[list[M]]:
    """``rounds`` rounds against one nginx (``start_nginx`` in a temporary directory named
    from ``prefix``, handed to ``started`` first): each runs every variant ``(name,
    run(url, directory))`` in turn, ``rotated``, then ``report(k, measures)`` (k from 1). A
    variant raising one of ``tolerated`` is said on stderr and left out of its round."""
    found: list[list[M]] = []
    with tempfile.TemporaryDirectory(prefix=prefix) as name:
        directory = Path(name)
        nginx, url = await start_nginx(directory)
        started(nginx)
        try:
            for k in range(rounds):
                measures: list[M] = []
                for variant, run in rotated(order, k):
                    print(f"round {k + 1}: {variant} ...", file=sys.stderr, flush=True)
                    try:
                        measures.append(await run(url, directory))
                    except tolerated as error:
                        print(f"round {k + 1}: {variant} failed: {error!r}", file=sys.stderr)
                found.append(measures)
                report(k + 1, measures)
        finally:
            await nginx.stop()
    return found


def round_options(
    parser: argparse.ArgumentParser, rate: float, rounds: int, window: float
) -> None:
    """The options of a benchmark in alternating rounds (``alternating_rounds``) at a fixed
    rate: ``--rate``, ``--rounds``, ``--window``, ``--warmup``, ``--nice``, and ``--pingmon``
    (repeatable; ``pingmons(args)`` gives the default)."""
    parser.add_argument("--rate", type=float, default=rate, help="checks per second asked")
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--window", type=float, default=window, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before the window")
    parser.add_argument("--nice", type=int, help="niceness of every process of the run (-10)")
    parser.add_argument("--pingmon", action="append",
                        help="a pingmon executable (repeatable; default: the one beside this "
                        "Python)")  # fmt: skip


def pingmons(args: argparse.Namespace) -> list[str]:
    """The ``--pingmon`` executables given, else the one beside this Python."""
    return list(args.pingmon or [str(Path(sys.executable).with_name("pingmon"))])


def free_port() -> int:
    """A port free on 127.0.0.1 now (another process may take it before it is used)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- /proc ------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the process so far, every thread (clock-tick resolution)."""
    fields = stat_fields(Path(f"/proc/{pid}/stat").read_text(encoding="ascii"))
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds_precise(pid: int) -> float:
    """Seconds on the CPU of the process's live threads (nanosecond resolution)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            total += int(task.joinpath("schedstat").read_text(encoding="ascii").split()[0])
    return total / 1e9


@dataclass(frozen=True)
class ProcessUsage:
    """What a process has used so far, every thread: ``cpu`` and ``system`` CPU seconds
    (clock ticks), ``wakeups``: voluntary context switches (each a sleep the process later
    woke from; /proc/PID/task/*/status). Subtract two to get a window's."""

    cpu: float
    system: float
    wakeups: int

    def __sub__(self, other: ProcessUsage) -> ProcessUsage:
        return ProcessUsage(self.cpu - other.cpu, self.system - other.system,
                     self.wakeups - other.wakeups)  # fmt: skip


def process_usage(pid: int) -> ProcessUsage:
    """The process's ``ProcessUsage`` so far (threads that ended take their switches with them)."""
    fields = stat_fields(Path(f"/proc/{pid}/stat").read_text(encoding="ascii"))
    tick = os.sysconf("SC_CLK_TCK")
    wakeups = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, StopIteration):  # a thread that ended meanwhile
            status = task.joinpath("status").read_text(encoding="ascii").splitlines()
            line = next(x for x in status if x.startswith("voluntary_ctxt_switches:"))
            wakeups += int(line.split()[1])
    return ProcessUsage(
        (int(fields[11]) + int(fields[12])) / tick, int(fields[12]) / tick, wakeups
    )


def stat_fields(text: str) -> list[str]:
    """The fields of a ``/proc/PID/stat`` line after the command name (which may hold spaces
    and parentheses): ``[0]`` is the state, ``[7]`` minflt, ``[11]`` utime, ``[12]`` stime."""
    return text.rsplit(")", 1)[1].split()


def minor_faults(pid: int) -> int:
    """Minor page faults of the process so far (every thread): pages it touched first."""
    return int(stat_fields(Path(f"/proc/{pid}/stat").read_text(encoding="ascii"))[7])


def thread_cpu(pid: int) -> tuple[float, float]:
    """Seconds on the CPU of the main thread (an asyncio daemon's event loop) and of the
    process's other live threads (worker threads), from ``/proc/PID/task/*/schedstat``."""
    main = others = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            ns = int(task.joinpath("schedstat").read_text(encoding="ascii").split()[0])
            if task.name == str(pid):
                main += ns
            else:
                others += ns
    return main / 1e9, others / 1e9


def rss_mb(pid: int) -> float:
    """Resident set size now, MiB."""
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    kb = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(kb) / 1024


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size so far (VmHWM), MiB."""
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    kb = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(kb) / 1024


# --- children ---------------------------------------------------------------------------


@dataclass
class Child:
    """A started process, its stderr in a file (read back when it fails)."""

    name: str
    proc: asyncio.subprocess.Process
    stderr: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tail(self) -> str:
        try:
            return self.stderr.read_text(errors="replace")[-800:]
        except OSError:
            return ""

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT; by PID only."""
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def spawn(name: str, argv: list[str], directory: Path, **kwargs: object) -> Child:
    """Start ``argv`` (stdin closed unless given) with stderr in ``directory/name.stderr``."""
    stderr = directory / f"{name}.stderr"
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    with stderr.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stderr=err,
            **kwargs,  # type: ignore[arg-type]
        )
    return Child(name, proc, stderr)


async def wait_ok(child: Child, url: str, timeout: float = START_TIMEOUT) -> float:
    """Poll ``url`` until it answers 200; seconds waited. Raises if the child exits first."""
    started = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        while time.monotonic() - started < timeout:
            if child.proc.returncode is not None:
                raise RuntimeError(f"{child.name} exited {child.proc.returncode}: {child.tail()}")
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with http.get(url) as response:
                    if response.status == 200:
                        return time.monotonic() - started
            await asyncio.sleep(0.05)
    await child.stop()
    raise RuntimeError(f"{child.name} did not answer 200 on {url} within {timeout} s")


async def start_nginx(directory: Path) -> tuple[Child, str]:
    """nginx (one process, access log off, keep-alive) answering BODY on every path; its URL."""
    port = free_port()
    home = directory / "nginx"
    home.mkdir()
    config = home / "nginx.conf"
    config.write_text(NGINX_CONFIG.format(dir=home, port=port, body=BODY), encoding="utf-8")
    argv = ["nginx", "-p", str(home), "-e", str(home / "error.log"), "-c", str(config)]
    child = await spawn("nginx", argv, directory, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    await wait_ok(child, url + PATH)
    return child, url


async def nginx_requests(http: aiohttp.ClientSession, url: str) -> int:
    """Requests nginx has answered so far (``stub_status``), this one excluded."""
    async with http.get(url + "/nginx_status") as response:
        text = await response.text()
    return int(text.splitlines()[2].split()[2]) - 1


async def start_fallback_server(directory: Path) -> tuple[Child, str]:
    """This module's aiohttp server, for hosts without nginx; its URL."""
    argv = [sys.executable, __file__, "--serve"]
    child = await spawn("target-server", argv, directory, stdout=subprocess.PIPE)
    assert child.proc.stdout is not None
    try:
        line = await asyncio.wait_for(child.proc.stdout.readline(), START_TIMEOUT)
    except TimeoutError:
        line = b""
    if not line:
        await child.stop()
        raise RuntimeError(f"target server did not start: {child.tail()}")
    return child, f"http://127.0.0.1:{int(line)}"


async def start_target(directory: Path, use_nginx: bool = True) -> tuple[Child, str]:
    """nginx when installed (and wanted), else the fallback server; (child, base URL)."""
    if use_nginx and shutil.which("nginx"):
        return await start_nginx(directory)
    return await start_fallback_server(directory)


async def start_pingmon(
    pingmon: str, config: Path, directory: Path, timeout: float = 2 * START_TIMEOUT
) -> tuple[Child, str, float]:
    """``pingmon run`` on a free port; (child, base URL, seconds from exec to /-/ready 200)."""
    port = free_port()
    argv = [pingmon, "run", "--config", str(config), f"--web.listen-address=127.0.0.1:{port}"]
    started = time.monotonic()
    child = await spawn("pingmon", argv, directory, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    await wait_ok(child, url + "/-/ready", timeout)
    return child, url, time.monotonic() - started


async def accepts(pingmon: str, config: Path) -> bool:
    """Whether ``pingmon config validate`` accepts the file (a build may lack a setting)."""
    proc = await asyncio.create_subprocess_exec(
        pingmon, "config", "validate", "--config", str(config),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return await proc.wait() == 0


# --- the fallback server ------------------------------------------------------------------


async def serve_forever() -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(text=BODY, content_type="application/json")

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    print(port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="the benchmarks' fallback target server")
    parser.add_argument("--serve", action="store_true", required=True)
    parser.parse_args()
    asyncio.run(serve_forever())
