"""timebox, and Deadlines' boxes on a shared timer, bound a block exactly as asyncio.timeout
does: the same outcome in every case of the deadline, an outside cancellation, both, nesting
and a block that swallows its cancel; and a shared timer serves every block at its own time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from pingmon.timebox import Deadlines, timebox

Bound = Callable[[float], contextlib.AbstractAsyncContextManager[Any]]


@contextlib.asynccontextmanager
async def with_asyncio(delay: float) -> AsyncIterator[None]:
    async with asyncio.timeout(delay):
        yield


@contextlib.asynccontextmanager
async def with_timebox(delay: float) -> AsyncIterator[None]:
    with timebox(delay):
        yield


SHARED = Deadlines()  # one timer for every block of every test (each test has its own loop)


@contextlib.asynccontextmanager
async def with_deadlines(delay: float) -> AsyncIterator[None]:
    with SHARED.box(delay):
        yield


OURS = [pytest.param(with_timebox, id="timebox"), pytest.param(with_deadlines, id="shared")]


async def outcome(bounded: Callable[[], Awaitable[object]]) -> tuple[str, int, bool]:
    """How ``bounded`` ended in a task of its own (its result or exception's type), the
    task's ``cancelling()`` count then, and whether the task could still await afterwards."""
    state: dict[str, Any] = {}

    async def run() -> None:
        try:
            state["ended"] = repr(await bounded())
        except BaseException as error:  # noqa: BLE001 - what ended it is the finding
            state["ended"] = type(error).__name__
        task = asyncio.current_task()
        assert task is not None
        state["cancelling"] = task.cancelling()
        try:
            await asyncio.sleep(0.001)
            state["alive"] = True
        except asyncio.CancelledError:
            state["alive"] = False

    task = asyncio.create_task(run())
    await asyncio.gather(task, return_exceptions=True)
    return state["ended"], state["cancelling"], state["alive"]


Scenario = Callable[[Bound], Callable[[], Awaitable[object]]]


async def both(ours: Bound, scenario: Scenario) -> tuple[Any, Any]:
    return await outcome(scenario(ours)), await outcome(scenario(with_asyncio))


@pytest.mark.parametrize("ours", OURS)
async def test_a_block_that_ends_in_time_returns_its_value_and_leaves_no_timer(
    ours: Bound,
) -> None:
    async def quick(bound: Bound) -> str:
        async with bound(5):
            await asyncio.sleep(0)
        return "done"

    got, reference = await both(ours, lambda bound: lambda: quick(bound))
    assert got == reference == ("'done'", 0, True)


@pytest.mark.parametrize("ours", OURS)
async def test_a_block_past_its_deadline_raises_timeout_error_and_the_task_lives_on(
    ours: Bound,
) -> None:
    async def slow(bound: Bound) -> str:
        async with bound(0.01):
            await asyncio.sleep(5)
        return "late"

    got, reference = await both(ours, lambda bound: lambda: slow(bound))
    assert got == reference == ("TimeoutError", 0, True)


@pytest.mark.parametrize("ours", OURS)
async def test_a_deadline_already_past_strikes_at_the_first_await(ours: Bound) -> None:
    async def past(bound: Bound) -> str:
        async with bound(-1):
            await asyncio.sleep(0)
            await asyncio.sleep(5)
        return "late"

    got, reference = await both(ours, lambda bound: lambda: past(bound))
    assert got == reference == ("TimeoutError", 0, True)


@pytest.mark.parametrize("ours", OURS)
async def test_an_outside_cancellation_passes_through_as_cancelled_error(ours: Bound) -> None:
    def cancelled_from_outside(bound: Bound) -> Callable[[], Awaitable[object]]:
        async def block() -> str:
            task = asyncio.current_task()
            assert task is not None
            asyncio.get_running_loop().call_later(0.01, task.cancel)
            async with bound(5):
                await asyncio.sleep(5)
            return "late"

        return block

    got, reference = await both(ours, cancelled_from_outside)
    assert got == reference
    assert got[0] == "CancelledError"


@pytest.mark.parametrize("ours", OURS)
async def test_an_outside_cancellation_as_the_deadline_strikes_wins(ours: Bound) -> None:
    def both_at_once(bound: Bound) -> Callable[[], Awaitable[object]]:
        async def block() -> str:
            task = asyncio.current_task()
            assert task is not None
            async with bound(0):  # its timer runs at the next turn of the loop
                task.cancel()
                await asyncio.sleep(5)
            return "late"

        return block

    got, reference = await both(ours, both_at_once)
    assert got == reference
    assert got[0] == "CancelledError"


@pytest.mark.parametrize("ours", OURS)
async def test_nested_the_outer_deadline_is_the_outers_and_the_inner_is_the_inners(
    ours: Bound,
) -> None:
    def nested(outer: float, inner: float) -> Scenario:
        def scenario(bound: Bound) -> Callable[[], Awaitable[object]]:
            async def block() -> str:
                async with bound(outer):
                    try:
                        async with bound(inner):
                            await asyncio.sleep(5)
                    except TimeoutError:
                        return "inner struck"
                return "late"

            return block

        return scenario

    for outer, inner in ((0.01, 5), (5, 0.01)):
        got, reference = await both(ours, nested(outer, inner))
        assert got == reference
    assert (await outcome(nested(0.01, 5)(ours)))[0] == "TimeoutError"
    assert (await outcome(nested(5, 0.01)(ours)))[0] == "'inner struck'"


@pytest.mark.parametrize("ours", OURS)
async def test_a_block_that_swallows_the_cancellation_ends_as_it_says(ours: Bound) -> None:
    def swallowing(bound: Bound) -> Callable[[], Awaitable[object]]:
        async def block() -> str:
            async with bound(0.01):
                try:
                    await asyncio.sleep(5)
                except asyncio.CancelledError:
                    return "swallowed"
            return "unreachable"

        return block

    got, reference = await both(ours, swallowing)
    assert got == reference == ("'swallowed'", 0, True)


@pytest.mark.parametrize("ours", OURS)
async def test_an_error_other_than_cancellation_in_time_passes_through(ours: Bound) -> None:
    def failing(bound: Bound) -> Callable[[], Awaitable[object]]:
        async def block() -> str:
            async with bound(5):
                await asyncio.sleep(0)
                raise ConnectionResetError
            return "unreachable"

        return block

    got, reference = await both(ours, failing)
    assert got == reference == ("ConnectionResetError", 0, True)


def test_outside_a_task_it_is_refused() -> None:
    async def enter_in_a_callback() -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[BaseException | None] = loop.create_future()

        def callback() -> None:
            try:
                with timebox(1):
                    pass
            except RuntimeError as error:
                done.set_result(error)
            else:
                done.set_result(None)

        loop.call_soon(callback)
        assert isinstance(await done, RuntimeError)

    asyncio.run(enter_in_a_callback())


async def test_one_shared_timer_serves_each_block_at_its_own_deadline() -> None:
    """Blocks of several delays, begun in turn on one Deadlines: a short one begun after a
    long one still ends at its own deadline (the timer is set earlier for it); blocks that
    end in time are untouched; each late one gets TimeoutError, as asyncio.timeout gives."""
    deadlines = Deadlines()
    ended: list[str] = []

    async def block(name: str, delay: float, work: float) -> None:
        try:
            with deadlines.box(delay):
                await asyncio.sleep(work)
            ended.append(f"{name} in time")
        except TimeoutError:
            ended.append(f"{name} timed out")

    long = asyncio.create_task(block("long", 30, 30))
    await asyncio.sleep(0)
    quick = [asyncio.create_task(block(f"quick{i}", 30, 0)) for i in range(3)]
    short = [asyncio.create_task(block(f"short{i}", 0.02 * (i + 1), 30)) for i in range(3)]
    await asyncio.gather(*quick, *short)
    in_time = [f"quick{i} in time" for i in range(3)]
    assert sorted(ended) == sorted([*in_time, *(f"short{i} timed out" for i in range(3))])
    assert ended.index("short0 timed out") < ended.index("short1 timed out")
    assert ended.index("short1 timed out") < ended.index("short2 timed out")
    assert not long.done()  # the long block's deadline is far: it still runs
    long.cancel()
    await asyncio.gather(long, return_exceptions=True)
    assert long.cancelled()


async def test_a_shared_timer_keeps_working_after_its_lines_empty() -> None:
    deadlines = Deadlines()
    for _ in range(3):  # each round: every earlier block done, its line emptied
        with pytest.raises(TimeoutError), deadlines.box(0.01):
            await asyncio.sleep(30)
        with deadlines.box(30):
            await asyncio.sleep(0)


def test_a_shared_timer_used_in_another_loop_starts_afresh() -> None:
    """A Deadlines whose loop ended with a block still in its line (its timer gone with
    that loop) bounds the blocks of the next loop all the same."""
    deadlines = Deadlines()

    async def left_running() -> None:
        task = asyncio.create_task(asyncio.sleep(30))

        async def boxed() -> None:
            with deadlines.box(0.05):  # its timer is set, and never fires: the loop ends
                await task

        asyncio.create_task(boxed())  # noqa: RUF006 - left pending when the loop ends
        await asyncio.sleep(0)

    async def bounded() -> str:
        try:
            with deadlines.box(0.2):  # later than the dead timer: it must set a new one
                await asyncio.sleep(3)
        except TimeoutError:
            return "timed out"
        return "late"

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(left_running())
    finally:
        loop.close()
    assert asyncio.run(bounded()) == "timed out"
