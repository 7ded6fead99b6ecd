"""The cyclic garbage collector paused while a configuration is built.

Loading 100,000 targets makes millions of objects that all live (YAML nodes, dicts, models,
plans, jobs). CPython runs a full collection each time the objects that survived the young
generations grow by a quarter, and each one walks every object made so far: four fifths of
the time to read and validate such a file went to collections that found nothing. With the
collector paused, building is linear; what loading left behind is collected once after it
(``pingmon.daemon.settle_heap`` at a start or reload, the next automatic collection else).

The pause covers CPU-bound work only: the file is read before (``pingmon.files`` never
blocks), and the parse, validation and preparation are bounded in time, so a load given up
at its deadline still ends, and with it the pause.
"""

from __future__ import annotations

import functools
import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

_lock = threading.Lock()
_depth = 0  # pauses in force, over every thread
_resume = False  # whether the collector was enabled when the first of them began

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def collection_paused() -> Iterator[None]:
    """No automatic collection while the block runs (``gc.collect`` still works). Nested and
    concurrent pauses (a reload's thread and the event loop's) end when the last does; the
    collector is enabled again only if it was when the first began."""
    global _depth, _resume
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _resume:
                gc.enable()


def pausing_collection(function: Callable[P, R]) -> Callable[P, R]:
    """``function`` run with the collector paused (``collection_paused``)."""

    @functools.wraps(function)
    def paused(*args: P.args, **kwargs: P.kwargs) -> R:
        with collection_paused():
            return function(*args, **kwargs)

    return paused
