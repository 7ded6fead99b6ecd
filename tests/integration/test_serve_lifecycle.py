"""serve() pairs every start with its stop: a start-up that fails half-way, and a cancelled
serve task, leave no scheduler running, no client session open and no port bound."""

from __future__ import annotations

import asyncio
import gc
import socket

import aiohttp
import pytest

from pingmon.daemon import Daemon
from pingmon.sandbox import Sandbox
from pingmon.service import ListenError, serve
from tests.integration.conftest import ConfigWriter, eventually, ninepic_target
from tests.processes import free_port

QUIET_SECONDS = 0.3  # three check intervals


def open_pingmon_sessions() -> list[aiohttp.ClientSession]:
    """Client sessions pingmon made (its User-Agent) that are still open, wherever held."""
    gc.unfreeze()  # the daemon freezes its long-lived objects out of get_objects()' sight
    gc.collect()
    return [
        obj
        for obj in gc.get_objects()
        if isinstance(obj, aiohttp.ClientSession)
        and not obj.closed
        and obj.headers.get("User-Agent", "").startswith("pingmon/")
    ]


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def no_more_checks(sandbox: Sandbox) -> None:
    """The sandbox hears nothing more from pingmon over a few check intervals."""
    before = sandbox.ninepic.count()
    await asyncio.sleep(QUIET_SECONDS)
    assert sandbox.ninepic.count() == before


def fast_target() -> dict[str, object]:
    return ninepic_target("w", interval="100ms", timeout="80ms")


async def test_a_start_up_that_fails_after_the_scheduler_started_stops_everything(
    config_writer: ConfigWriter, sandbox: Sandbox
) -> None:
    port = free_port()
    config = config_writer.load([fast_target()], listen=f"127.0.0.1:{port}")
    started: list[Daemon] = []

    async def fail(daemon: Daemon, address: str) -> None:
        started.append(daemon)
        await eventually(lambda: sandbox.ninepic.count() > 0)  # checks are running
        raise RuntimeError("start-up failed after the scheduler started")

    with pytest.raises(RuntimeError, match="after the scheduler started"):
        await serve(config, on_started=fail)
    assert not started[0].scheduler.running
    assert open_pingmon_sessions() == []
    assert port_is_free(port)
    await no_more_checks(sandbox)


async def test_a_taken_webhook_port_releases_the_listen_port_and_starts_nothing(
    config_writer: ConfigWriter, sandbox: Sandbox
) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        webhook_port = taken.getsockname()[1]
        config = config_writer.load(
            [fast_target()],
            listen=f"127.0.0.1:{port}",
            webhook_listen=f"127.0.0.1:{webhook_port}",
        )
        with pytest.raises(ListenError, match=f"cannot listen on 127.0.0.1:{webhook_port}"):
            await serve(config)
    assert port_is_free(port)
    assert open_pingmon_sessions() == []
    assert sandbox.ninepic.count() == 0


async def test_cancelling_serve_stops_the_scheduler_and_closes_the_session(
    config_writer: ConfigWriter, sandbox: Sandbox
) -> None:
    port = free_port()
    config = config_writer.load([fast_target()], listen=f"127.0.0.1:{port}")
    started: asyncio.Future[Daemon] = asyncio.get_running_loop().create_future()

    async def on_started(daemon: Daemon, address: str) -> None:
        started.set_result(daemon)

    serving = asyncio.create_task(serve(config, on_started=on_started))
    daemon = await asyncio.wait_for(started, timeout=10)
    await eventually(lambda: sandbox.ninepic.count() > 0)
    assert open_pingmon_sessions() != []
    serving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await serving
    assert not daemon.scheduler.running
    assert open_pingmon_sessions() == []
    assert port_is_free(port)
    await no_more_checks(sandbox)
