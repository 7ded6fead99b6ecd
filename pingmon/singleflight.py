"""Concurrent callers of one costly computation share a single run of it (Go's singleflight).

Fifty scrapes arriving together cost one render, not fifty: a caller that arrives while the
computation for its key runs waits for that run and gets the same result (or exception).
A caller that goes away (cancelled) does not cancel the run the others wait for.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class SingleFlight(Generic[K, T]):
    """``await flight(key)``: ``compute(key)``, run once for every caller meanwhile."""

    def __init__(self, compute: Callable[[K], Awaitable[T]]) -> None:
        self._compute = compute
        self._running: dict[K, asyncio.Future[T]] = {}
        self._waiting: Counter[K] = Counter()
        self.runs = 0  # computations started, for tests and benchmarks

    async def __call__(self, key: K) -> T:
        flight = self._running.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._compute(key))
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

    def _land(self, key: K, done: asyncio.Future[T]) -> None:
        if self._running.get(key) is done:
            del self._running[key]
        if not done.cancelled():
            done.exception()  # retrieved: no "never retrieved" warning when no one waits
