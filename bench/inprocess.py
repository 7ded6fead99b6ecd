"""Measuring a daemon run in this process (``serve()``): lag, collector pauses, logs, CPU.

Used by ``bench_webhooks.py`` (``bench_daemon.py`` runs ``pingmon run`` as a child instead).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import logging
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from pingmon.daemon import Daemon


class Child:
    """This script in another mode, talking over its stdin/stdout lines."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def read_line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"child {self.proc.pid} exited early")
        return line.decode().strip()

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), timeout=5)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


class LagRecorder:
    """Wraps the scheduler's lag observer: keeps raw values while recording, then calls the
    original (the histogram). Installed on ``daemon.scheduler._observe_lag`` (a private
    attribute; the bench's only intrusion) from ``on_started``: values before the window are
    not kept, so installing it after the start loses nothing.
    """

    def __init__(self, original: Callable[[float], None]) -> None:
        self.original = original
        self.values: list[float] = []
        self.recording = False

    def __call__(self, lag: float) -> None:
        if self.recording:
            self.values.append(lag)
        self.original(lag)


class GcRecorder:
    """Pauses of the garbage collector while recording: a full collection of a large heap
    stalls the loop like any other work. Reports (generation, seconds) pairs."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self.recording = False
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self.recording:
            self.pauses.append((info["generation"], time.perf_counter() - self._started))


class LogCounter(logging.Handler):
    """Counts pingmon's warnings and errors by message, and passes the first few of each
    message on to stderr (a flood of identical tracebacks says nothing more)."""

    def __init__(self, shown: int = 3) -> None:
        super().__init__(logging.WARNING)
        self.counts: dict[str, int] = {}
        self._shown = shown
        self._stderr = logging.StreamHandler()

    def emit(self, record: logging.LogRecord) -> None:
        key = f"{record.levelname}: {record.getMessage()}"
        self.counts[key] = self.counts.get(key, 0) + 1
        if self.counts[key] <= self._shown:
            self._stderr.handle(record)


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived during the run."""


async def sleep_until(deadline: float, stop: asyncio.Event) -> None:
    """Sleep until ``deadline`` (monotonic); the daemon's stop (SIGINT, SIGTERM) aborts the run."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        return
    raise Interrupted("interrupted: the daemon was told to stop")


async def wait_started(
    started: asyncio.Future[tuple[Daemon, str]], service: asyncio.Task[None], timeout: float = 30.0
) -> tuple[Daemon, str]:
    """The daemon and its address once ``serve()`` has started; raises what stopped it."""
    waiting: set[asyncio.Future[Any]] = {started, service}
    done, _ = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if started in done:
        return started.result()
    if service in done:
        service.result()  # raises what stopped it
    raise RuntimeError("the daemon did not start in time")


def quantile(values: list[float], q: float) -> float | None:
    """Nearest-rank quantile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def ms(seconds: float | None) -> float | None:
    """Milliseconds, rounded; None stays None."""
    return None if seconds is None else round(seconds * 1e3, 2)


def versions() -> dict[str, str]:
    return {
        "python": sys.version.split()[0],
        "aiohttp": aiohttp.__version__,
        "apscheduler": importlib.metadata.version("APScheduler"),
        "prometheus_client": importlib.metadata.version("prometheus-client"),
    }


def print_table(result: dict[str, Any]) -> None:
    """One figure a line: name, then its value (JSON for dicts, booleans and None)."""
    width = max(len(key) for key in result)
    for key, value in result.items():
        shown = json.dumps(value) if isinstance(value, dict | bool | None) else str(value)
        print(f"{key:<{width}}  {shown}")
