"""Blocking work in a thread that is given up at a deadline or at shutdown, never waited for.

asyncio's default executor cannot do this: ``asyncio.run`` joins its threads at exit, so one
call that never returns (a read from a FIFO, a YAML alias bomb) keeps the process alive after
SIGTERM. Here each call gets a daemon thread of its own, which the interpreter does not join;
the caller stops waiting at the deadline or when asked to, and the thread's late result is
dropped. Abandoned threads that are still running are counted, and bounded, so a flood of
requests for work that never ends cannot pile up threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# Every call's thread, while it lives (``any_running``).
_threads: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


def any_running() -> bool:
    """Whether the thread of any ``DeadlineWorker`` call, given up or not, still runs.

    The interpreter does not join such a thread at exit, but its finalization ends it with
    ``pthread_exit`` when it next takes the GIL; inside pydantic-core's Rust frames (a
    configuration being validated) that unwinding aborts or crashes the whole process
    ("FATAL: exception not rethrown", SIGABRT or SIGSEGV), so the command leaves without
    finalizing instead (``pingmon.cli.main``)."""
    return any(thread.is_alive() for thread in list(_threads))


class Abandoned(Exception):
    """The work was given up; its thread may still be running. The message says why."""


class DeadlineWorker:
    """Runs one blocking call per ``run`` in a daemon thread, bounded by a deadline.

    ``max_abandoned``: how many given-up calls may still be running before ``run`` refuses
    to start another (each may hold a thread, and a CPU, until the process exits).
    """

    def __init__(self, name: str, max_abandoned: int) -> None:
        self._name = name
        self._max_abandoned = max_abandoned
        self._abandoned: list[threading.Thread] = []

    def still_running(self) -> int:
        """How many abandoned calls have not returned yet."""
        self._abandoned = [thread for thread in self._abandoned if thread.is_alive()]
        return len(self._abandoned)

    async def run(self, work: Callable[[], T], timeout: float, give_up: asyncio.Event) -> T:
        """``work()``'s result or exception; Abandoned after ``timeout`` seconds, when
        ``give_up`` is set, or when too many abandoned calls still run. If the caller is
        cancelled, the thread is abandoned too."""
        if self.still_running() >= self._max_abandoned:
            raise Abandoned(
                f"{self._max_abandoned} earlier ones, given up at their deadline, still run; "
                "restart pingmon to end them"
            )
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        thread = threading.Thread(
            target=_settle_from_thread, args=(loop, done, work), name=self._name, daemon=True
        )
        _threads.add(thread)
        thread.start()
        stopping: asyncio.Future[Any] = asyncio.ensure_future(give_up.wait())
        try:
            await asyncio.wait({done, stopping}, timeout=timeout, return_when="FIRST_COMPLETED")
        finally:
            stopping.cancel()
            if not done.done():
                done.cancel()
                self._abandoned.append(thread)
        if done.cancelled():
            if give_up.is_set():
                raise Abandoned("pingmon is stopping")
            raise Abandoned(f"not done within {timeout:g} s")
        return done.result()


def _settle_from_thread(
    loop: asyncio.AbstractEventLoop, done: asyncio.Future[Any], work: Callable[[], object]
) -> None:
    result: object = None
    error: Exception | None = None
    try:
        result = work()
    except Exception as caught:  # noqa: BLE001  # handed to the waiting coroutine
        error = caught
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for it any more
        loop.call_soon_threadsafe(_settle, done, result, error)


def _settle(done: asyncio.Future[Any], result: object, error: Exception | None) -> None:
    if done.done():  # abandoned meanwhile
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(result)
