"""A bound on checks in flight: ``asyncio.Semaphore``, with a free slot taken by a plain call."""

from __future__ import annotations

import asyncio


class Slots(asyncio.Semaphore):
    """``asyncio.Semaphore`` (FIFO, cancellation-safe, never more than ``value`` held), plus
    ``try_acquire``: its ``acquire`` without the coroutine when a slot is free. ``async with
    semaphore`` costs three coroutines per check (``__aenter__``, ``acquire``,
    ``__aexit__``) even when nobody waits; this costs none then::

        if not slots.try_acquire():
            await slots.acquire()
        try:
            ...
        finally:
            slots.release()
    """

    def try_acquire(self) -> bool:
        """Take a slot if ``acquire`` would without waiting (one is free and nobody waits
        for one, ``locked()`` is False): the first branch of ``acquire``, as it is written
        (CPython 3.11-3.14). False, and nothing taken, otherwise."""
        # Nobody waiting (``_waiters`` empty or None) and a slot free is ``locked()`` False
        # without its generator over the waiters; otherwise ask ``locked()`` itself.
        if (self._waiters or self._value <= 0) and self.locked():
            return False
        self._value -= 1  # Semaphore's own counter, as acquire decrements it
        return True
