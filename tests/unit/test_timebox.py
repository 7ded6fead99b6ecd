"""timebox bounds a block exactly as asyncio.timeout does: the same outcome in every case of
the deadline, an outside cancellation, both, nesting and a block that swallows its cancel."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from pingmon.timebox import timebox

Bound = Callable[[float], contextlib.AbstractAsyncContextManager[Any]]


@contextlib.asynccontextmanager
async def with_asyncio(delay: float) -> AsyncIterator[None]:
    async with asyncio.timeout(delay):
        yield


@contextlib.asynccontextmanager
async def with_timebox(delay: float) -> AsyncIterator[None]:
    with timebox(delay):
        yield


BOUNDS = [pytest.param(with_asyncio, id="asyncio.timeout"), pytest.param(with_timebox, id="ours")]


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


async def both(scenario: Callable[[Bound], Callable[[], Awaitable[object]]]) -> tuple[Any, Any]:
    return await outcome(scenario(with_asyncio)), await outcome(scenario(with_timebox))


async def test_a_block_that_ends_in_time_returns_its_value_and_leaves_no_timer() -> None:
    async def quick(bound: Bound) -> str:
        async with bound(5):
            await asyncio.sleep(0)
        return "done"

    ours, reference = await both(lambda bound: lambda: quick(bound))
    assert ours == reference == ("'done'", 0, True)


async def test_a_block_past_its_deadline_raises_timeout_error_and_the_task_lives_on() -> None:
    async def slow(bound: Bound) -> str:
        async with bound(0.01):
            await asyncio.sleep(5)
        return "late"

    ours, reference = await both(lambda bound: lambda: slow(bound))
    assert ours == reference == ("TimeoutError", 0, True)


async def test_a_deadline_already_past_strikes_at_the_first_await() -> None:
    async def past(bound: Bound) -> str:
        async with bound(-1):
            await asyncio.sleep(0)
            await asyncio.sleep(5)
        return "late"

    ours, reference = await both(lambda bound: lambda: past(bound))
    assert ours == reference == ("TimeoutError", 0, True)


async def test_an_outside_cancellation_passes_through_as_cancelled_error() -> None:
    def cancelled_from_outside(bound: Bound) -> Callable[[], Awaitable[object]]:
        async def block() -> str:
            task = asyncio.current_task()
            assert task is not None
            asyncio.get_running_loop().call_later(0.01, task.cancel)
            async with bound(5):
                await asyncio.sleep(5)
            return "late"

        return block

    ours, reference = await both(cancelled_from_outside)
    assert ours == reference
    assert ours[0] == "CancelledError"


async def test_an_outside_cancellation_as_the_deadline_strikes_wins() -> None:
    def both_at_once(bound: Bound) -> Callable[[], Awaitable[object]]:
        async def block() -> str:
            task = asyncio.current_task()
            assert task is not None
            async with bound(0):  # its timer runs at the next turn of the loop
                task.cancel()
                await asyncio.sleep(5)
            return "late"

        return block

    ours, reference = await both(both_at_once)
    assert ours == reference
    assert ours[0] == "CancelledError"


async def test_nested_the_outer_deadline_is_the_outers_and_the_inner_is_the_inners() -> None:
    def nested(outer: float, inner: float) -> Callable[[Bound], Callable[[], Awaitable[object]]]:
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
        ours, reference = await both(nested(outer, inner))
        assert ours == reference
    assert (await outcome(nested(0.01, 5)(with_timebox)))[0] == "TimeoutError"
    assert (await outcome(nested(5, 0.01)(with_timebox)))[0] == "'inner struck'"


async def test_a_block_that_swallows_the_cancellation_ends_as_it_says() -> None:
    def swallowing(bound: Bound) -> Callable[[], Awaitable[object]]:
        async def block() -> str:
            async with bound(0.01):
                try:
                    await asyncio.sleep(5)
                except asyncio.CancelledError:
                    return "swallowed"
            return "unreachable"

        return block

    ours, reference = await both(swallowing)
    assert ours == reference == ("'swallowed'", 0, True)


async def test_an_error_other_than_cancellation_in_time_passes_through() -> None:
    def failing(bound: Bound) -> Callable[[], Awaitable[object]]:
        async def block() -> str:
            async with bound(5):
                await asyncio.sleep(0)
                raise ConnectionResetError
            return "unreachable"

        return block

    ours, reference = await both(failing)
    assert ours == reference == ("ConnectionResetError", 0, True)


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
