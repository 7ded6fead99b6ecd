"""pingmon out of file descriptors: its own fault, never a target's failure. Real EMFILE from
the kernel: a lowered RLIMIT_NOFILE, in this process for one check, and for a `pingmon run`."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web

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


@pytest.fixture
async def closing_target() -> AsyncIterator[int]:
    """A healthy http target that closes every connection: each check needs a new socket."""

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
    yield runner.addresses[0][1]
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


async def test_a_daemon_runner_skips_a_check_it_has_no_descriptor_for(
    tmp_path: Path, closing_target: int
) -> None:
    plan = build_plans(load_config(write_config(tmp_path / "c.yaml", closing_target)))["t"]
    exhausted: list[ResourceExhausted] = []
    async with new_sessions() as sessions:
        gate = RateLimitGate(BackoffSettings())
        runner = Runner(sessions, gate, 10, on_exhausted=exhausted.append)
        with no_free_descriptors():
            result = await runner.run(plan)
        assert result is None  # nothing recorded: not the target's result
        assert [error.errno_name for error in exhausted] == ["EMFILE"]
        recovered = await runner.run(plan)
    assert recovered is not None
    assert recovered.success


async def test_a_one_shot_check_reports_a_connect_failure_naming_the_cause(
    tmp_path: Path, closing_target: int
) -> None:
    plan = build_plans(load_config(write_config(tmp_path / "c.yaml", closing_target)))["t"]
    async with new_sessions() as sessions:
        # As `pingmon check` runs it: no daemon to skip a check for.
        runner = Runner(sessions, RateLimitGate(BackoffSettings()), 10)
        with no_free_descriptors():
            result = await runner.run(plan)
    assert result is not None
    assert result.error_class is ErrorClass.CONNECT
    assert "Too many open files" in result.detail


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


async def test_pingmon_run_out_of_descriptors_records_no_failure_and_says_so_once(
    tmp_path: Path, closing_target: int
) -> None:
    port = free_port()
    # No cap below the limit, and no header timeout within the test: the connections held
    # below take every descriptor pingmon has.
    server = {"max_connections": 1000, "header_timeout": "1m"}
    config = write_config(tmp_path / "c.yaml", closing_target, listen=f"127.0.0.1:{port}",
                          server=server)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "pingmon", "run", "--config", str(config)]
    daemon = Process("pingmon", ["prlimit", f"--nofile={DAEMON_NOFILE}", *command],
                     tmp_path / "pingmon.log")  # fmt: skip
    daemon.start()
    held: list[socket.socket] = []
    try:

        async def checking() -> bool:
            lines = await scrape(url)
            return lines is not None and value(lines, "pingmon_checks_total{") >= 3

        await eventually(checking, timeout=STEP_TIMEOUT)
        for _ in range(2 * DAEMON_NOFILE):  # more than pingmon can accept
            held.append(socket.create_connection(("127.0.0.1", port)))

        def skip_logged() -> bool:
            return bool(log_lines(daemon.log, SKIPPED))

        await eventually(skip_logged, timeout=STEP_TIMEOUT)
        await asyncio.sleep(0.3)  # several more checks skipped meanwhile
    finally:
        for sock in held:
            sock.close()
    try:
        lines: list[str] = []

        async def answering() -> bool:
            lines[:] = await scrape(url) or []
            return bool(lines)

        await eventually(answering, timeout=STEP_TIMEOUT)
        target = 'provider="h",target="t"'
        assert value(lines, f'pingmon_checks_total{{{target},error_class="connect"}}') == 0
        assert value(lines, 'pingmon_resource_exhaustion_total{errno="EMFILE"}') >= 2
        assert value(lines, f"pingmon_check_success{{{target}}}") == 1
        assert len(log_lines(daemon.log, SKIPPED)) == 1  # however many checks were skipped
        assert len(log_lines(daemon.log, ACCEPT_FAILED)) <= 2  # asyncio retries every second
    finally:
        assert daemon.stop() == 0, daemon.tail()
