"""A stop whose grace runs out cancels the checks still going: the daemon says how many in
one line ("checks cancelled at shutdown"), and none of them is logged as a job that failed
("Error running job", with its traceback), whichever of the daemon and the executor
cancels it. Each is uncounted."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from pingmon.daemon import Daemon
from tests.integration.rawhttp import site_config


async def test_checks_cancelled_when_the_grace_runs_out_are_one_line_not_an_error_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # reads nothing, answers nothing: the check hangs

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    names = ["a", "b", "c"]
    config = site_config(
        tmp_path / "c.yaml",
        f"http://127.0.0.1:{port}",
        [{"name": name, "interval": "1s", "timeout": "900ms"} for name in names],
    )
    daemon = Daemon(config)
    caplog.set_level(logging.INFO)
    try:
        await daemon.start()
        executor = daemon.scheduler._scheduler._executors["default"]
        for _ in range(300):
            if len(daemon.in_flight) == len(names):
                break
            await asyncio.sleep(0.01)
        assert len(daemon.in_flight) == len(names)
        caplog.clear()
        await daemon.stop(grace=0.01)
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
    messages = [record.getMessage() for record in caplog.records]
    assert "checks cancelled at shutdown" in messages
    assert not [m for m in messages if m.startswith("Error running job")], messages
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], messages
    assert not executor._tasks
    assert not executor._instances
