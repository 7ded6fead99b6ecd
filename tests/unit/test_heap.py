"""The collector's running thresholds (pingmon.heap.settle): young collections still free
reference cycles, full collections no longer walk every target's state every few seconds."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from pingmon.heap import RUNNING_THRESHOLDS, settle


@pytest.fixture(autouse=True)
def _restore_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    gc.enable()


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
