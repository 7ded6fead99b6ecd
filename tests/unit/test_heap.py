"""The collector's running thresholds (pingmon.heap.settle): young collections still free
reference cycles, full collections no longer walk every target's state every few seconds."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref

from pingmon.heap import RUNNING_THRESHOLDS, collect_old_cycles, settle


class Node:
    """A container the collector tracks; two of them referring to each other are a cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


def _generations_collected(work: int) -> list[int]:
    """The generations the collector ran on by itself while ``work`` objects were made and
    kept (as results are kept for an interval), each after a dropped reference cycle."""
    seen: list[int] = []

    def observe(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    kept = []
    gc.callbacks.append(observe)
    try:
        for _ in range(work):
            kept.append(Node())
    finally:
        gc.callbacks.remove(observe)
    return seen


def test_settle_sets_the_running_thresholds_and_freezes_what_lives() -> None:
    gc.set_threshold(700, 10, 10)
    settle()
    assert gc.get_threshold() == RUNNING_THRESHOLDS
    assert gc.get_freeze_count() > 0


def test_a_reload_frees_the_configuration_frozen_before() -> None:
    """A configuration frozen at a start is never walked again, not even by a full
    collection; the next ``settle`` (a reload's) unfreezes it first, so once dropped, its
    reference cycles are freed."""
    first, second = Node(), Node()  # a cycle in the configuration a start adopts
    first.other, second.other = second, first
    gone = weakref.ref(first)
    settle()
    assert not any(o is first for generation in range(3) for o in gc.get_objects(generation))
    del first, second  # a reload drops it ...
    gc.collect()
    assert gone() is not None  # ... which frozen, no collection frees
    settle()  # the reload's
    assert gone() is None


def test_a_cycle_made_while_running_is_freed_without_an_explicit_collection() -> None:
    settle()
    first, second = Node(), Node()
    first.other, second.other = second, first
    gone = weakref.ref(first)
    del first, second
    assert gone() is not None  # a cycle: its reference count never frees it
    seen = _generations_collected(5 * RUNNING_THRESHOLDS[0])
    assert seen  # the young collections ran by themselves
    assert gone() is None


def test_no_full_collection_while_objects_live_on_as_results_do() -> None:
    settle()
    seen = _generations_collected(200_000)
    assert 1 in seen  # the middle generation is collected as the objects move on
    assert 2 not in seen


def test_cpythons_default_thresholds_would_have_run_full_collections() -> None:
    """The test above can fail: the same work at the defaults runs full collections."""
    settle()
    gc.set_threshold(700, 10, 10)
    assert 2 in _generations_collected(200_000)


def _old_cycle() -> weakref.ref[Node]:
    """A dropped reference cycle that lived long enough to reach the old generation (as a
    failing check's exception, traceback and futures do), checked to be there."""
    first, second = Node(), Node()
    first.other, second.other = second, first
    gone = weakref.ref(first)
    gc.collect(1)  # the cycle lives on through the young and middle collections ...
    assert gc.is_tracked(first)
    assert any(o is first for o in gc.get_objects(2))
    del first, second  # ... and only then is dropped
    return gone


def _young_cycles(count: int) -> None:
    """``count`` cycles dropped at once: what the young collections find while checks fail."""
    for _ in range(count):
        first, second = Node(), Node()
        first.other, second.other = second, first


def test_without_a_full_collection_an_old_cycle_outlives_the_running_collections() -> None:
    """What the test below fixes: at ``RUNNING_THRESHOLDS`` such garbage waits for a full
    collection, 20,000 middle ones away (RSS grew for tens of minutes while targets failed)."""
    settle()
    gone = _old_cycle()
    _young_cycles(10_000)
    seen = _generations_collected(200_000)
    assert 1 in seen
    assert 2 not in seen
    assert gone() is not None


async def test_old_cycles_are_collected_once_a_period_while_younger_collections_find_garbage() -> (
    None
):
    settle()
    collecting = asyncio.create_task(collect_old_cycles(period=0.05, garbage=1_000))
    try:
        await asyncio.sleep(0)  # it watches the collections from now on
        gone = _old_cycle()
        _young_cycles(10_000)
        _generations_collected(5 * RUNNING_THRESHOLDS[0])  # the young collections find them
        for _ in range(40):  # bounded: 2 s
            await asyncio.sleep(0.05)
            if gone() is None:
                break
        assert gone() is None
    finally:
        collecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collecting


async def test_no_full_collection_while_the_younger_ones_find_no_garbage() -> None:
    settle()
    collecting = asyncio.create_task(collect_old_cycles(period=0.02, garbage=1_000))
    seen: list[int] = []

    def observe(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.callbacks.append(observe)
    try:
        kept: list[Node] = []
        for _ in range(10):  # results replaced, never garbage, across several periods
            kept.extend(Node() for _ in range(20_000))
            await asyncio.sleep(0.03)
        assert 1 in seen
        assert 2 not in seen
    finally:
        gc.callbacks.remove(observe)
        collecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collecting
