"""Blocking work in an abandonable thread: results, errors, the deadline, shutdown, the bound."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from pingmon.deadline import Abandoned, DeadlineWorker


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """What the blocked work waits for; opened at the end so no thread outlives the test."""
    event = threading.Event()
    yield event
    event.set()


async def test_the_result_of_the_work_comes_back() -> None:
    worker = DeadlineWorker("test", max_abandoned=1)
    assert await worker.run(lambda: threading.current_thread().daemon, 5, asyncio.Event())


@pytest.mark.parametrize(
    "error",
    [
        UnicodeDecodeError("utf-8", b"\xe9", 0, 1, "invalid continuation byte"),
        OverflowError("date value out of range"),
        RecursionError("maximum recursion depth exceeded"),
        MemoryError(),
    ],
)
async def test_any_exception_of_the_work_is_raised_to_the_caller(error: Exception) -> None:
    def fail() -> None:
        raise error

    with pytest.raises(type(error)):
        await DeadlineWorker("test", max_abandoned=1).run(fail, 5, asyncio.Event())


async def test_work_past_its_deadline_is_abandoned_and_its_late_result_dropped(
    gate: threading.Event,
) -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _, context: errors.append(context))
    worker = DeadlineWorker("test", max_abandoned=2)
    with pytest.raises(Abandoned, match=r"not done within 0\.05 s"):
        await worker.run(lambda: gate.wait(), 0.05, asyncio.Event())
    assert worker.still_running() == 1
    gate.set()
    for _ in range(200):
        if worker.still_running() == 0:
            break
        await asyncio.sleep(0.01)
    assert worker.still_running() == 0
    await asyncio.sleep(0)  # the late result's callback runs, and is dropped
    assert errors == []


async def test_giving_up_ends_the_wait_at_once_however_long_the_deadline(
    gate: threading.Event,
) -> None:
    give_up = asyncio.Event()
    worker = DeadlineWorker("test", max_abandoned=1)
    waiting = asyncio.create_task(worker.run(gate.wait, 3600, give_up))
    await asyncio.sleep(0.05)
    give_up.set()
    with pytest.raises(Abandoned, match="pingmon is stopping"):
        await asyncio.wait_for(waiting, timeout=5)


async def test_a_cancelled_caller_abandons_the_thread(gate: threading.Event) -> None:
    worker = DeadlineWorker("test", max_abandoned=1)
    waiting = asyncio.create_task(worker.run(gate.wait, 3600, asyncio.Event()))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert worker.still_running() == 1


async def test_no_new_work_while_too_many_abandoned_threads_still_run(
    gate: threading.Event,
) -> None:
    worker = DeadlineWorker("test", max_abandoned=2)
    for _ in range(2):
        with pytest.raises(Abandoned, match="not done within"):
            await worker.run(gate.wait, 0.01, asyncio.Event())
    started: list[int] = []
    with pytest.raises(Abandoned, match="2 earlier ones, given up at their deadline, still run"):
        await worker.run(lambda: started.append(1), 5, asyncio.Event())
    assert started == []
    gate.set()
    for _ in range(200):
        if worker.still_running() == 0:
            break
        await asyncio.sleep(0.01)
    assert await worker.run(lambda: "again", 5, asyncio.Event()) == "again"


# A load given up while pydantic-core validates (a validator that never returns), then the
# command line's end as the ``pingmon`` script reaches it.
_GIVEN_UP_THEN_EXIT = """
import asyncio, contextlib, json, sys
from pydantic import BaseModel, field_validator
from pingmon import cli, deadline

class Spinning(BaseModel):
    x: int

    @field_validator("x")
    @classmethod
    def spin(cls, value: int) -> int:
        while True:
            sum(range(1000))

async def give_up() -> None:
    worker = deadline.DeadlineWorker("pingmon-config-load", 1)
    with contextlib.suppress(deadline.Abandoned):
        await worker.run(lambda: Spinning(x=1), 0.2, asyncio.Event())

asyncio.run(give_up())
assert deadline.any_running()
sys.argv = ["pingmon", "config", "schema"]
sys.exit(cli.main())
"""


def test_the_command_ends_with_its_status_while_a_given_up_load_still_validates() -> None:
    """The interpreter's finalization would end the load's thread inside pydantic-core's
    Rust frames and crash the process (SIGSEGV or SIGABRT, "FATAL: exception not
    rethrown": CI, 2026-12-01, SIGTERM during a reload); ``main`` leaves without it, its
    output flushed."""
    done = subprocess.run(
        [sys.executable, "-c", _GIVEN_UP_THEN_EXIT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "properties" in json.loads(done.stdout)
    assert "FATAL" not in done.stderr
