"""pingmon out of file descriptors: its own fault, never a target's failure. Real EMFILE from
the kernel: a lowered RLIMIT_NOFILE, in this process for one check, and for a `pingmon run`;
each on both event loops (asyncio's and uvloop's), which accept connections differently when
out of descriptors (``Flood``)."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import socket
import sys
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from pingmon import eventloop
from pingmon.backoff import RateLimitGate
from pingmon.config import BackoffSettings, load_config
from pingmon.daemon import new_sessions
from pingmon.errors import ErrorClass, ResourceExhausted
from pingmon.runner import Runner, build_plans
from tests.integration.conftest import eventually
from tests.processes import STEP_TIMEOUT, Process, free_port

SKIPPED = "pingmon ran out of resources: checks are skipped, not failed"
ACCEPT_FAILED = "socket.accept() out of system resource"
DAEMON_NOFILE = 40  # pingmon run holds ~10 descriptors of its own once started
# Connections the flood opens while waiting for the skip (one a poll, 50 ms): a bound, far
# above the few it takes on either loop.
LATE_ARRIVALS = 4 * DAEMON_NOFILE


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_name(request: pytest.FixtureRequest) -> str:
    """The event loop under test (``pingmon.eventloop``): uvloop is skipped where it does not
    import (a dependency on Linux and macOS only)."""
    name: str = request.param
    if name == "uvloop":
        pytest.importorskip("uvloop")
    return name


def run_on(loop_name: str, main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` to its end on a new loop of that kind, as pingmon's commands do."""
    eventloop.run(main, eventloop.choose(loop_name))


@asynccontextmanager
async def closing_target() -> AsyncIterator[int]:
    """A healthy http target (its port) that closes every connection: each check needs a
    new socket."""

    async def ok(request: web.Request) -> web.Response:
        response = web.json_response({"status": "ok"})
        response.force_close()
        return response

    app = web.Application()
    app.router.add_get("/ok", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


def write_config(path: Path, target_port: int, **top: object) -> Path:
    document = {
        "listen": "127.0.0.1:0",
        "watch": {"enabled": False},
        "providers": {"h": {"type": "http", "base_url": f"http://127.0.0.1:{target_port}"}},
        "targets": [
            {
                "name": "t",
                "provider": "h",
                "path": "/ok",
                "interval": "50ms",
                "timeout": "40ms",
                "jitter": 0,
            }
        ],
        **top,
    }
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@contextmanager
def no_free_descriptors() -> Iterator[None]:
    """Lower this process's RLIMIT_NOFILE to its lowest free descriptor number, so that the
    next socket() fails with EMFILE; restored on the way out."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowest_free = os.dup(0)
    os.close(lowest_free)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_daemon_runner_skips_a_check_it_has_no_descriptor_for(
    tmp_path: Path, loop_name: str
) -> None:
    exhausted: list[ResourceExhausted] = []
    recovered: list[bool] = []

    async def main() -> None:
        async with closing_target() as port, new_sessions() as sessions:
            plan = build_plans(load_config(write_config(tmp_path / "c.yaml", port)))["t"]
            gate = RateLimitGate(BackoffSettings())
            runner = Runner(sessions, gate, 10, on_exhausted=exhausted.append)
            with no_free_descriptors():
                result = await runner.run(plan)
            assert result is None  # nothing recorded: not the target's result
            after = await runner.run(plan)
            recovered.append(after is not None and after.success)

    run_on(loop_name, main())
    assert [error.errno_name for error in exhausted] == ["EMFILE"]
    assert recovered == [True]


def test_a_one_shot_check_reports_a_connect_failure_naming_the_cause(
    tmp_path: Path, loop_name: str
) -> None:
    async def main() -> None:
        async with closing_target() as port, new_sessions() as sessions:
            plan = build_plans(load_config(write_config(tmp_path / "c.yaml", port)))["t"]
            # As `pingmon check` runs it: no daemon to skip a check for.
            runner = Runner(sessions, RateLimitGate(BackoffSettings()), 10)
            with no_free_descriptors():
                result = await runner.run(plan)
        assert result is not None
        assert result.error_class is ErrorClass.CONNECT
        assert "Too many open files" in result.detail

    run_on(loop_name, main())


def log_lines(path: Path, message: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("message") == message]


async def scrape(url: str) -> list[str] | None:
    """The sample lines of /metrics, or None when pingmon does not answer."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http,
            http.get(url + "/metrics") as response,
        ):
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError):
        return None
    return [line for line in text.splitlines() if line[:1] != "#"]


def value(lines: list[str], prefix: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(prefix))


class Flood:
    """Clients that connect to pingmon and never send a request, and keep arriving.

    Arrivals matter: out of descriptors, asyncio's loop leaves the connections it could not
    accept queued and tries again every second, taking any descriptor freed meanwhile; libuv
    (uvloop) closes every queued connection at once (its "EMFILE trick") and accepts again
    only for a new one. Without new arrivals, on uvloop the descriptor of a check in flight
    when the last one was taken is freed and reused by the next check, and so on: pingmon
    is then never out of descriptors for its checks, which run (and succeed)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sockets: list[socket.socket] = []

    def arrive(self) -> None:
        """One more client: a connect that does not wait (it stays pending when the
        server's accept queue is full)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", self.port))
        self.sockets.append(sock)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.sockets.clear()


async def test_pingmon_run_out_of_descriptors_records_no_failure_and_says_so_once(
    tmp_path: Path, loop_name: str
) -> None:
    port = free_port()
    # No cap below the limit, and no header timeout within the test: the connections held
    # below take every descriptor pingmon has.
    server = {"max_connections": 1000, "header_timeout": "1m"}
    async with closing_target() as target_port:
        config = write_config(tmp_path / "c.yaml", target_port, listen=f"127.0.0.1:{port}",
                              server=server)  # fmt: skip
        command = [sys.executable, "-m", "pingmon", "run", "--config", str(config),
                   "--event-loop", loop_name]  # fmt: skip
        daemon = Process("pingmon", ["prlimit", f"--nofile={DAEMON_NOFILE}", *command],
                         tmp_path / "pingmon.log")  # fmt: skip
        daemon.start()
        try:
            await exhaust_and_recover(daemon, f"http://127.0.0.1:{port}", Flood(port))
        finally:
            assert daemon.stop() == 0, daemon.tail()
    (said,) = log_lines(daemon.log, f"running on the {loop_name} event loop")
    assert said["event_loop"] == loop_name


async def exhaust_and_recover(daemon: Process, url: str, flood: Flood) -> None:
    """Once pingmon checks, flood it until it says it skips checks, let go, and read what
    it recorded meanwhile."""

    async def checking() -> bool:
        lines = await scrape(url)
        return lines is not None and value(lines, "pingmon_checks_total{") >= 3

    await eventually(checking, timeout=STEP_TIMEOUT)
    try:
        for _ in range(2 * DAEMON_NOFILE):  # more than pingmon can accept
            flood.arrive()

        def skip_logged() -> bool:
            if len(flood.sockets) < 2 * DAEMON_NOFILE + LATE_ARRIVALS:
                flood.arrive()
            return bool(log_lines(daemon.log, SKIPPED))

        await eventually(skip_logged, timeout=STEP_TIMEOUT)
        await asyncio.sleep(0.3)  # several more checks skipped meanwhile
    finally:
        flood.close()
    lines: list[str] = []
    target = 'provider="h",target="t"'

    async def answering_and_checking() -> bool:
        """The server answers, and a check succeeds again (on a loaded machine one may
        time out at 40 ms first: a real timeout, not this test's concern)."""
        lines[:] = await scrape(url) or []
        return value(lines, f"pingmon_check_success{{{target}}}") == 1

    await eventually(answering_and_checking, timeout=STEP_TIMEOUT)
    assert value(lines, f'pingmon_checks_total{{{target},error_class="connect"}}') == 0
    assert value(lines, 'pingmon_resource_exhaustion_total{errno="EMFILE"}') >= 2
    assert len(log_lines(daemon.log, SKIPPED)) == 1  # however many checks were skipped
    assert len(log_lines(daemon.log, ACCEPT_FAILED)) <= 2  # asyncio retries every second
