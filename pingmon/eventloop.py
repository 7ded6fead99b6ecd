"""The event loop `run`, `check` and `demo` run on: uvloop where it imports, else asyncio's."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger("pingmon")

ENV_VAR = "PINGMON_EVENT_LOOP"
# auto: uvloop when it imports (a dependency on Linux and macOS), else asyncio.
CHOICES = ("auto", "uvloop", "asyncio")
# auto: uvloop's transports and timers are C (a bare aiohttp client spends 10-25 % less CPU on
# it). Both loops skip the checks they have no descriptor for (tests/integration/
# test_fd_exhaustion.py runs on each); out of descriptors, libuv closes the connections waiting
# to be accepted at once, where asyncio leaves them queued and retries every second
# (docs/scheduling.md).
DEFAULT = "auto"


class EventLoopError(Exception):
    """The loop asked for is not a choice, or uvloop was asked for and does not import."""

    def lines(self) -> list[str]:
        return [str(self)]


def choose(flag: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """The loop to run on, ``uvloop`` or ``asyncio``: the flag's choice, else the
    environment's (``PINGMON_EVENT_LOOP``), else ``DEFAULT`` (auto: uvloop where it imports,
    else asyncio). EventLoopError when the choice is unknown, or is ``uvloop`` and uvloop does
    not import."""
    source, wanted = ("--event-loop", flag) if flag else (ENV_VAR, environ.get(ENV_VAR, ""))
    wanted = wanted.strip().lower() or DEFAULT
    if wanted not in CHOICES:
        raise EventLoopError(f"{source}: must be one of {', '.join(CHOICES)}, not {wanted!r}")
    if wanted == "asyncio":
        return "asyncio"
    if _uvloop_factory() is not None:
        return "uvloop"
    if wanted == "uvloop":
        raise EventLoopError(f"{source}: uvloop was asked for, but it is not installed")
    return "asyncio"


def run(main: Coroutine[Any, Any, T], loop: str, level: int = logging.INFO) -> T:
    """``asyncio.run(main)`` on a loop of the kind ``choose`` named, first saying which in
    a log line at ``level`` (fields ``event_loop``: uvloop|asyncio, ``loop_class``)."""
    factory = _uvloop_factory() if loop == "uvloop" else None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(_said(main, level))


async def _said(main: Coroutine[Any, Any, T], level: int) -> T:
    """``main``, after a log line naming the loop it runs on, as the loop itself says."""
    running = type(asyncio.get_running_loop())
    name = "uvloop" if running.__module__.partition(".")[0] == "uvloop" else "asyncio"
    log.log(
        level,
        f"running on the {name} event loop",
        extra={"event_loop": name, "loop_class": f"{running.__module__}.{running.__qualname__}"},
    )
    return await main


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # not installed (Windows has no uvloop)
        return None
    return uvloop.new_event_loop
