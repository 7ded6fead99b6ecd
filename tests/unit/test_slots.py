"""Slots bound checks in flight exactly as asyncio.Semaphore does (FIFO, never more than N,
no slot lost or doubled by a cancellation), a free slot being taken without a coroutine."""

from __future__ import annotations

import asyncio
import random

from hypothesis import given, settings, strategies as st

from pingmon.slots import Slots


def all_free(slots: Slots, size: int) -> bool:
    """Whether exactly ``size`` slots can be taken at once (then given back)."""
    taken = 0
    while taken <= size and slots.try_acquire():
        taken += 1
    for _ in range(taken):
        slots.release()
    return taken == size


async def test_free_slots_are_taken_at_once_and_none_beyond_the_bound() -> None:
    slots = Slots(2)
    assert slots.try_acquire()
    assert slots.try_acquire()
    assert not slots.try_acquire()
    assert slots.locked()
    slots.release()
    assert slots.try_acquire()
    slots.release()
    slots.release()
    assert all_free(slots, 2)


async def test_a_free_slot_is_not_taken_ahead_of_a_waiter() -> None:
    slots = Slots(1)
    assert slots.try_acquire()
    waiter = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    slots.release()  # handed to the waiter, which has not run yet
    assert not slots.try_acquire()
    await waiter
    assert not slots.try_acquire()
    slots.release()
    assert all_free(slots, 1)


async def test_a_waiter_cancelled_after_it_was_handed_a_slot_hands_it_on() -> None:
    slots = Slots(1)
    assert slots.try_acquire()
    first = asyncio.create_task(slots.acquire())
    second = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    slots.release()  # first is handed the slot...
    first.cancel()  # ...and cancelled before it runs
    await asyncio.gather(first, return_exceptions=True)
    assert first.cancelled()
    await second
    assert not slots.try_acquire()
    slots.release()
    assert all_free(slots, 1)


class Reference:
    """How the runner held a slot before: ``async with asyncio.Semaphore``."""

    def __init__(self, size: int) -> None:
        self.semaphore = asyncio.Semaphore(size)

    async def hold(self, turns: int) -> None:
        async with self.semaphore:
            await turns_of_the_loop(turns)


class Ours:
    """How the runner holds one now."""

    def __init__(self, size: int) -> None:
        self.slots = Slots(size)

    async def hold(self, turns: int) -> None:
        if not self.slots.try_acquire():
            await self.slots.acquire()
        try:
            await turns_of_the_loop(turns)
        finally:
            self.slots.release()


HOLDING: list[int] = []  # the workers holding a slot (in ``turns_of_the_loop``)


async def turns_of_the_loop(turns: int) -> None:
    task = asyncio.current_task()
    assert task is not None
    HOLDING.append(id(task))
    try:
        for _ in range(turns):
            await asyncio.sleep(0)
    finally:
        HOLDING.remove(id(task))


async def trace(bound: Reference | Ours, size: int, workers: int, seed: int) -> list[str]:
    """Workers hold a slot for a few turns of the loop each; some are cancelled at random
    moments (waiting, just handed a slot, holding one). What happened, in order; asserts
    that no more than ``size`` ever hold a slot at once."""
    rand = random.Random(seed)
    events: list[str] = []

    async def worker(index: int) -> None:
        events.append(f"{index} asks")
        try:
            await bound.hold(rand.randrange(4))
        except asyncio.CancelledError:
            events.append(f"{index} cancelled")
            raise
        events.append(f"{index} done")

    async def watch() -> None:
        while True:
            assert len(HOLDING) <= size
            events.append(f"holding {len(HOLDING)}")
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    tasks = []
    for index in range(workers):
        tasks.append(asyncio.create_task(worker(index)))
        if rand.random() < 0.5:
            await asyncio.sleep(0)
    for _ in range(workers):
        if rand.random() < 0.3:
            victim = rand.randrange(workers)
            events.append(f"cancel {victim}")
            tasks[victim].cancel()
        await asyncio.sleep(0)
    await asyncio.gather(*tasks, return_exceptions=True)
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    assert not HOLDING
    return events


@settings(max_examples=100, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=4),
    workers=st.integers(min_value=1, max_value=25),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_under_random_cancellation_slots_behave_exactly_as_async_with_a_semaphore(
    size: int, workers: int, seed: int
) -> None:
    """The same workers, cancelled at the same moments, ask, hold, finish or are cancelled
    in the same order, turn by turn of the loop, with Slots as with ``async with
    asyncio.Semaphore``; and at the end every slot is free again."""
    ours = Ours(size)
    got = asyncio.run(trace(ours, size, workers, seed))
    assert got == asyncio.run(trace(Reference(size), size, workers, seed))
    assert all_free(ours.slots, size)
