"""The event loop a real `pingmon` process runs on: uvloop by default (auto), asyncio if asked."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from typing import Any

import aiohttp
import pytest

from pingmon.sandbox import Sandbox
from tests.integration.conftest import ConfigWriter, eventually, http_target

LOOP_CLASS = {"uvloop": "uvloop.Loop", "asyncio": "asyncio.unix_events._UnixSelectorEventLoop"}


async def pingmon(*args: str, env: dict[str, str]) -> tuple[int, str, list[dict[str, Any]]]:
    """Run ``python -m pingmon --log-level debug ARGS``: exit status, stdout, log lines."""
    environ = {k: v for k, v in os.environ.items() if k != "PINGMON_EVENT_LOOP"} | env
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pingmon", "--log-level", "debug", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environ,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    lines = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    return process.returncode, stdout.decode(), lines


def loop_line(lines: list[dict[str, Any]]) -> dict[str, Any]:
    (line,) = [line for line in lines if "event_loop" in line]
    return line


@pytest.mark.parametrize(
    ("flag", "env", "expected"),
    [
        ([], {}, "uvloop"),  # auto, the default: uvloop is installed here
        ([], {"PINGMON_EVENT_LOOP": "asyncio"}, "asyncio"),  # the switch that turns it off
        ([], {"PINGMON_EVENT_LOOP": "uvloop"}, "uvloop"),
        (["--event-loop", "asyncio"], {"PINGMON_EVENT_LOOP": "uvloop"}, "asyncio"),
        (["--event-loop", "uvloop"], {"PINGMON_EVENT_LOOP": "asyncio"}, "uvloop"),
        (["--event-loop", "auto"], {"PINGMON_EVENT_LOOP": "asyncio"}, "uvloop"),
    ],
)
async def test_check_runs_on_the_loop_the_flag_or_else_the_environment_chooses(
    config_writer: ConfigWriter, flag: list[str], env: dict[str, str], expected: str
) -> None:
    path = config_writer.write([http_target("h")])
    code, stdout, lines = await pingmon("check", "--config", str(path), "--json", *flag, env=env)
    assert code == 0, lines
    assert json.loads(stdout)[0]["success"] is True
    line = loop_line(lines)
    assert line["level"] == "debug"
    assert line["message"] == f"running on the {expected} event loop"
    assert (line["event_loop"], line["loop_class"]) == (expected, LOOP_CLASS[expected])


async def test_check_says_nothing_on_stderr_about_its_loop_without_debug(
    config_writer: ConfigWriter,
) -> None:
    path = config_writer.write([http_target("h")])
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pingmon", "check", "--config", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    assert b"event loop" not in stderr


async def test_an_unknown_event_loop_is_refused_with_exit_2_naming_the_setting(
    config_writer: ConfigWriter,
) -> None:
    path = config_writer.write([http_target("h")])
    code, stdout, _ = await pingmon(
        "check", "--config", str(path), env={"PINGMON_EVENT_LOOP": "x"}
    )
    assert code == 2
    assert stdout == ""
    code, _, _ = await pingmon("check", "--config", str(path), "--event-loop", "x", env={})
    assert code == 2  # argparse's refusal of a choice


@pytest.mark.parametrize(
    ("env", "expected"), [({}, "uvloop"), ({"PINGMON_EVENT_LOOP": "asyncio"}, "asyncio")]
)
async def test_run_says_its_loop_at_start_and_checks_on_it(
    config_writer: ConfigWriter, sandbox: Sandbox, env: dict[str, str], expected: str
) -> None:
    path = config_writer.write([http_target("h", interval="200ms", timeout="150ms")])
    environ = {k: v for k, v in os.environ.items() if k != "PINGMON_EVENT_LOOP"} | env
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pingmon", "run", "--config", str(path),
        stderr=asyncio.subprocess.PIPE, env=environ,
    )  # fmt: skip
    lines: list[dict[str, Any]] = []

    async def read() -> None:
        assert process.stderr is not None
        async for raw in process.stderr:
            lines.append(json.loads(raw))

    reader = asyncio.create_task(read())
    try:
        await eventually(lambda: any(line["message"] == "listening" for line in lines), 15)
        address = next(line["address"] for line in lines if line["message"] == "listening")
        async with aiohttp.ClientSession() as http:

            async def checked_twice() -> bool:
                async with http.get(f"http://{address}/metrics") as response:
                    text = await response.text()
                return _count(text) >= 2

            await eventually(checked_twice, 15)
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0
        await reader
    line = loop_line(lines)
    assert (line["level"], line["event_loop"]) == ("info", expected)
    assert line["loop_class"] == LOOP_CLASS[expected]


def _count(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith("pingmon_checks_total{") and 'error_class="none"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0
