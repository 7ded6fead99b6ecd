"""``asyncio.timeout`` as a plain ``with``: the same bound at a third of its cost per use."""

from __future__ import annotations

import asyncio
import collections
import math
from types import TracebackType
from typing import Any


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
        self._task, self._cancelling = _entering_task()
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


class Deadlines:
    """Timeboxes of one event loop on a single timer: ``box(delay)`` bounds a block as
    ``timebox(delay)`` does, at the same loop time, without a timer of its own.

    A timer per block (``loop.call_at``, then its cancel) is most of what a timeout costs on
    uvloop (a libuv timer made, started, stopped and closed). Here the blocks of one delay
    wait in a line in the order they began, which is the order of their deadlines; one
    timer is set for the earliest deadline of a block still running. When it fires, the
    blocks past their deadline are cancelled (as ``timebox`` cancels them) and it is set
    again for the next one. A block that ends only marks itself done; done blocks leave
    their line from its front, so a line holds about the blocks running.
    """

    __slots__ = ("_armed_at", "_lines", "_loop", "_timer")

    def __init__(self) -> None:
        self._lines: dict[float, collections.deque[_Box]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._armed_at = math.inf
        self._loop: asyncio.AbstractEventLoop | None = None

    def box(self, delay: float) -> _Box:
        """A context manager bounding its block to ``delay`` seconds (``timebox``'s rules)."""
        return _Box(self, delay)

    def _add(self, box: _Box) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # first use, or another loop: nothing of the last holds
            self._lines.clear()
            self._timer, self._armed_at, self._loop = None, math.inf, loop
        box.when = when = loop.time() + box.delay
        if when <= loop.time():  # as timebox: already past, so at the next turn of the loop
            box.handle = loop.call_soon(box.expire)
            return
        line = self._lines.get(box.delay)
        if line is None:
            line = self._lines[box.delay] = collections.deque()
        line.append(box)
        if when < self._armed_at:
            self._arm(loop, when)

    def _ended(self, box: _Box) -> None:
        line = self._lines.get(box.delay)
        while line and line[0].done:
            line.popleft()

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(when, self._fire)
        self._armed_at = when

    def _fire(self) -> None:
        """Cancel every running block whose deadline came (the loop runs a timer a clock
        resolution early, so up to the time it was set for counts), then set the timer for
        the earliest deadline left."""
        loop = asyncio.get_running_loop()
        due = max(loop.time(), self._armed_at)
        self._timer, self._armed_at = None, math.inf
        earliest = math.inf
        for delay, line in list(self._lines.items()):
            while line and (line[0].done or line[0].when <= due):
                box = line.popleft()
                if not box.done:
                    box.expire()
            if line:
                earliest = min(earliest, line[0].when)
            else:
                del self._lines[delay]
        if earliest < math.inf:
            self._arm(loop, earliest)


class _Box:
    """One block bounded by ``Deadlines``: ``timebox``'s enter and exit, the timer shared."""

    __slots__ = (
        "_cancelling",
        "_deadlines",
        "_expired",
        "_task",
        "delay",
        "done",
        "handle",
        "when",
    )

    def __init__(self, deadlines: Deadlines, delay: float) -> None:
        self._deadlines = deadlines
        self.delay = delay
        self.when = math.inf
        self.done = False
        self.handle: asyncio.Handle | None = None
        self._task: asyncio.Task[Any] | None = None

    def __enter__(self) -> None:
        self._task, self._cancelling = _entering_task()
        self._expired = False
        self._deadlines._add(self)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.done = True
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        self._deadlines._ended(self)
        # A done block may wait in its line behind a slow one for up to its delay: it keeps
        # nothing of its task (a task and its coroutine, ~800 bytes a check).
        task, self._task = self._task, None
        if self._expired and (
            task is not None
            and task.uncancel() <= self._cancelling
            and exc_type is asyncio.CancelledError
        ):
            raise TimeoutError from exc  # no other cancellation came: this one is ours

    def expire(self) -> None:
        """Cancel the block's task (never called once the block is done)."""
        if self._task is not None:
            self._task.cancel()
        self._expired = True
        self.handle = None


def _entering_task() -> tuple[asyncio.Task[Any], int]:
    """The task a block is entered in, and how many cancellations it has pending then
    (``Task.cancelling``: a later one that is not the timer's passes through).

    Raises RuntimeError outside a task, as ``asyncio.timeout`` does."""
    task = asyncio.current_task()
    if task is None:
        raise RuntimeError("timebox should be used inside a task")
    return task, task.cancelling()
