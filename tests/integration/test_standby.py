"""`pingmon run --config.allow-invalid-at-start`: a refused file never ends the process; it
serves /metrics with the failure visible and picks up the fixed file by itself."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import yaml

from tests.integration.conftest import ConfigWriter, eventually, ninepic_target
from tests.integration.test_cli import Daemon, pingmon, reload_gauge

FLAG = "--config.allow-invalid-at-start"
REFUSED = "configuration refused; running with no targets until it is fixed"
FAST_WATCH = {"interval": "0.2s"}


@asynccontextmanager
async def running(path: Path, *flags: str, **env: str) -> AsyncIterator[Daemon]:
    """`pingmon run` on this file, stopped with SIGTERM (and required to exit 0) at the end."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pingmon", "run", "--config", str(path), *flags,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, **env},
    )  # fmt: skip
    daemon = Daemon(process)
    try:
        await eventually(lambda: daemon.logged("listening"), timeout=15)
        yield daemon
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        assert await daemon.wait() == 0


async def get(daemon: Daemon, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://{daemon.address}{path}") as response,
    ):
        return response.status, await response.text()


def refused_problems(daemon: Daemon) -> list[str]:
    return [str(line["problem"]) for line in daemon.lines if line["message"] == REFUSED]


async def test_a_refused_file_exits_2_without_the_switch(config_writer: ConfigWriter) -> None:
    path = config_writer.write([{**ninepic_target("first"), "timeot": "5s"}])
    done = await pingmon("run", "--config", str(path))
    assert done.returncode == 2
    assert "targets[0].timeot" in done.stderr


async def test_with_the_switch_a_refused_file_serves_metrics_with_the_failure_visible(
    config_writer: ConfigWriter,
) -> None:
    path = config_writer.write([{**ninepic_target("first"), "timeot": "5s"}], watch=FAST_WATCH)
    async with running(path, FLAG) as daemon:
        problems = refused_problems(daemon)
        assert any(p.startswith(f"{path}: targets[0].timeot") for p in problems), problems
        status, metrics = await get(daemon, "/metrics")
        assert status == 200
        assert reload_gauge(metrics) == 0
        assert 'pingmon_build_info{version="' in metrics
        assert "pingmon_config_last_reload_success_timestamp_seconds 0.0" in metrics
        assert (await get(daemon, "/-/healthy"))[0] == 200
        assert (await get(daemon, "/-/ready"))[0] == 503
        assert (await get(daemon, "/status"))[1].count('"target"') == 0


async def test_the_fixed_file_is_picked_up_by_the_watcher_and_the_daemon_becomes_ready(
    config_writer: ConfigWriter,
) -> None:
    path = config_writer.write([{**ninepic_target("first"), "timeot": "5s"}], watch=FAST_WATCH)
    async with running(path, FLAG) as daemon:
        config_writer.write([ninepic_target("first")], watch=FAST_WATCH)
        await eventually(lambda: daemon.logged("configuration reloaded", targets=1))
        assert reload_gauge((await get(daemon, "/metrics"))[1]) == 1
        assert (await get(daemon, "/-/ready"))[0] == 200
        await eventually(lambda: daemon.logged("target is up", target="first"))


async def test_a_secret_file_that_appears_later_is_watched_and_loads_the_file(
    config_writer: ConfigWriter, tmp_path: Path
) -> None:
    secret = tmp_path / "secrets" / "api-key"
    path = config_writer.write([ninepic_target("first")], watch=FAST_WATCH)
    document = yaml.safe_load(path.read_text())
    document["providers"]["ninepic"]["api_key"] = {"file": str(secret)}
    path.write_text(yaml.safe_dump(document))
    async with running(path, FLAG) as daemon:
        assert any(str(secret) in problem for problem in refused_problems(daemon))
        secret.parent.mkdir()
        secret.write_text("dummy-key\n")  # a Secret created after the pod started
        await eventually(lambda: daemon.logged("configuration reloaded", targets=1))
        assert (await get(daemon, "/-/ready"))[0] == 200


async def test_a_file_that_is_not_yaml_serves_on_the_default_or_overridden_listen(
    tmp_path: Path,
) -> None:
    path = tmp_path / "pingmon.yaml"
    path.write_text("{{{ not yaml")
    async with running(path, FLAG, PINGMON_LISTEN="127.0.0.1:0") as daemon:
        assert refused_problems(daemon)[0].startswith(f"{path}: line 1, column")
        assert reload_gauge((await get(daemon, "/metrics"))[1]) == 0


async def test_an_override_that_is_not_json_starts_in_standby_instead_of_a_traceback(
    tmp_path: Path,
) -> None:
    # OverrideRefused escaped standby's settings and `run` crash-looped with exit 1: exactly
    # what the switch exists to prevent.
    path = tmp_path / "pingmon.yaml"
    path.write_text("listen: 127.0.0.1:0\nproviders: {}\n")
    async with running(path, FLAG, PINGMON_PROVIDERS="not json") as daemon:
        problems = refused_problems(daemon)
        assert problems == [f"{path}: PINGMON_PROVIDERS: not valid JSON (Expecting value: "
                            "line 1 column 1 (char 0))"]  # fmt: skip
        assert reload_gauge((await get(daemon, "/metrics"))[1]) == 0
        assert (await get(daemon, "/-/ready"))[0] == 503
