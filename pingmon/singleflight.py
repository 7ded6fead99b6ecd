"""Concurrent callers of one costly computation share a single run of it (Go's singleflight).

Fifty scrapes arriving together cost one render, not fifty: a caller that arrives while the
computation for its key runs waits for that run and gets the same result (or exception).
A caller that goes away (cancelled) does not cancel the run the others wait for.

With ``reuse`` > 0, under sustained demand a result is also handed to callers arriving
within ``reuse`` times its cost after it was made: callers that follow one another without
pause (a scrape flood) then keep the computation to about ``1 / (1 + reuse)`` of the time,
and a result is never older than a few times what it costs, nor than ``max_reuse_seconds``
(a slow computation must not hand one result to callers seconds apart: a scraper would
read the same samples twice). Demand is sustained when a run
starts within the reuse window its predecessor would have had; so a caller after a quiet
moment, and one right after it, always get a fresh result (a client that changes something
and looks again sees its change), and ``forget()`` drops what is kept at once (and the run
under way: a caller after it starts a run of its own; two runs of a key at most).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class SingleFlight(Generic[K, T]):
    """``await flight(key)``: ``compute(key)``, run once for every caller meanwhile."""

    def __init__(
        self,
        compute: Callable[[K], Awaitable[T]],
        reuse: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        max_reuse_seconds: float = math.inf,
    ) -> None:
        self._compute = compute
        self._reuse = reuse
        self._max_reuse_seconds = max_reuse_seconds
        self._clock = clock
        self._running: dict[K, asyncio.Future[T]] = {}
        # By key: a run let go of by ``forget``, still under way for its own callers.
        self._ending: dict[K, asyncio.Future[T]] = {}
        self._made: dict[K, tuple[float, T]] = {}  # key -> (reusable until, result)
        self._last: dict[K, tuple[float, float]] = {}  # key -> last run's (start, end)
        self._waiting: Counter[K] = Counter()
        self._forgotten = 0  # how many times ``forget`` was called
        self.runs = 0  # computations started, for tests and benchmarks

    async def __call__(self, key: K) -> T:
        made = self._made.get(key)
        if made is not None and self._clock() < made[0]:
            return made[1]
        flight = self._running.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._run(key, self._forgotten))
            self.runs += 1
            self._running[key] = flight
            flight.add_done_callback(lambda done: self._land(key, done))
        self._waiting[key] += 1
        try:
            return await asyncio.shield(flight)
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]

    def waiting(self, key: K) -> int:
        """Callers now waiting for the run of ``key``."""
        return self._waiting[key]

    def reusable(self, key: K) -> bool:
        """Whether a caller now would get the last result without a run."""
        made = self._made.get(key)
        return made is not None and self._clock() < made[0]

    def forget(self) -> None:
        """Hand out no kept result any more (something they show has changed), nor the
        result of a run under way now to callers that come after: those start a run of
        their own (the run under way ends for its callers and is not kept), unless one
        let go of earlier is still under way."""
        self._made.clear()
        self._last.clear()
        for key, flight in list(self._running.items()):
            # At most one run let go of per key at a time (forgets in a row, scrapes
            # meanwhile: two runs at most, not one more per forget); a run kept then
            # is handed out till it ends, and not kept after.
            if key not in self._ending:
                self._ending[key] = flight
                del self._running[key]
        self._forgotten += 1

    async def _run(self, key: K, forgotten: int) -> T:
        """``compute(key)``, kept for reuse unless ``forget`` was called since the run was
        asked for (``forgotten``: the count then)."""
        started = self._clock()
        result = await self._compute(key)
        finished = self._clock()
        if forgotten != self._forgotten:  # forgotten meanwhile: for its own callers only
            return result
        last, self._last[key] = self._last.get(key), (started, finished)
        sustained = last is not None and started - last[1] < self._reuse * (last[1] - last[0])
        window = self._reuse * (finished - started) if sustained else 0.0
        window = min(window, self._max_reuse_seconds)
        if window > 0:
            made = (finished + window, result)
            self._made[key] = made
            # Not kept past its window: a large result must not stay in memory until the
            # next caller comes.
            asyncio.get_running_loop().call_later(window, self._forget, key, made)
        return result

    def _forget(self, key: K, made: tuple[float, T]) -> None:
        if self._made.get(key) is made:
            del self._made[key]

    def _land(self, key: K, done: asyncio.Future[T]) -> None:
        if self._running.get(key) is done:
            del self._running[key]
        if self._ending.get(key) is done:
            del self._ending[key]
        if not done.cancelled():
            done.exception()  # retrieved: no "never retrieved" warning when no one waits
