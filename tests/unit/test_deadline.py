"""Blocking work in an abandonable thread: results, errors, the deadline, shutdown, the bound."""

from __future__ import annotations

import asyncio
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
