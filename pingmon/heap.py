"""The cyclic garbage collector: paused while a configuration is built, tuned while running.

Loading 100,000 targets makes millions of objects that all live (YAML nodes, dicts, models,
plans, jobs). CPython runs a full collection each time the objects that survived the young
generations grow by a quarter, and each one walks every object made so far: four fifths of
the time to read and validate such a file went to collections that found nothing. With the
collector paused, building is linear; what loading left behind is collected once after it
(``settle`` at a start or reload, the next automatic collection else).

The pause covers CPU-bound work only: the file is read before (``pingmon.files`` never
blocks), and the parse, validation and preparation are bounded in time, so a load given up
at its deadline still ends, and with it the pause.

While running, every check replaces its target's state (a few small objects that live one
interval, then are freed by their reference count, never garbage). With CPython's default
thresholds (700, 10, 10) the collector walks them again and again: a full collection runs each
time a quarter of the old generation is new, i.e. every quarter interval, and walks every
target's state with the event loop stopped (10,000 targets: 100-300 ms every 2.5 s on the 2-vCPU
machine; at 100,000 ten times the objects), so the collector's cost per check and its pauses
grew with the number of targets. ``RUNNING_THRESHOLDS`` makes the young collections wait for
7,000 new objects instead of 700, makes each middle one walk two young collections' survivors
instead of ten (pauses a fifth as long) and runs a full collection once the middle ones have run
20,000 times (hours apart at 1,000 checks/s; its pause is the one above, once). A young
collection walks the checks in flight, alive, to promote them; at 700 it ran every few checks,
so each check's aiohttp objects were walked while alive, and at saturation (3,000 checks/s asked
on one core) the collector took 11 % of the samples (native profile, 2026-12-01): waiting for
7,000 lets most checks end first, and their objects are freed by their reference counts before
any walk (one core, 3,000/s asked, three rounds: 2,805 against 2,323 checks/s, 352 against 428
µs a check; at 10,000 targets / 10 s the lag p99 stayed at 5.0 ms; bench/README.md, eighth
session). The price is paid while checks fail: each of their cycles (exception, traceback,
frames) is garbage a young collection frees, and at 7,000 a young or middle collection frees up
to 6,000-8,000 such objects, so their pauses' p99 grew from 4.5 and 7.8 ms to 29 and 40 ms in a
failure storm (300 targets every 0.25 s timing out, refused, reset; review of 2026-12-01), while
the lag p99 stayed (49.4 against 47.9 ms), the garbage reaching the old generation shrank
twenty-fold and the once-a-minute full collection's pause with it (289 to 15 ms). What a young
collection leaves is the checks in flight: at 10,000 targets (census of the young and middle
generations, 2026-12-01) a middle collection walked 4,500-6,000 objects and 30,000-37,000
references, nearly all of them the coroutines, frames' cells, aiohttp's requests, responses,
headers and stream readers, futures and handles of the checks in flight across a young
collection; the results and states a check leaves (``TargetState``, ``CheckResult``) were 4 %,
no container held more than a few hundred references, and nothing had a finalizer. Each
reference walked is a cache miss into the heap, so the pause follows the number of checks in
flight, not the number of targets. A middle collection every other one, (700, 0, 40_000), halved
the middle pauses' median (2.4-3.0 to 1.1 ms of CPU) but not their p99 (~7 ms), left the
scheduler lag p99 as it was (10,000 targets / 10 s, three alternated runs each on a quiet
machine: 59.9, 26.8, 40.9 ms; at (700, 2): 44.8, 40.6, 41.3) and, in a simulation, sent twice
the cyclic garbage of failing checks to the old generation: not that. Reference cycles that
outlive two young collections are rare while targets pass (tens of objects a minute in the runs
measured), but not while they fail: a check that times out or is refused leaves cycles (an
exception, its traceback and frames, aiohttp's futures) that live as long as the check, long
enough to reach the old generation. With every target failing (100 targets at 100 ms,
2026-11-30) the old generation grew by 1,500 objects a second and the RSS by 0.1-0.3 MB a second
until a full collection, tens of minutes away. So ``collect_old_cycles`` runs a full collection
at most once a minute, and only when the younger collections found cyclic garbage meanwhile
(what they find, more reached the old generation): a passing fleet has no full collection, a
failing one keeps a minute of garbage at most. Figures: bench/README.md ("The collector at
scale").
"""

from __future__ import annotations

import asyncio
import functools
import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

_lock = threading.Lock()
_depth = 0  # pauses in force, over every thread
_resume = False  # whether the collector was enabled when the first of them began

# gc.set_threshold(young, middle, full) while running (see the module's docstring).
RUNNING_THRESHOLDS = (7_000, 2, 20_000)
# collect_old_cycles: a full collection at most every FULL_COLLECTION_PERIOD seconds, when
# the younger collections found at least FULL_COLLECTION_GARBAGE objects of cyclic garbage.
FULL_COLLECTION_PERIOD = 60.0
FULL_COLLECTION_GARBAGE = 1_000

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


def settle() -> None:
    """Collect what loading left behind, then exempt the long-lived objects (configuration,
    plans, jobs) from future collections, and collect from now on at ``RUNNING_THRESHOLDS``.
    Unfreezing first lets an old configuration be freed after a reload. Called on the event
    loop after a start or a reload: one full collection, then none until the thresholds say."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*RUNNING_THRESHOLDS)


class _CyclesFound:
    """A ``gc.callbacks`` entry: the objects young and middle collections freed as cyclic
    garbage since the last full collection."""

    def __init__(self) -> None:
        self.objects = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase != "stop":
            return
        if info["generation"] == 2:
            self.objects = 0
        else:
            self.objects += info["collected"]


async def collect_old_cycles(
    period: float = FULL_COLLECTION_PERIOD, garbage: int = FULL_COLLECTION_GARBAGE
) -> None:
    """Forever (until cancelled): every ``period`` seconds, a full collection if the younger
    ones freed at least ``garbage`` objects of cycles since the last full one (the cycles
    that outlived them wait in the old generation, which ``RUNNING_THRESHOLDS`` collects
    tens of minutes apart). Runs on the event loop: the pause is the loop's, once a period."""
    found = _CyclesFound()
    gc.callbacks.append(found)
    try:
        while True:
            await asyncio.sleep(period)
            if found.objects >= garbage:
                gc.collect()
    finally:
        gc.callbacks.remove(found)
